"""Sending one email so that its data cannot break it, nor its failure break the next one."""

import logging

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email

from organizations.validators import forbidden_character, single_line

log = logging.getLogger(__name__)


def header_recipients(addresses) -> list[str]:
    """The addresses fit for a To: header; the others are logged and left out."""
    fit = []
    for address in addresses:
        try:
            if forbidden_character(address) is not None:
                raise ValidationError("control character")
            validate_email(address)
        except ValidationError:
            log.warning("email: skipped the recipient %r, not a valid address", address[:100])
            continue
        fit.append(address)
    return fit


def send_email(subject: str, body: str, recipients) -> bool:
    """Send one email; a failure is logged and answered False, never raised, so a loop over
    organizations goes on. Header values are made single-line whatever the data holds."""
    subject = single_line(subject, max_length=200)
    recipients = header_recipients(recipients)
    if not recipients:
        return False
    try:
        send_mail(subject, body, None, recipients)
    except Exception:  # SMTP down, a refused address, a bad header: this email only  # noqa: BLE001
        log.exception("email: could not send %r to %d recipient(s)", subject, len(recipients))
        return False
    return True
