"""One word per job status on every page (issue 14 §4): a finished job reads "Succeeded",
"Partially succeeded", "Failed", "Skipped" or "Canceled" (kodo.jobs.Status, the glossary's
words) on the Tasks page and its filter, the Backups page, a run's page, a user's backup
history, a restore's page, the Dashboard and the server Overview, and in the weekly summary
email; never another word for the same state ("Completed", "Partial", "Done", ...). Each count
of the Dashboard and the Overview links to the Tasks page filtered to exactly those runs."""

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from backups.models import BackupRun, RestoreJob
from kodo import jobs
from o365.models import DirectoryJob
from schedules.notifications import send_summary_report
from tests.factories import make_finished_run, make_users

LABELS = {status.value: status.label for status in jobs.Status}
FINISHED = [jobs.Status(status) for status in jobs.FINISHED_STATUSES]
# Other words for the same states, as they crept into pages before.
OTHER_WORDS = {
    "completed",
    "complete",
    "done",
    "finished",
    "ok",
    "success",
    "successful",
    "partial",
    "partly succeeded",
    "partial success",
    "cancelled",
    "aborted",
    "error",
    "errors",
    "in progress",
    "pending",
}


class Badges(HTMLParser):
    """The text of every badge (`class="badge ..."`), the options of the status filter and the
    links around the badges."""

    def __init__(self):
        super().__init__()
        self.badges: list[str] = []
        self.status_options: list[str] = []
        self.badge_links: list[tuple[str, str]] = []  # (href, badge text)
        self._badge_depth = 0
        self._text: list[str] = []
        self._in_status_select = False
        self._in_option = False
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self._href = attrs.get("href")
        if tag == "select" and attrs.get("name") == "status":
            self._in_status_select = True
        if tag == "option" and self._in_status_select:
            self._in_option, self._text = True, []
        if tag == "span" and "badge" in (attrs.get("class") or "").split():
            self._badge_depth, self._text = 1, []
        elif tag == "span" and self._badge_depth:
            self._badge_depth += 1

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None
        if tag == "select":
            self._in_status_select = False
        if tag == "option" and self._in_option:
            self._in_option = False
            self.status_options.append(" ".join("".join(self._text).split()))
        if tag == "span" and self._badge_depth:
            self._badge_depth -= 1
            if not self._badge_depth:
                text = " ".join("".join(self._text).split())
                self.badges.append(text)
                if self._href:
                    self.badge_links.append((self._href, text))

    def handle_data(self, data):
        if self._badge_depth or self._in_option:
            self._text.append(data)


def badges_of(response) -> Badges:
    assert response.status_code == 200, response.status_code
    parser = Badges()
    parser.feed(response.content.decode())
    return parser


def word(badge: str) -> str:
    """A badge without its count: "3 partially succeeded" -> "partially succeeded"."""
    return re.sub(r"^\d+\s+", "", badge).strip().lower()


def assert_one_vocabulary(badges: list[str]):
    others = [badge for badge in badges if word(badge) in OTHER_WORDS]
    assert not others, f"other words for a job's state: {others}"


@pytest.fixture
def runs(world):
    """A backup run in every status, each of its own user (at most one active run per user),
    and an import that succeeded."""
    users = make_users(world.org_a, len(jobs.Status))
    made = {}
    for user, status in zip(users, jobs.Status, strict=True):
        if status in jobs.ACTIVE_STATUSES:
            made[status] = BackupRun.objects.create(
                organization=world.org_a,
                configuration=user.configuration,
                directory_user=user,
                active_user=user,
                status=status,
            )
        else:
            made[status] = make_finished_run(user, status=status)
    DirectoryJob.objects.create(
        configuration=users[0].configuration,
        kind=DirectoryJob.Kind.IMPORT,
        status=DirectoryJob.Status.SUCCEEDED,
    )
    return made


@pytest.fixture
def restores(world, runs):
    """A restore in every status a restore can end in, from the succeeded run."""
    source = runs[jobs.Status.SUCCEEDED]
    return {
        status: RestoreJob.objects.create(
            organization=world.org_a,
            source_user=source.directory_user,
            target_user=source.directory_user,
            as_of_run=source,
            paths=["/Documents"],
            status=status,
            finished_at=None if status in jobs.ACTIVE_STATUSES else timezone.now(),
        )
        for status in (
            jobs.Status.QUEUED,
            jobs.Status.RUNNING,
            jobs.Status.SUCCEEDED,
            jobs.Status.PARTIAL,
            jobs.Status.FAILED,
            jobs.Status.CANCELED,
        )
    }


