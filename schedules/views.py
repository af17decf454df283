import datetime as dt

from django.contrib import messages
from django.db.models import Count, Exists, OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from backups.models import BackupRun
from kodo import jobs
from kodo.live import JOB_MESSAGE, live_render
from o365.models import Configuration
from organizations.access import org_admin_required, services_required
from schedules import actions, picker
from schedules.forms import SHOWN_IF, STEPS, ScheduleForm, WhenForm
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
        for f in _with_result_flags(
            ScheduleFiring.objects.filter(pk__in=[row.last_firing_id for row in rows])
        )
    }
    now = timezone.now()
    for schedule in rows:
        schedule.last_firing = firings.get(schedule.last_firing_id)
        schedule.last_result = _result(schedule.last_firing) if schedule.last_firing else ""
        schedule.next_run = schedule.next_run_after(now)
    return live_render(
        request,
        "schedules/list.html",
        "schedules/list_table.html",
        {
            "org": org,
            "tab": "schedules",
            "schedules": rows,
            "has_configuration": Configuration.objects.for_organization(org).exists(),
        },
        active=any(schedule.last_result == "running" for schedule in rows),
    )


# ScheduleFiring.result, asked of the database: a firing holds a run per user (25,000 of them
# at a service provider's size), so each status group is an EXISTS that walks the organization's
# runs of that status (index `runs_by_status`: few but the succeeded ones) made around the
# firing, and looks each up in the firing's runs, instead of loading every run. A firing's runs
# are made as it fires (schedules.actions.do_fire_schedule): FIRING_RUNS_WINDOW either side
# keeps the walk to a couple of days of runs however long the organization's history; a firing
# that reused a run older than that (still going when it fired) is worked out in full.
FIRING_RUNS_WINDOW = dt.timedelta(days=1)
_RESULT_GROUPS = (
    ("running", jobs.ACTIVE_STATUSES),
    ("failed", (jobs.Status.FAILED, jobs.Status.CANCELED)),
    ("warning", (jobs.Status.PARTIAL, jobs.Status.SKIPPED)),
)


def _with_result_flags(firings):
    Through = ScheduleFiring.runs.through
    flags = {
        f"has_{result}": Exists(
            BackupRun.objects.filter(
                organization=OuterRef("schedule__organization"),
                status__in=statuses,
                created_at__gte=OuterRef("fired_at") - FIRING_RUNS_WINDOW,
                created_at__lte=OuterRef("fired_at") + FIRING_RUNS_WINDOW,
            ).filter(
                Exists(
                    Through.objects.filter(
                        schedulefiring_id=OuterRef(OuterRef("pk")), backuprun_id=OuterRef("pk")
                    )
                )
            )
        )
        for result, statuses in _RESULT_GROUPS
    }
    # Ordered as the unique index (firing, run) is: PostgreSQL reads one entry of it, where a
    # plain EXISTS may scan the table for the firing's rows.
    a_run = Subquery(
        Through.objects.filter(schedulefiring_id=OuterRef("pk"))
        .order_by("schedulefiring_id", "backuprun_id")
        .values("backuprun_id")[:1]
    )
    # Its oldest run (the lowest id): one made before the window was already running when the
    # schedule fired (start_run reused it, e.g. a first backup of a large OneDrive that takes
    # days); such a firing's result is worked out from all its runs instead (_result).
    oldest_run_created_at = Subquery(
        BackupRun.objects.filter(pk=OuterRef("a_run")).values("created_at")[:1]
    )
    return firings.annotate(a_run=a_run, **flags).annotate(
        oldest_run_created_at=oldest_run_created_at
    )


