"""Notification emails: one organization's bad data or failing email never stops the others'."""

import datetime as dt
import logging

import pytest
from django.core import mail
from django.utils import timezone

from backups.models import BackupRun
from organizations.models import Organization
from schedules import actions, notifications
from schedules.actions import do_fire_schedule
from schedules.models import Schedule, ScheduleFiring
from tests.factories import make_account, make_configuration, make_schedule, mirror


def _failed_firing(organization, name):
    configuration = make_configuration(organization, name=f"Contoso {organization.pk}")
    mirror(configuration, 1, prefix=f"o{organization.pk}")
    schedule = make_schedule(organization, configuration, name="Placeholder")
    Schedule.objects.filter(pk=schedule.pk).update(name=name)  # as a row saved before the check
    firing = do_fire_schedule(Schedule.objects.get(pk=schedule.pk))
    BackupRun.objects.filter(firings=firing).update(
        status="failed", active_user=None, finished_at=timezone.now()
    )
    return firing


def test_a_schedule_named_with_a_newline_does_not_stop_other_organizations_emails(world):
    other = _failed_firing(world.org_b, "Nightly")
    bad = _failed_firing(world.org_a, "Night\r\nBcc: victim@example.com\nly")  # fired last: first

    assert actions.do_notify_finished_firings() == 2

    assert sorted(m.to[0] for m in mail.outbox) == ["admin@alpha.example", "admin@beta.example"]
    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert subjects["admin@alpha.example"] == (
        "Kodo: backup schedule Night Bcc: victim@example.com ly failed"
    )
    assert all(not m.bcc and "\n" not in m.message()["Subject"] for m in mail.outbox)
    assert (
        ScheduleFiring.objects.filter(pk__in=[other.pk, bad.pk], notified_at__isnull=False).count()
        == 2
    )


@pytest.fixture
def failing_mail_to_alpha(monkeypatch):
    """The mail server refuses every email to organization A's admin."""
    from django.core.mail.backends.locmem import EmailBackend

    send_messages = EmailBackend.send_messages

    def refuse_alpha(self, messages):
        if any("admin@alpha.example" in m.to for m in messages):
            raise ConnectionRefusedError("the mail server refused the connection")
        return send_messages(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", refuse_alpha)


def test_a_failing_email_is_logged_and_retried_and_the_others_are_sent(
    world, failing_mail_to_alpha, caplog
):
    other = _failed_firing(world.org_b, "Nightly")
    failing = _failed_firing(world.org_a, "Nightly")

    with caplog.at_level(logging.ERROR):
        assert actions.do_notify_finished_firings() == 1

    assert [m.to for m in mail.outbox] == [["admin@beta.example"]]
    assert "could not send" in caplog.text and "ConnectionRefusedError" in caplog.text
    other.refresh_from_db()
    failing.refresh_from_db()
    assert other.notified_at is not None and failing.notified_at is None  # tried again next round


def test_a_firing_whose_email_fails_for_a_day_is_given_up(world, failing_mail_to_alpha):
    failing = _failed_firing(world.org_a, "Nightly")
    ScheduleFiring.objects.filter(pk=failing.pk).update(
        fired_at=timezone.now() - notifications.GIVE_UP_AFTER - dt.timedelta(minutes=1)
    )

    assert actions.do_notify_finished_firings() == 0

    failing.refresh_from_db()
    assert failing.notified_at is not None and not mail.outbox


def test_an_admin_email_unfit_for_a_header_is_left_out(world):
    make_account("second\n@alpha.example", world.org_a)
    _failed_firing(world.org_a, "Nightly")

    assert actions.do_notify_finished_firings() == 1

    [email] = mail.outbox
    assert email.to == ["admin@alpha.example"]


def test_an_organization_named_with_a_newline_still_gets_its_summary_and_others_theirs(world):
    Organization.objects.filter(pk=world.org_a.pk).update(name="Alpha\nUniversity")
    _failed_firing(world.org_a, "Nightly")
    _failed_firing(world.org_b, "Nightly")

    assert actions.do_send_summary_reports() == 2

    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        "Kodo: backup summary for Alpha University",
        "Kodo: backup summary for Beta MSP",
    ]


def test_a_failing_summary_is_logged_and_the_others_are_sent(world, failing_mail_to_alpha, caplog):
    _failed_firing(world.org_a, "Nightly")
    _failed_firing(world.org_b, "Nightly")

    with caplog.at_level(logging.ERROR):
        assert actions.do_send_summary_reports() == 1

    assert [m.to for m in mail.outbox] == [["admin@beta.example"]]
    assert "could not send" in caplog.text
