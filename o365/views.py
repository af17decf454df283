import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from kodo.live import JOB_MESSAGE, live_render
from o365 import actions
from o365.access import get_configuration
from o365.forms import AutoSyncForm, ConfigurationForm, DirectoryFilterForm, ImportUsersForm
from o365.models import Configuration, DirectoryJob
from o365.people import PeopleFilterForm, people_of
from o365.permissions import PERMISSIONS
from organizations.access import org_admin_required, services_required


@services_required
def services(request, org):
    configurations = Configuration.objects.for_organization(org)
    return render(request, "o365/services.html", {"org": org, "configurations": configurations})


@services_required
def office365(request, org):
    return redirect("o365:configurations", org_code=org.code)


@services_required
def configurations(request, org):
    return render(
        request,
        "o365/configurations.html",
        {
            "org": org,
            "tab": "configuration",
            "configurations": Configuration.objects.for_organization(org).select_related("cloud"),
            "permissions": PERMISSIONS,
        },
    )


# The secret, certificate and its password never appear on an error page (kodo.reporting).
SECRET_FIELDS = ("client_secret", "certificate_password", "certificate_base64")


@services_required
@sensitive_post_parameters(*SECRET_FIELDS)
@sensitive_variables()
def configuration_new(request, org):
    form = ConfigurationForm(request.POST or None, request.FILES or None, organization=org)
    if request.method == "POST" and form.is_valid():
        configuration = actions.do_create_configuration(
            request=request, organization=org, data=form.cleaned_data
        )
        messages.success(request, f"Saved {configuration.name}. Now TEST CONNECTION.")
        return redirect("o365:configurations", org_code=org.code)
    return _configuration_form_page(request, org, form, None)


@services_required
@sensitive_post_parameters(*SECRET_FIELDS)
@sensitive_variables()
def configuration_edit(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    form = ConfigurationForm(
        request.POST or None, request.FILES or None, organization=org, instance=configuration
    )
    if request.method == "POST" and form.is_valid():
        actions.do_update_configuration(
            request=request, configuration=configuration, data=form.cleaned_data
        )
        messages.success(request, f"Saved {configuration.name}.")
        return redirect("o365:configurations", org_code=org.code)
    return _configuration_form_page(request, org, form, configuration)


def _configuration_form_page(request, org, form, configuration):
    context = {"org": org, "tab": "configuration", "form": form, "configuration": configuration}
    return render(request, "o365/configuration_form.html", context)


@services_required
@require_POST
def configuration_delete(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    actions.do_delete_configuration(request=request, configuration=configuration)
    messages.success(request, f"Deleted {configuration.name}.")
    return redirect("o365:configurations", org_code=org.code)


@services_required
@require_POST
@sensitive_variables()
def configuration_test(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    result = actions.do_test_connection(request=request, configuration=configuration)
    (messages.success if result.ok else messages.error)(request, result.summary)
    return redirect("o365:configurations", org_code=org.code)


def _users_tab_context(request, org, configuration):
    rows = DirectoryFilterForm(request.GET or None)
    listed = (
        rows.filter(configuration.directory_users.select_related("account"))
        if configuration
        else None
    )
    page = Paginator(listed, 50).get_page(request.GET.get("page")) if configuration else None
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "org": org,
        "tab": "users",
        "configuration": configuration,
        "configurations": Configuration.objects.for_organization(org),
        "filter_form": rows,
        "page": page,
        "query": query.urlencode(),
        "job": configuration.directory_jobs.first() if configuration else None,
        "import_form": ImportUsersForm(configuration=configuration) if configuration else None,
        "auto_sync_form": AutoSyncForm(
            initial={
                "auto_sync_enabled": configuration.auto_sync_enabled,
                "auto_sync_time": configuration.auto_sync_time,
                "auto_sync_time_zone": configuration.auto_sync_time_zone or org.time_zone,
            }
        )
        if configuration
        else None,
    }


@services_required
def configuration_users(request, org):
    code = request.GET.get("configuration")
    if code is None:
        configuration = Configuration.objects.for_organization(org).first()
    elif _is_uuid(code):
        configuration = get_configuration(org, code)
    else:
        raise Http404
    context = _users_tab_context(request, org, configuration)
    job = context["job"]
    return live_render(
        request,
        "o365/users.html",
        "o365/users_live.html",
        context,
        active=bool(job and job.is_active),
    )


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _users_url(org, configuration):
    return (
        f"{reverse('o365:configuration-users', args=[org.code])}?configuration={configuration.code}"
    )


@services_required
@require_POST
def directory_import(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    form = ImportUsersForm(request.POST, configuration=configuration)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(_users_url(org, configuration))
    job, created = actions.do_start_directory_job(
        configuration=configuration,
        kind=DirectoryJob.Kind.IMPORT,
        requested_by=request.user,
        options=form.options(),
        request=request,
    )
    _report_start(request, job, created)
    return redirect(_users_url(org, configuration))


@services_required
@require_POST
def directory_sync(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    job, created = actions.do_start_directory_job(
        configuration=configuration,
        kind=DirectoryJob.Kind.SYNC,
        requested_by=request.user,
        request=request,
    )
    _report_start(request, job, created)
    return redirect(_users_url(org, configuration))


def _report_start(request, job, created):
    if created:
        messages.success(request, f"{job.get_kind_display()} started.", extra_tags=JOB_MESSAGE)
    else:
        messages.warning(
            request,
            f"{job.get_kind_display()} is already "
            f"{job.get_status_display().lower()}: see its progress below.",
            extra_tags=JOB_MESSAGE,
        )


@services_required
def directory_job(request, org, configuration_code, job_code):
    configuration = get_configuration(org, configuration_code)
    job = get_object_or_404(configuration.directory_jobs, code=job_code)
    return live_render(
        request,
        "o365/job_progress.html",
        "o365/job_progress_body.html",
        {"org": org, "configuration": configuration, "job": job},
        active=job.is_active,
    )


@services_required
@require_POST
def directory_auto_sync(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    form = AutoSyncForm(request.POST)
    if form.is_valid():
        actions.do_set_auto_sync(
            request=request,
            configuration=configuration,
            enabled=form.cleaned_data["auto_sync_enabled"],
            time=form.cleaned_data["auto_sync_time"],
            time_zone=form.cleaned_data["auto_sync_time_zone"],
        )
        messages.success(request, "Automatic synchronization saved.")
        return redirect(_users_url(org, configuration))
    context = _users_tab_context(request, org, configuration)
    context["auto_sync_form"] = form
    return render(request, "o365/users.html", context)


@org_admin_required
def organization_users(request, org):
    form = PeopleFilterForm(request.GET or None)
    page = Paginator(form.filter(people_of(org)), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "o365/organization_users.html",
        {
            "org": org,
            "form": form,
            "page": page,
            "query": query.urlencode(),
        },
    )
