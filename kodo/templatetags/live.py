from django import template
from django.utils.html import format_html

from kodo.live import POLL_SECONDS

register = template.Library()


@register.simple_tag
def live_poll(url, active):
    """The attributes that make an element live (kodo/live.py): htmx refills it from `url`
    every POLL_SECONDS while `active`; nothing when idle, so an idle page never polls."""
    if not active:
        return ""
    return format_html('hx-get="{}" hx-trigger="every {}s"', url, POLL_SECONDS)
