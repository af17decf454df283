from organizations.models import Organization


def navigation(request):
    """The organizations in the user's switcher (none for the server administrator's own menu),
    and `access`: what the person may do in the page's organization (organizations.access.Access,
    set by the access decorators; None on pages outside an organization)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    access = {"access": getattr(request, "kodo_access", None)}
    if user.is_superuser:
        return access
    return {**access, "nav_organizations": Organization.objects.visible_to(user)}
