"""The audit log shows what happened in words ("Backup started"), not codes (`backup_started`),
and every action the code records has its words (issue 14 §4)."""

import ast
from pathlib import Path

from organizations.audit import ACTION_LABELS, action_label
from organizations.models import AuditEvent

ROOT = Path(__file__).resolve().parent.parent.parent
APPS = ["kodo", "organizations", "o365", "backups", "schedules"]

# Actions recorded with an f-string, and every value they take. A new f-string action fails
# test_every_recorded_action_has_a_label until it is listed here (and labelled).
FORMATTED = {
    "users_{kind}": ["users_import", "users_sync"],
    "services_{state}": ["services_enabled", "services_disabled"],
    "schedule_{state.lower()}": ["schedule_enabled", "schedule_disabled"],
}


def _strings(node) -> list[str]:
    """The action names an argument can be: a constant, either branch of `a if c else b`, or the
    values FORMATTED lists for an f-string ("?" + its source when unknown)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    if isinstance(node, ast.JoinedStr):
        source = ast.unparse(node)[2:-1]
        return FORMATTED.get(source, [f"? f-string {source}"])
    return []  # a variable: its values are recorded where it is passed (action="...")


def recorded_actions() -> dict[str, str]:
    """Every action name the code passes to audit.record (first argument) or as `action=` to a
    function that records one (record_download), with where."""
    found = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                arguments = []
                if name in ("audit.record", "record") and node.args:
                    arguments.append(node.args[0])
                arguments += [
                    k.value
                    for k in node.keywords
                    if k.arg == "action" and not name.endswith("add_argument")
                ]
                for argument in arguments:
                    for action in _strings(argument):
                        found[action] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_the_scan_finds_the_actions_recorded_across_the_apps():
    actions = recorded_actions()
    for expected in ("backup_started", "login_failed", "download_zip", "users_sync", "export"):
        assert expected in actions


def test_every_recorded_action_has_a_label():
    missing = {a: where for a, where in recorded_actions().items() if a not in ACTION_LABELS}
    assert missing == {}


def test_labels_are_words():
    for action, label in ACTION_LABELS.items():
        assert label and "_" not in label and label[0].isupper(), action
    assert action_label("backup_started") == "Backup started"
    assert action_label("something_new") == "Something new"  # unknown: still words


def test_the_audit_log_shows_labels_and_keeps_the_code_at_hand(admin_a_client, world):
    AuditEvent.objects.create(
        organization=world.org_a, action="backup_started", message="Backup of Ada."
    )
    html = admin_a_client.get(f"/o/{world.org_a.code}/audit/").content.decode()
    assert '<td title="backup_started">Backup started</td>' in html
    assert "<code>backup_started</code>" not in html


def test_searching_the_log_finds_entries_by_their_label(admin_a_client, world):
    AuditEvent.objects.create(organization=world.org_a, action="backup_started", message="Ada.")
    AuditEvent.objects.create(organization=world.org_a, action="logout", message="Bye.")
    page = admin_a_client.get(f"/o/{world.org_a.code}/audit/", {"q": "backup started"})
    assert [e.action for e in page.context["page"]] == ["backup_started"]
