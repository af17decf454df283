"""The apps form layers that point one way: kodo <- organizations <- o365 <- backups <- schedules.
A module imports only from its own layer and those below; m365sim (the Microsoft 365 simulator)
imports nothing from Kodo, and Kodo imports m365sim only in the demo command."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["kodo", "organizations", "o365", "backups", "schedules"]
# The demo command starts a simulator to back up; nothing else in Kodo may use it.
MAY_IMPORT_M365SIM = {"o365/management/commands/create_demo.py"}
# The project's wiring, above every app: the URL table that includes each app's urls.py, and the
# home page that sends each person to their organization.
PROJECT_WIDE = {"kodo/urls.py", "kodo/site_urls.py", "kodo/views.py", "kodo/settings.py"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules_of(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path


def test_no_app_imports_an_app_above_it():
    wrong = []
    for level, app in enumerate(LAYERS):
        above = set(LAYERS[level + 1 :])
        for name, path in modules_of(app):
            if name in PROJECT_WIDE:
                continue
            wrong += [f"{name} imports {package}" for package in imported_packages(path) & above]
    assert wrong == []


def test_kodo_uses_the_simulator_only_in_the_demo_command():
    wrong = [
        name
        for app in LAYERS
        for name, path in modules_of(app)
        if "m365sim" in imported_packages(path) and name not in MAY_IMPORT_M365SIM
    ]
    assert wrong == []


def test_the_simulator_imports_nothing_from_kodo():
    wrong = [
        f"{name} imports {package}"
        for name, path in modules_of("m365sim")
        for package in imported_packages(path) & set(LAYERS)
    ]
    assert wrong == []
