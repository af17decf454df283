"""The retention policies the organization's enabled schedules give their users, handed to
prune (backups.prune.register_policy_source, at start: see schedules.apps)."""

from backups.prune import Policy
from schedules.models import Schedule


def schedule_policies(organization) -> dict[int, Policy]:
    """{directory user id: policy} for the users the organization's enabled schedules cover, the
    most generous where schedules overlap (one query per schedule)."""
    policies: dict[int, Policy] = {}
    schedules = Schedule.objects.for_organization(organization).filter(enabled=True)
    for schedule in schedules.select_related("configuration"):
        policy = Policy(schedule.keep_versions, schedule.keep_deleted_timedelta())
        for user_id in schedule.users_for_firing().values_list("pk", flat=True).iterator():
            known = policies.get(user_id)
            policies[user_id] = policy if known is None else known.most_generous(policy)
    return policies
