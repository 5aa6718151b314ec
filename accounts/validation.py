"""Validate and normalise what users type: names, e-mail addresses, passwords, statuses.

Each function returns the cleaned value or raises :class:`InvalidInput` with a
message fit to show the user. Limits: name 1-100 characters, e-mail up to 254,
password 8 characters to 72 bytes (UTF-8), status 1-1000 characters.
"""

from __future__ import annotations

import re

from accounts.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS

MAX_NAME = 100
MAX_EMAIL = 254
MAX_STATUS = 1000

# Deliberately simple: one @, no spaces or control characters, a dot in the domain.
_EMAIL = re.compile(r"[^\s@\x00-\x1f\x7f]{1,64}@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    return _line_of_text("user_name", value, "Name", MAX_NAME, "Name is required.")


def clean_email(value: str | None) -> str:
    """Trimmed and lower-cased, so addresses are unique regardless of case."""
    email = _required("user_email", value, "E-mail").strip().lower()
    if len(email) > MAX_EMAIL:
        raise InvalidInput("user_email", f"E-mail must be at most {MAX_EMAIL} characters.")
    if not _EMAIL.fullmatch(email):
        raise InvalidInput("user_email", "Please enter a valid e-mail address.")
    return email


def clean_password(value: str | None) -> str:
    """Never stripped or otherwise altered: what the user typed is what is hashed."""
    password = _required("user_password", value, "Password")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(
            "user_password", f"Password must be at least {MIN_PASSWORD_CHARS} characters."
        )
    return _within_bcrypt_limit(
        password,
        f"Password must be at most {MAX_PASSWORD_BYTES} bytes "
        "(72 plain letters or digits; accented letters and symbols take more).",
    )


def clean_login_password(value: str | None) -> str:
    """At sign-in only presence and the bcrypt limit matter (old rules may differ)."""
    password = _required("user_password", value, "Password")
    return _within_bcrypt_limit(password, f"Password must be at most {MAX_PASSWORD_BYTES} bytes.")


def _within_bcrypt_limit(password: str, message: str) -> str:
    """bcrypt reads 72 bytes and bcrypt 5 raises beyond: refuse, never truncate."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidInput("user_password", message)
    return password


def clean_status(value: str | None) -> str:
    return _line_of_text("status", value, "Status", MAX_STATUS, "Status must not be empty.")


def _line_of_text(field: str, value: str | None, label: str, limit: int, empty: str) -> str:
    """Trimmed, not empty, at most ``limit`` characters, no control characters."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput(field, empty)
    if len(text) > limit:
        raise InvalidInput(field, f"{label} must be at most {limit} characters.")
    if _CONTROL.search(text):
        raise InvalidInput(field, f"{label} must not contain control characters.")
    return text
