"""What users type, cleaned or refused with a message (``accounts.validation``).

The limits are the documented ones: name 1-100 characters, e-mail up to 254, password
8 characters to 72 bytes of UTF-8, status 1-1000 characters.
"""

from __future__ import annotations

import pytest

from accounts.validation import (
    InvalidInput,
    clean_email,
    clean_login_password,
    clean_name,
    clean_password,
    clean_status,
)


def refused(clean: object, value: str | None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        clean(value)  # type: ignore[operator]
    assert str(caught.value), "a refusal always carries a message to show"
    return caught.value


def test_names_are_trimmed_and_kept_within_100_characters() -> None:
    assert clean_name("  Ann Lee \t") == "Ann Lee"
    assert clean_name("é" * 100) == "é" * 100
    for value in (None, "", "   ", "x" * 101, "Ann\x00", "Ann\x1bLee"):
        assert refused(clean_name, value).field == "user_name"


def test_statuses_keep_their_text_within_1000_characters() -> None:
    assert clean_status(" <b>hi</b> ") == "<b>hi</b>"
    assert clean_status("😀" * 1000) == "😀" * 1000
    for value in (None, "", " \n ", "x" * 1001, "a\x07b"):
        assert refused(clean_status, value).field == "status"


def test_email_addresses_are_trimmed_and_lower_cased() -> None:
    assert clean_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    local = "a" * 64
    domain = "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(f"{local}@{domain}") == 254
    assert clean_email(f"{local}@{domain}") == f"{local}@{domain}"


@pytest.mark.parametrize(
    "value",
    [None, "", "ann", "ann@", "@example.com", "ann@example", "a b@example.com",
     "ann@@example.com", "ann@exa mple.com", "ann\n@example.com",
     "a" * 65 + "@example.com", "a@" + "b" * 250 + ".com"],
)  # fmt: skip
def test_email_addresses_that_cannot_be_right_are_refused(value: str | None) -> None:
    assert refused(clean_email, value).field == "user_email"


def test_passwords_are_hashed_exactly_as_typed() -> None:
    assert clean_password("  eight ch  ") == "  eight ch  "
    assert clean_password("x" * 72) == "x" * 72
    assert clean_password("é" * 36) == "é" * 36  # 72 bytes
    assert clean_login_password(" x ") == " x "  # old rules may have been looser


@pytest.mark.parametrize("value", [None, "", "seven c", "x" * 73, "é" * 36 + "x"])
def test_passwords_outside_8_characters_to_72_bytes_are_refused(value: str | None) -> None:
    assert refused(clean_password, value).field == "user_password"


@pytest.mark.parametrize("value", [None, "", "x" * 73, "€" * 25])
def test_sign_in_refuses_only_a_missing_or_overlong_password(value: str | None) -> None:
    assert refused(clean_login_password, value).field == "user_password"
