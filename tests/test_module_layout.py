"""Where things live (docs/ARCHITECTURE.md "Layers"): every `do_*` workflow is in its app's
actions module, and imports sit at the top of modules; one inside a function says why."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["kodo", "organizations", "o365", "backups", "schedules"]


def modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path


def is_actions_module(name: str) -> bool:
    parts = name.split("/")
    return parts[1] == "actions.py" or (len(parts) > 2 and parts[1] == "actions")


def test_every_do_function_is_in_its_apps_actions():
    outside = [
        f"{name}: {node.name}"
        for name, path in modules()
        if not is_actions_module(name)
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("do_")
    ]
    assert outside == []


def _local_imports(tree):
    """Imports inside a function, except AppConfig.ready's (the app registry is loaded only
    then) and `if TYPE_CHECKING:` blocks."""
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name == "ready":
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node


def test_an_import_inside_a_function_says_why():
    unexplained = []
    for name, path in modules():
        lines = path.read_text().splitlines()
        for node in _local_imports(ast.parse("\n".join(lines))):
            line, above = lines[node.lineno - 1], lines[node.lineno - 2]
            if "# local:" not in line and "# local:" not in above:
                unexplained.append(f"{name}:{node.lineno}: {line.strip()}")
    assert unexplained == []
