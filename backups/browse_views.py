"""Browse a user's backups (placeholder until the BROWSE helper writes it)."""

from django.http import Http404


def _pending(*args, **kwargs):
    raise Http404


browse = file_versions = deleted_items = user_search = search = _pending
