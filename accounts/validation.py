"""Validate and normalise what users type: names, e-mail addresses, passwords, statuses.

Each function returns the cleaned value or raises :class:`InvalidInput` with a
message fit to show the user. Limits: name 1-100 characters, e-mail up to 254,
password 8 characters to 72 bytes (UTF-8), status 1-1000 characters.

Unicode normalisation, and where it applies:

* **E-mail addresses: NFKC**, then lower-cased. The NFC and NFD spellings of one
  address, and its fullwidth spelling, are one account.
  ``email-validator`` (deliverability checks off: no DNS; strict: the local part at
  most 64 octets) then decides the syntax.
* **Names: NFKC.** A name is an identifier people recognise one another by; the
  compatibility forms (fullwidth, ligatures, circled letters) would only serve to
  imitate someone.
* **Statuses: NFC** only. They are prose, where ``½`` or ``™`` are meant as written.
* **Passwords: none.** What the user typed is what is hashed, byte for byte, so a
  password set before any rule change keeps working.

Refused in names and statuses, as nothing a person would mean: control characters
(C0 and C1; statuses may hold TAB and line breaks), the line and paragraph
separators U+2028/U+2029, and bidirectional overrides, embeddings and isolates
(U+202A-U+202E, U+2066-U+2069), which can make text display in an order other than
the one stored. Zero-width characters are allowed inside text (emoji sequences need
U+200D), but text made only of invisible characters counts as empty.

New passwords are refused when they are among the 10,000 most common ones
(``accounts/common-passwords.txt``; see its header for the source), compared
without regard to case.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from limits import MAX_EMAIL, MAX_NAME, MAX_PASSWORD_BYTES, MAX_STATUS, MIN_PASSWORD_CHARS

COMMON_PASSWORDS_PATH = Path(__file__).resolve().parent / "common-passwords.txt"

INVALID_EMAIL = "Please enter a valid e-mail address."
COMMON_CHOICE_MESSAGE = "This password is too common. Please choose a less predictable one."

# Every C0/C1 control, DEL, the line/paragraph separators and the bidi controls.
_NEVER_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same, but statuses may be written on several lines and indented.
_NEVER_IN_STATUSES = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# Characters that draw nothing: zero-width ones, marks for direction, the BOM,
# variation selectors, and the blank-looking fillers of some scripts.
_INVISIBLE = re.compile(
    "[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064"
    "\u206a-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)


# What trimming removes: spaces, tabs and line ends, not every character Python
# counts as white space (NEL, U+2028 and the like are refused instead).
_SPACES = " \t\n\r\f\v\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))


class InvalidInput(ValueError):
    """Input a user must correct; ``str()`` is the message to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _required(field: str, value: str | None, label: str) -> str:
    if value is None or value == "":
        raise InvalidInput(field, f"{label} is required.")
    return value


def clean_name(value: str | None) -> str:
    """NFKC, trimmed, 1-100 characters, nothing invisible-only or display-changing."""
    text = unicodedata.normalize("NFKC", value or "")
    return _line_of_text("user_name", text, "Name", MAX_NAME, "Name is required.", _NEVER_IN_NAMES)


def clean_email(value: str | None) -> str:
    """NFKC, trimmed and lower-cased (unique regardless of case), checked by
    ``email-validator`` without any DNS query."""
    raw = _required("user_email", value, "E-mail")
    email = unicodedata.normalize("NFKC", raw.strip()).lower()
    if len(email) > MAX_EMAIL:
        raise InvalidInput("user_email", f"E-mail must be at most {MAX_EMAIL} characters.")
    try:
        checked = validate_email(email, check_deliverability=False, strict=True)
    except EmailNotValidError:
        raise InvalidInput("user_email", INVALID_EMAIL) from None
    normalized = unicodedata.normalize("NFKC", checked.normalized).lower()
    if len(normalized) > MAX_EMAIL:
        raise InvalidInput("user_email", f"E-mail must be at most {MAX_EMAIL} characters.")
    return normalized


def clean_password(value: str | None, field: str = "user_password") -> str:
    """A new password: 8 characters to 72 bytes, not a common one. Never altered."""
    password = _required(field, value, "Password")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(field, f"Password must be at least {MIN_PASSWORD_CHARS} characters.")
    _within_bcrypt_limit(
        password,
        f"Password must be at most {MAX_PASSWORD_BYTES} bytes "
        "(72 plain letters or digits; accented letters and symbols take more).",
        field,
    )
    if is_common_password(password):
        raise InvalidInput(field, COMMON_CHOICE_MESSAGE)
    return password


def clean_login_password(value: str | None, field: str = "user_password") -> str:
    """At sign-in only presence and the bcrypt limit matter (old rules may differ)."""
    password = _required(field, value, "Password")
    return _within_bcrypt_limit(
        password, f"Password must be at most {MAX_PASSWORD_BYTES} bytes.", field
    )


def _within_bcrypt_limit(password: str, message: str, field: str) -> str:
    """bcrypt reads 72 bytes and bcrypt 5 raises beyond: refuse, never truncate."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidInput(field, message)
    return password


def is_common_password(password: str) -> bool:
    return password.lower() in _common_passwords()


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def clean_status(value: str | None) -> str:
    """Line breaks become LF first: browsers send CR LF, which is one break, not two."""
    text = unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").replace("\r", "\n")
    return _line_of_text(
        "status", text, "Status", MAX_STATUS, "Status must not be empty.", _NEVER_IN_STATUSES
    )


def _line_of_text(
    field: str, text: str, label: str, limit: int, empty: str, refused: re.Pattern[str]
) -> str:
    """Trimmed of spaces, visible, at most ``limit`` characters, none of ``refused``."""
    text = text.strip(_SPACES)
    if not _INVISIBLE.sub("", text):
        raise InvalidInput(field, empty)
    if len(text) > limit:
        raise InvalidInput(field, f"{label} must be at most {limit} characters.")
    bad = refused.search(text)
    if bad is not None:
        if unicodedata.category(bad.group()) == "Cc":
            raise InvalidInput(field, f"{label} must not contain control characters.")
        raise InvalidInput(
            field, f"{label} must not contain line separators or text-direction overrides."
        )
    return text
