import datetime as dt

from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from o365.models import Configuration
from organizations.access import org_admin_required, services_required
from schedules import actions
from schedules.forms import STEPS, ScheduleForm
from schedules.models import Schedule, ScheduleFiring


def get_schedule(org, code) -> Schedule:
    return get_object_or_404(Schedule.objects.for_organization(org), code=code)


@org_admin_required
def schedules(request, org):
    rows = list(
        Schedule.objects.for_organization(org)
        .select_related("configuration")
        .annotate(
            chosen_count=Count("users"),
            last_firing_id=Subquery(
                ScheduleFiring.objects.filter(schedule=OuterRef("pk"))
                .order_by("-fired_at", "-id")
                .values("pk")[:1]
            ),
        )
    )
    firings = {
        f.pk: f
        for f in ScheduleFiring.objects.filter(
            pk__in=[s.last_firing_id for s in rows if s.last_firing_id]
        ).prefetch_related("runs")
    }
    now = timezone.now()
    for schedule in rows:
        schedule.last_firing = firings.get(schedule.last_firing_id)
        schedule.last_result = schedule.last_firing.result if schedule.last_firing else ""
        schedule.next_run = schedule.next_run_after(now)
    return render(
        request,
        "schedules/list.html",
        {
            "org": org,
            "tab": "schedules",
            "schedules": rows,
            "has_configuration": Configuration.objects.for_organization(org).exists(),
        },
    )


def _wizard(request, org, schedule=None):
    if request.method != "POST":
        initial = (
            ScheduleForm.initial_from(schedule)
            if schedule
            else {
                "time_zone": org.time_zone,
                "start_date": dt.date.today(),
                "configuration": Configuration.objects.for_organization(org)
                .values_list("pk", flat=True)
                .first(),
            }
        )
        form = ScheduleForm(initial=initial, organization=org, instance=schedule)
        return _render_wizard(request, org, form, schedule, step=1, show_errors=False)

    form = ScheduleForm(request.POST, organization=org, instance=schedule)
    try:
        step = min(max(int(request.POST.get("step", 1)), 1), len(STEPS))
    except ValueError:
        step = 1
    action = request.POST.get("action")
    valid = form.is_valid()
    if action == "back":
        return _render_wizard(
            request, org, form, schedule, step=max(step - 1, 1), show_errors=False
        )
    if action == "save" and valid:
        saved = actions.do_save_schedule(
            request=request, organization=org, data=form.cleaned_data, schedule=schedule
        )
        messages.success(request, f"Saved schedule {saved.name}: {saved.describe_when()}.")
        return redirect("schedules:schedules", org_code=org.code)
    first_error = form.first_step_with_errors()
    if action == "next" and (first_error is None or first_error > step):
        return _render_wizard(request, org, form, schedule, step=step + 1, show_errors=False)
    return _render_wizard(request, org, form, schedule, step=first_error or step, show_errors=True)


def _render_wizard(request, org, form, schedule, *, step, show_errors):
    title, names = STEPS[step - 1]
    return render(
        request,
        "schedules/wizard.html",
        {
            "org": org,
            "tab": "schedules",
            "form": form,
            "schedule": schedule,
            "step": step,
            "steps": [t for t, _ in STEPS],
            "title": title,
            "last": step == len(STEPS),
            "visible": [form[name] for name in names],
            "hidden": [form[name] for _, fields in STEPS for name in fields if name not in names],
            "show_errors": show_errors,
        },
    )


@services_required
def schedule_new(request, org):
    if not Configuration.objects.for_organization(org).exists():
        messages.warning(
            request, "Add an Office 365 configuration first: schedules back up its users."
        )
        return redirect("o365:configurations", org_code=org.code)
    return _wizard(request, org)


@services_required
def schedule_edit(request, org, schedule_code):
    return _wizard(request, org, get_schedule(org, schedule_code))


@services_required
@require_POST
def schedule_toggle(request, org, schedule_code):
    schedule = get_schedule(org, schedule_code)
    actions.do_set_schedule_enabled(
        request=request, schedule=schedule, enabled=not schedule.enabled
    )
    messages.success(request, f"{'Enabled' if schedule.enabled else 'Disabled'} {schedule.name}.")
    return redirect("schedules:schedules", org_code=org.code)


@services_required
@require_POST
def schedule_delete(request, org, schedule_code):
    schedule = get_schedule(org, schedule_code)
    actions.do_delete_schedule(request=request, schedule=schedule)
    messages.success(request, f"Deleted {schedule.name}. Its backups are kept.")
    return redirect("schedules:schedules", org_code=org.code)


@services_required
@require_POST
def schedule_run_now(request, org, schedule_code):
    schedule = get_schedule(org, schedule_code)
    firing = actions.do_fire_schedule(schedule, trigger="run_now", request=request)
    count = firing.runs.count()
    messages.success(
        request, f"Started {schedule.name}: {count} user backup{'s' if count != 1 else ''}."
    )
    return redirect("schedules:schedules", org_code=org.code)