def _result(firing) -> str:
    """The words of ScheduleFiring.result from the flags of _with_result_flags."""
    if firing.a_run is None:
        return "empty"
    if firing.oldest_run_created_at < firing.fired_at - FIRING_RUNS_WINDOW:
        return firing.result  # rare: a run older than the window is in it (see above)
    for result, _ in _RESULT_GROUPS:
        if getattr(firing, f"has_{result}"):
            return result
    return "succeeded"


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
    if action == "search" or "user_page" in request.POST or action == "refresh":
        # Without JavaScript: the users search, its pages and the next runs reload the step.
        return _render_wizard(request, org, form, schedule, step=step, show_errors=False)
    if action == "save" and valid:
        saved = actions.do_save_schedule(
            request=request, organization=org, data=form.cleaned_data, schedule=schedule
        )
        messages.success(request, f"Saved schedule {saved.name}: {saved.describe_when()}.")
        return redirect("schedules:schedules", org_code=org.code)
    first_error = form.first_step_with_errors()
    if action == "next" and (first_error is None or first_error > step):
        if step + 1 < len(STEPS) or valid:
            return _render_wizard(request, org, form, schedule, step=step + 1, show_errors=False)
    return _render_wizard(request, org, form, schedule, step=first_error or step, show_errors=True)


def _render_wizard(request, org, form, schedule, *, step, show_errors):
    title, names = STEPS[step - 1]
    context = {
        "org": org,
        "tab": "schedules",
        "form": form,
        "schedule": schedule,
        "step": step,
        "steps": [t for t, _ in STEPS],
        "title": title,
        "last": step == len(STEPS),
        "visible": [
            {"field": form[name], "shown_if": "=".join(SHOWN_IF.get(name, ()))} for name in names
        ],
        "hidden": [form[name] for _, fields in STEPS for name in fields if name not in names],
        "show_errors": show_errors,
    }
    if "users" in names:
        configuration = form.picked_configuration()
        text = request.POST.get("user_q", "")[:200]
        context.update(
            chosen=form.chosen_users(),
            chosen_ids=set(form.chosen_ids()),
            user_q=text,
            users_page=picker.user_page(configuration, text, request.POST.get("user_page", 1))
            if configuration
            else None,
        )
    if "time_zone" in names:
        context.update(time_zones=picker.time_zone_names(), **_next_runs(WhenForm(form.data)))
    if step == len(STEPS):
        context.update(review=form.review(), **_next_runs(form))
    return render(request, "schedules/wizard.html", context)


def _next_runs(when) -> dict:
    """The next runs of the times in `when` (a bound form), or why there are none yet."""
    if not when.is_bound:
        return {"next_runs": None, "next_runs_zone": "", "next_runs_problem": ""}
    if not when.is_valid():
        wrong = [when[name].label for name in when.errors if name in when.fields]
        typed = str(when.data.get("time_zone", ""))[:64]
        return {
            "next_runs": None,
            "next_runs_zone": "",
            "next_runs_problem": f"Check {', '.join(wrong)} to see the next runs."
            if wrong
            else "Check the times to see the next runs.",
            # The zones whose name holds what was typed, to pick with one click.
            "time_zone_suggestions": picker.time_zones_matching(typed, limit=8)
            if "time_zone" in when.errors
            else [],
        }
    schedule = when.schedule()
    return {
        "next_runs": schedule.next_runs(5),
        "next_runs_zone": schedule.time_zone,
        "next_runs_problem": "",
    }


@services_required
def schedule_users(request, org):
    """The users search of the wizard: an HTML fragment of one page of a configuration's users."""
    configuration = ScheduleForm(
        {"configuration": request.GET.get("configuration", "")}, organization=org
    ).picked_configuration()
    if configuration is None:
        raise Http404("No such configuration.")
    text = request.GET.get("user_q", "")[:200]
    return render(
        request,
        "schedules/user_results.html",
        {
            "org": org,
            "user_q": text,
            "users_page": picker.user_page(configuration, text, request.GET.get("user_page", 1)),
        },
    )


@services_required
def schedule_preview(request, org):
    """The wizard's next runs for the times in the query string: an HTML fragment."""
    return render(
        request, "schedules/next_runs_body.html", {"org": org, **_next_runs(WhenForm(request.GET))}
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
        request,
        f"Started {schedule.name}: {count} user backup{'s' if count != 1 else ''}.",
        extra_tags=JOB_MESSAGE,
    )
    return redirect("schedules:schedules", org_code=org.code)
