"""Live parts of pages (README "Live parts of a page"): an element that htmx refills every
POLL_SECONDS with the fragment its page's view answers, until the view answers POLL_DONE.

A page marks its live part with `{% load live %}<div {% live_poll url live_active %}>`; its view
answers with `live_render`, which picks the whole page or the fragment and says when to stop.
"""

from django.shortcuts import render
from django.utils.cache import patch_vary_headers

POLL_SECONDS = 2
# htmx swaps a 286 answer in like a 200, then stops polling the element that asked.
POLL_DONE = 286
# Messages about a job (extra_tags=JOB_MESSAGE: "Backing up …", "Import users started.") sit in
# #job-messages (templates/includes/messages.html) and leave the page with the last poll.
JOB_MESSAGE = "job"
_CLEAR_JOB_MESSAGES = '<div id="job-messages" hx-swap-oob="true"></div>'


def is_poll(request) -> bool:
    """A live part asking for its fragment (htmx sends HX-Request on its own requests)."""
    return request.headers.get("HX-Request") == "true"


def live_render(request, page_template, fragment_template, context, *, active: bool):
    """The page, or for a poll only its live fragment: 200 while something shown is `active`
    (htmx polls again), POLL_DONE once nothing is (htmx shows it and stops; job messages go).

    The page gets `live_active` to start polling only while something shown is active; without
    JavaScript a reload shows the same."""
    context = {**context, "live_active": active}
    if not is_poll(request):
        response = render(request, page_template, context)
    else:
        response = render(request, fragment_template, context)
        if not active:
            response.status_code = POLL_DONE
            response.reason_phrase = "Done"
            response.content += _CLEAR_JOB_MESSAGES.encode()
    patch_vary_headers(response, ["HX-Request"])
    return response
