"""The README's pictures are those `make screenshots` takes: every docs/screenshots/<name>.png the
README shows exists and is taken by a `screenshot(page, "<name>")` call in a test the make target
runs, and no picture is left that nothing takes or shows (a renamed page or test breaks this)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"


def make_target_tests() -> list[str]:
    """The test node ids of the Makefile's SCREENSHOT_TESTS (its continued lines joined)."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^SCREENSHOT_TESTS\s*:=(.*)$", makefile, re.MULTILINE)
    assert match, "the Makefile has no SCREENSHOT_TESTS"
    return match.group(1).split()


def names_taken(node_id: str) -> set[str]:
    """The names of the screenshot(page, "name") calls in a test file, or in one of its tests."""
    path, _, test_name = node_id.partition("::")
    tree = ast.parse((ROOT / path).read_text())
    if test_name:
        [tree] = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name == test_name
        ]
    return {
        node.args[1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "screenshot"
        and len(node.args) == 2
        and isinstance(node.args[1], ast.Constant)
    }


def shown_in_readme() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    return set(re.findall(r"docs/screenshots/([a-z0-9-]+)\.png", readme))


def test_the_make_target_takes_every_picture_the_readme_shows():
    taken = set().union(*(names_taken(node_id) for node_id in make_target_tests()))
    shown = shown_in_readme()

    assert shown, "the README shows no screenshot"
    assert shown <= taken, f"shown but taken by no test of make screenshots: {shown - taken}"


def test_every_picture_the_readme_shows_is_in_the_tree_and_none_other():
    files = {path.stem for path in SHOTS.glob("*.png")}

    assert shown_in_readme() <= files, f"missing: {shown_in_readme() - files}"
    assert files <= shown_in_readme(), f"not shown in the README: {files - shown_in_readme()}"


def test_the_make_target_takes_only_pictures_the_readme_shows():
    taken = set().union(*(names_taken(node_id) for node_id in make_target_tests()))

    assert taken <= shown_in_readme(), f"taken but not shown: {taken - shown_in_readme()}"