def test_the_tasks_page_words_every_status_as_its_badge(admin_a_client, world, runs, restores):
    page = badges_of(admin_a_client.get(reverse("backups:tasks", args=[world.org_a.code])))

    assert_one_vocabulary(page.badges)
    for status in jobs.Status:
        assert LABELS[status] in page.badges, status
    # Its status filter offers the same words, and nothing else.
    assert page.status_options == ["All statuses", *(label for _, label in jobs.Status.choices)]


@pytest.mark.parametrize("status", list(jobs.Status))
def test_the_tasks_filter_of_a_status_shows_only_jobs_in_it(
    admin_a_client, world, runs, restores, status
):
    response = admin_a_client.get(
        reverse("backups:tasks", args=[world.org_a.code]), {"status": status.value}
    )

    assert not response.context["form"].errors
    shown = {task.obj.job_status for task in response.context["tasks"]}
    assert shown == {status}
    assert set(badges_of(response).badges) >= {LABELS[status]}


def test_the_backups_page_and_each_run_page_say_the_runs_status(admin_a_client, world, runs):
    org = world.org_a
    listing = badges_of(admin_a_client.get(reverse("backups:backups", args=[org.code])))
    assert_one_vocabulary(listing.badges)
    assert {LABELS[status] for status in jobs.Status} <= set(listing.badges)

    for status, run in runs.items():
        page = badges_of(
            admin_a_client.get(reverse("backups:backup-run", args=[org.code, run.code]))
        )
        assert_one_vocabulary(page.badges)
        assert LABELS[status] in page.badges, status

        user = run.directory_user
        history = badges_of(
            admin_a_client.get(
                reverse(
                    "backups:backup-user-history",
                    args=[org.code, user.configuration.code, user.graph_id],
                )
            )
        )
        assert_one_vocabulary(history.badges)
        assert LABELS[status] in history.badges, status


def test_each_restore_page_says_the_restores_status(admin_a_client, world, restores):
    for status, job in restores.items():
        page = badges_of(
            admin_a_client.get(reverse("backups:restore", args=[world.org_a.code, job.code]))
        )
        assert_one_vocabulary(page.badges)
        assert LABELS[status] in page.badges, status


def _linked_counts(page, tasks_path):
    """The Dashboard's / Overview's badges of backup results ("3 succeeded") that link to the
    Tasks page: {status: count}."""
    counts = {}
    for href, text in page.badge_links:
        url = urlsplit(href)
        query = parse_qs(url.query)
        if url.path != tasks_path or query.get("type") != ["backup"] or "status" not in query:
            continue
        count, label = text.split(" ", 1)
        [status] = query["status"]
        assert label == LABELS[status].lower(), (href, text)
        counts[status] = int(count)
    return counts


def test_the_dashboards_counts_say_the_status_and_link_to_exactly_those_runs(
    admin_a_client, world, runs
):
    tasks_path = reverse("backups:tasks", args=[world.org_a.code])
    page = badges_of(admin_a_client.get(reverse("backups:dashboard", args=[world.org_a.code])))

    assert_one_vocabulary(page.badges)
    counts = _linked_counts(page, tasks_path)
    assert counts == {status.value: 1 for status in FINISHED}
    for status, count in counts.items():
        response = admin_a_client.get(tasks_path, {"type": "backup", "status": status})
        assert not response.context["form"].errors
        assert [task.obj for task in response.context["tasks"]] == [runs[status]] * count


def test_the_overviews_counts_say_the_status_and_link_to_exactly_those_runs(
    server_admin_client, world, runs
):
    tasks_path = reverse("backups:tasks", args=[world.org_a.code])
    page = badges_of(server_admin_client.get(reverse("backups:server-overview")))

    assert_one_vocabulary(page.badges)
    counts = _linked_counts(page, tasks_path)
    assert counts == {status.value: 1 for status in FINISHED}


def test_the_summary_email_words_the_statuses_as_the_pages_do(world, runs):
    assert send_summary_report(world.org_a, timezone.now() - timezone.timedelta(days=7), 7)

    body = mail.outbox[0].body
    for status in jobs.Status:
        assert f"  {LABELS[status]}: 1\n" in body, status
    assert not re.search(r"^\s*(completed|partial|succeeded):", body, re.MULTILINE), body
