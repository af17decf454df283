import zoneinfo

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from organizations import actions, audit
from organizations.access import org_admin_required, server_admin_required
from organizations.forms import (
    AuditSearchForm,
    DownloadPolicyForm,
    EmailPasswordResetForm,
    OperatorForm,
    OrganizationForm,
    SelfServiceForm,
    ServicesForm,
    UserPermissionsForm,
)
from organizations.models import AuditEvent, Membership, Organization

INVITATION_SESSION_KEY = "kodo-invitation"


@server_admin_required
def server_organizations(request):
    organizations = Organization.objects.all()
    return render(request, "organizations/server_list.html", {"organizations": organizations})


@server_admin_required
def server_organization_new(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        org, url = actions.do_create_organization(request=request, **form.cleaned_data)
        # Shown once: the detail page pops it from the session.
        request.session[INVITATION_SESSION_KEY] = {"org": str(org.code), "url": url}
        messages.success(request, f"Created {org.name}. The invitation was emailed.")
        return redirect("organizations:server-organization", org_code=org.code)
    return render(request, "organizations/server_new.html", {"form": form})


@server_admin_required
def server_organization(request, org_code):
    org = get_object_or_404(Organization, code=org_code)
    invitation = request.session.pop(INVITATION_SESSION_KEY, None)
    if invitation and invitation["org"] != str(org.code):
        invitation = None
    return render(
        request,
        "organizations/server_detail.html",
        {
            "org": org,
            "admins": org.admins(),
            "invitation_url": invitation and invitation["url"],
            "services_form": ServicesForm(initial={"services_enabled": org.services_enabled}),
            "download_policy_form": DownloadPolicyForm(
                initial={"admins_may_download": org.admins_may_download}
            ),
            "self_service_form": SelfServiceForm(
                initial={"self_service_enabled": org.self_service_enabled}
            ),
        },
    )


def _posted_switch(request, org_code, form_class):
    """The organization and the value posted for one of the on/off switches of its server
    organization page. Each switch is a form of one BooleanField(required=False), which no
    input makes invalid: an absent box is False."""
    org = get_object_or_404(Organization, code=org_code)
    form = form_class(request.POST)
    form.full_clean()
    [value] = form.cleaned_data.values()
    return org, value


@server_admin_required
@require_POST
def server_organization_services(request, org_code):
    org, enabled = _posted_switch(request, org_code, ServicesForm)
    actions.do_set_services_enabled(request=request, organization=org, enabled=enabled)
    messages.success(request, f"Services {'enabled' if enabled else 'disabled'}.")
    return redirect("organizations:server-organization", org_code=org.code)


@server_admin_required
@require_POST
def server_organization_download_policy(request, org_code):
    org, allowed = _posted_switch(request, org_code, DownloadPolicyForm)
    actions.do_set_admins_may_download(request=request, organization=org, allowed=allowed)
    messages.success(
        request,
        "Administrators may download users' data."
        if allowed
        else "Administrators can no longer download users' data; they can restore it.",
    )
    return redirect("organizations:server-organization", org_code=org.code)


@server_admin_required
@require_POST
def server_organization_self_service(request, org_code):
    org, enabled = _posted_switch(request, org_code, SelfServiceForm)
    actions.do_set_self_service_enabled(request=request, organization=org, enabled=enabled)
    messages.success(
        request,
        f"Self-service {'enabled' if enabled else 'disabled'}: {org.name}'s users "
        f"{'can now reach' if enabled else 'no longer reach'} their own backups.",
    )
    return redirect("organizations:server-organization", org_code=org.code)


@server_admin_required
@require_POST
def server_organization_reinvite(request, org_code, user_id):
    org = get_object_or_404(Organization, code=org_code)
    membership = get_object_or_404(
        Membership, organization=org, user_id=user_id, role=Membership.Role.ADMIN
    )
    url = actions.do_reinvite_admin(request=request, organization=org, membership=membership)
    request.session[INVITATION_SESSION_KEY] = {"org": str(org.code), "url": url}
    messages.success(request, f"A new invitation was emailed to {membership.user.email}.")
    return redirect("organizations:server-organization", org_code=org.code)


def _audit_page(request, events, time_zone, template, context):
    form = AuditSearchForm(request.GET or None)
    if form.is_valid():
        since, until = form.bounds(zoneinfo.ZoneInfo(time_zone))
        events = events.search(keyword=form.cleaned_data["q"].strip(), since=since, until=until)
    page = Paginator(events.select_related("organization"), 50).get_page(request.GET.get("page"))
    for event in page:
        event.label = audit.action_label(event.action)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        template,
        {
            **context,
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "time_zone": time_zone,
        },
    )


@server_admin_required
def server_audit_log(request):
    return _audit_page(
        request,
        AuditEvent.objects.all(),
        "UTC",
        "organizations/audit_log.html",
        {"all_organizations": True},
    )


@org_admin_required
def audit_log(request, org):
    return _audit_page(
        request,
        AuditEvent.objects.filter(organization=org),
        org.time_zone,
        "organizations/audit_log.html",
        {"org": org},
    )


# ----- the organization's settings: self-service and restore operators ------------------------


@org_admin_required
def organization_settings(request, org):
    return _settings_page(request, org)


def _settings_page(request, org, *, permissions_form=None, operator_form=None, status=200):
    operators = (
        Membership.objects.filter(organization=org, role=Membership.Role.OPERATOR)
        .select_related("user")
        .order_by("user__username")
    )
    return render(
        request,
        "organizations/settings.html",
        {
            "org": org,
            "permissions_form": permissions_form
            or UserPermissionsForm(
                initial={field: getattr(org, field) for field in actions.USER_PERMISSIONS}
            ),
            "operator_form": operator_form or OperatorForm(organization=org),
            "operators": operators,
        },
        status=status,
    )


@org_admin_required
@require_POST
def settings_user_permissions(request, org):
    form = UserPermissionsForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, org, permissions_form=form, status=400)
    actions.do_set_user_permissions(request=request, organization=org, **form.cleaned_data)
    messages.success(request, "Saved what users may do with their own backups.")
    return redirect("organizations:settings", org_code=org.code)


@org_admin_required
@require_POST
def settings_operator_add(request, org):
    form = OperatorForm(request.POST, organization=org)
    if not form.is_valid():
        return _settings_page(request, org, operator_form=form, status=400)
    membership = form.cleaned_data["email"]
    actions.do_set_member_role(
        request=request, membership=membership, role=Membership.Role.OPERATOR
    )
    messages.success(request, f"{membership.user.email} is now a restore operator.")
    return redirect("organizations:settings", org_code=org.code)


@org_admin_required
@require_POST
def settings_operator_remove(request, org, user_id):
    membership = get_object_or_404(
        Membership.objects.select_related("user", "organization"),
        organization=org,
        user_id=user_id,
        role=Membership.Role.OPERATOR,
    )
    actions.do_set_member_role(request=request, membership=membership, role=Membership.Role.USER)
    messages.success(request, f"{membership.user.email} is no longer a restore operator.")
    return redirect("organizations:settings", org_code=org.code)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, sending the link only within the limits of do_record_password_reset_request."""

    form_class = EmailPasswordResetForm

    def form_valid(self, form):
        if actions.do_record_password_reset_request(
            request=self.request, email=form.cleaned_data["email"]
        ):
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())
