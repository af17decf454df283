"""{% problem text %}: a stored error message (o365.problems text form) shown as a Problem, its
technical detail folded away; {{ text|problem_summary }}: the same in one paragraph (emails)."""

from django import template

from o365.problems import Problem

register = template.Library()


def _as_problem(value) -> Problem:
    return value if isinstance(value, Problem) else Problem.from_text(str(value or ""))


@register.inclusion_tag("includes/problem.html")
def problem(value):
    return {"problem": _as_problem(value)}


@register.filter
def problem_summary(value) -> str:
    return _as_problem(value).summary
