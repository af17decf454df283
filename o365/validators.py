"""Checks on what an admin gives Kodo about their tenant, with messages that say what to fix."""

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from django.core.exceptions import ValidationError

from organizations.validators import validate_text

MAX_PFX_BYTES = 64 * 1024
EXPIRY_WARNING_DAYS = 30
MAX_URL_LENGTH = 200  # what the URLFields of Configuration hold
BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]*")


def parse_guid(value, label: str) -> uuid.UUID:
    try:
        if len(str(value)) > 64:
            raise ValueError
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError, TypeError):
        raise ValidationError(
            f"{label} must be a GUID like 00000000-0000-0000-0000-000000000000; "
            "copy it from KodoADSettings.json or the Azure portal."
        ) from None


@dataclass(frozen=True)
class Certificate:
    pfx: bytes
    thumbprint: str  # SHA-1, upper-case hex: what Azure shows
    subject: str
    not_after: dt.datetime

    def status(self, now=None) -> str:
        return certificate_status(self.not_after, now)


def certificate_status(not_after, now=None) -> str:
    if not_after is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    if not_after <= now:
        return "expired"
    if not_after - now <= dt.timedelta(days=EXPIRY_WARNING_DAYS):
        return "expiring"
    return "valid"


def load_certificate(pfx: bytes, password: str) -> Certificate:
    """Open a PFX with its password; it must hold an RSA private key and its certificate."""
    if not pfx:
        raise ValidationError("The Private Certificate is empty.")
    if len(pfx) > MAX_PFX_BYTES:
        raise ValidationError(
            f"The Private Certificate is larger than {MAX_PFX_BYTES // 1024} KB; "
            "a PFX from Register-KodoApp.ps1 is about 3 KB. Is it the right file?"
        )
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(
            pfx, password.encode() if password else None
        )
    except ValueError:
        raise ValidationError(
            "The Certificate Password does not open this PFX file, or the file is not a PFX. "
            "Check both in KodoADSettings.json."
        ) from None
    except Exception:  # the parser rejects some garbage with other errors  # noqa: BLE001
        raise ValidationError("The Private Certificate is not a valid PFX file.") from None
    if key is None or certificate is None:
        raise ValidationError(
            "The PFX file must hold both the private key and its certificate. "
            "Export it again with the private key (Export-PfxCertificate)."
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("The certificate's key must be RSA (as Microsoft Entra requires).")
    return Certificate(
        pfx=pfx,
        thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
        subject=certificate.subject.rfc4514_string()[:200],
        not_after=certificate.not_valid_after_utc,
    )


def parse_ca_certificates(pem: str) -> str:
    """A PEM bundle of CA certificates for a custom cloud; returned normalised."""
    pem = (pem or "").strip()
    if not pem:
        return ""
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ValidationError(
            "The CA certificate must be PEM text starting with -----BEGIN CERTIFICATE-----."
        ) from None
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def parse_https_url(value: str, label: str, *, path_allowed: bool = True) -> str:
    """An https:// address with a host, no user:password, no query or fragment; without the
    trailing slash."""
    value = (value or "").strip()
    validate_text(value, label, max_length=MAX_URL_LENGTH)
    try:
        parts = urlsplit(value)
        hostname, port = parts.hostname, parts.port  # .port raises on a port out of range
    except ValueError:
        raise ValidationError(
            f"{label} is not a valid address: check the brackets of an IPv6 address and the port."
        ) from None
    del port
    if parts.scheme != "https" or not hostname:
        raise ValidationError(f"{label} must be an https:// address.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"{label} must not hold a user name or password (user:password@).")
    if parts.query or parts.fragment:
        raise ValidationError(f"{label} must not have a query (?...) or fragment (#...).")
    if not path_allowed and parts.path.strip("/"):
        raise ValidationError(f"{label} must be only https://host[:port], without a path.")
    return value.rstrip("/")


def validate_base64_text(value: str, label: str):
    if not BASE64_TEXT.fullmatch(value):
        raise ValidationError(f"{label} is not base64 text (A-Z, a-z, 0-9, +, / and =).")
