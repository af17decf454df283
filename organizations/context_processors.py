from organizations.models import Organization


def navigation(request):
    """The organizations in the user's switcher (none for the server administrator's own menu)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_superuser:
        return {}
    return {"nav_organizations": Organization.objects.visible_to(user)}
