"""Restore pages (placeholder until the RESTORE-UI helper writes it)."""

from django.http import Http404


def _pending(*args, **kwargs):
    raise Http404


restore_new = restore_detail = cancel_restore = restore_results = _pending
