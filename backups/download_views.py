"""Downloads (placeholder until the DOWNLOAD helper writes it)."""

from django.http import Http404


def _pending(*args, **kwargs):
    raise Http404


download_version = download_zip = _pending
