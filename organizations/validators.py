import unicodedata

from django.core.exceptions import ValidationError

# Names and everything that goes into an email header are one line of printable text: a newline
# there makes Django refuse the whole email (BadHeaderError), a NUL makes PostgreSQL refuse the row.
LINE_BREAKS = "\u2028\u2029"
MULTILINE_ALLOWED = "\n\r\t"
MAX_DATABASE_ID = 2**63 - 1


def forbidden_character(value: str, *, multiline: bool = False) -> str | None:
    """The first control character, lone surrogate or line break in `value`, or None."""
    for character in value:
        if multiline and character in MULTILINE_ALLOWED:
            continue
        if character in LINE_BREAKS or unicodedata.category(character) in ("Cc", "Cs"):
            return character
    return None


def _describe(character: str) -> str:
    named = {"\n": "a line break", "\r": "a line break", "\t": "a tab", "\x00": "a NUL character"}
    return named.get(character, f"the control character U+{ord(character):04X}")


def validate_single_line(value: str, label: str = "This value"):
    """One line of text with no control characters (a name, an email subject)."""
    character = forbidden_character(str(value))
    if character is not None:
        raise ValidationError(
            f"{label} must be one line of text: it contains {_describe(character)}. "
            "Type it again without it."
        )


def validate_text(
    value: str, label: str = "This value", *, max_length: int, multiline: bool = False
):
    """Text from outside (typed or read from a file): bounded, without control characters."""
    if not isinstance(value, str):
        raise ValidationError(f"{label} must be text.")
    if len(value) > max_length:
        raise ValidationError(
            f"{label} is {len(value):,} characters long; at most {max_length:,} are allowed."
        )
    if not multiline:
        validate_single_line(value, label)
        return
    character = forbidden_character(value, multiline=True)
    if character is not None:
        raise ValidationError(f"{label} contains {_describe(character)}; remove it.")


def single_line(value, max_length: int = 200) -> str:
    """`value` made fit for an email header whatever it holds: control characters and line
    breaks become spaces, and it is cut to `max_length` characters."""
    text = "".join(" " if forbidden_character(c) else c for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= max_length else text[: max_length - 1] + "…"


def validate_database_id(value, message: str = "Choose a valid option."):
    """An id given by a browser: a positive integer the database can hold."""
    text = str(value).strip()
    if not (
        text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= MAX_DATABASE_ID
    ):
        raise ValidationError(message, code="invalid_choice")
