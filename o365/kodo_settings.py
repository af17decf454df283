"""KodoADSettings.json: the file Register-KodoApp.ps1 writes and the portal reads.

Format (all values strings; README.md documents it):

    {
      "AppName": "Kodo Backup",
      "TenantId": "<guid>",
      "ClientId": "<guid>",
      "ClientSecret": "<secret>",
      "CertificatePassword": "<password of the PFX>",
      "CertificatePfxBase64": "<base64 of the PFX>",
      "CertificateThumbprint": "<SHA-1, upper-case hex>",
      "CertificateNotAfter": "2028-11-27T03:38:00Z",
      "Cloud": "Custom",                      optional: Global, USGovernment, China, Custom
      "AuthorityHost": "https://...",         optional, Custom only
      "GraphBaseUrl": "https://.../v1.0",     optional, Custom only
      "CaCertificatePem": "-----BEGIN ..."    optional, Custom only
    }
"""

import base64
import binascii
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from o365.validators import (
    MAX_PFX_BYTES,
    parse_guid,
    parse_https_url,
    validate_base64_text,
)
from organizations.validators import validate_text

MAX_SETTINGS_BYTES = 256 * 1024
REQUIRED_KEYS = ("TenantId", "ClientId")
TEXT_KEYS = (
    "AppName",
    "TenantId",
    "ClientId",
    "ClientSecret",
    "CertificatePassword",
    "CertificatePfxBase64",
    "CertificateThumbprint",
    "CertificateNotAfter",
    "Cloud",
    "AuthorityHost",
    "GraphBaseUrl",
    "CaCertificatePem",
)
# The same bounds as the fields of the configuration form: (longest, may hold line breaks).
TEXT_LIMITS = {
    "AppName": (200, False),
    "ClientSecret": (500, False),
    "CertificatePassword": (500, False),
    "CertificatePfxBase64": (MAX_PFX_BYTES * 2, True),
    "CertificateThumbprint": (64, False),
    "CertificateNotAfter": (64, False),
    "Cloud": (40, False),
    "CaCertificatePem": (64 * 1024, True),
}


@dataclass(frozen=True)
class KodoSettings:
    values: dict

    def get(self, key: str) -> str:
        return self.values.get(key, "") or ""

    def pfx(self) -> bytes:
        return decode_pfx_base64(self.get("CertificatePfxBase64"))


def decode_text(raw: bytes) -> str:
    """PowerShell writes UTF-8 (with or without BOM) or, with Out-File on 5.1, UTF-16."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if raw.startswith(bom):
            raw, chosen = raw[len(bom) :], encoding
            break
    else:
        chosen = "utf-8"
    try:
        return raw.decode(chosen)
    except UnicodeDecodeError:
        raise ValidationError(
            "KodoADSettings.json is not a text file. Upload the JSON file the script wrote."
        ) from None


def parse_kodo_settings(raw: bytes) -> KodoSettings:
    if len(raw) > MAX_SETTINGS_BYTES:
        raise ValidationError(
            f"KodoADSettings.json is larger than {MAX_SETTINGS_BYTES // 1024} KB; "
            "the script writes about 5 KB. Is it the right file?"
        )
    try:
        data = json.loads(decode_text(raw))
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"KodoADSettings.json is not valid JSON (line {error.lineno}, column {error.colno}): "
            f"{error.msg}."
        ) from None
    except (ValueError, RecursionError):  # a number of thousands of digits, [[[[...]]]] nesting
        raise ValidationError(
            "KodoADSettings.json cannot be read: it nests too deeply or holds a number too long. "
            "Upload the JSON file the script wrote."
        ) from None
    if not isinstance(data, dict):
        raise ValidationError("KodoADSettings.json must hold one JSON object {...}.")
    missing = [key for key in REQUIRED_KEYS if not data.get(key)]
    if missing:
        raise ValidationError(
            f"KodoADSettings.json lacks {', '.join(missing)}. Run Register-KodoApp.ps1 again, "
            "or fill the fields by hand."
        )
    wrong_type = [key for key in TEXT_KEYS if key in data and not isinstance(data[key], str | None)]
    if wrong_type:
        raise ValidationError(
            f"In KodoADSettings.json, {', '.join(wrong_type)} must be text in quotes."
        )
    if not data.get("ClientSecret") and not data.get("CertificatePfxBase64"):
        raise ValidationError(
            "KodoADSettings.json holds neither a ClientSecret nor a CertificatePfxBase64."
        )
    return KodoSettings(_checked_values(data))


def _checked_values(data: dict) -> dict:
    """Every value through the checks a typed value gets, with every problem named at once."""
    values, errors = {}, []
    for key in TEXT_KEYS:
        if not data.get(key):
            continue
        try:
            values[key] = _checked_value(key, data[key])
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return values


def _checked_value(key: str, value: str) -> str:
    label = f"{key} in KodoADSettings.json"
    if key in ("TenantId", "ClientId"):
        return str(parse_guid(value, label))
    if key in ("AuthorityHost", "GraphBaseUrl"):
        return parse_https_url(value, label, path_allowed=key != "AuthorityHost")
    max_length, multiline = TEXT_LIMITS[key]
    validate_text(value, label, max_length=max_length, multiline=multiline)
    if key == "CertificatePfxBase64":
        validate_base64_text(value, label)
    return value


def decode_pfx_base64(text: str) -> bytes:
    cleaned = "".join((text or "").split())
    if not cleaned:
        return b""
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            "The Private Certificate is not valid base64. Paste CertificatePfxBase64 from "
            "KodoADSettings.json whole, or upload the PFX file."
        ) from None
