"""Input rules of issue 8, item 10, without services: what is normalised, what refused."""

from __future__ import annotations

import unicodedata

import pytest

from accounts.validation import (
    InvalidInput,
    clean_email,
    clean_name,
    clean_password,
    clean_status,
    is_common_password,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (" Ann@Example.COM ", "ann@example.com"),
        ("ａｎｎ@example.com", "ann@example.com"),  # noqa: RUF001 (fullwidth, on purpose)
        (unicodedata.normalize("NFD", "zoé@example.com"), "zoé@example.com"),
        ("ann@bücher.example", "ann@bücher.example"),
    ],
)
def test_email_normal_forms(raw, clean):
    assert clean_email(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "a..b@example.com", "ann@-example-.com", "ann@example..com", "<script>@x.y",
        "ann@localhost", "ann@example", "ann @example.com", "ann@exa mple.com",
        "x" * 65 + "@example.com", "ann@" + "b" * 64 + ".com", "ann@exam\nple.com",
        "ann\u202e@example.com",
    ],
)  # fmt: skip
def test_email_refusals(raw):
    with pytest.raises(InvalidInput):
        clean_email(raw)


@pytest.mark.parametrize(
    "raw",
    ["a\rb", "a\nb", "a\tb", "a\x85b", "a\x9bb", "a\u202eb", "a\u2066b", "a\u2028b", "a\u2029b",
     "\u200b", "\u200d\ufeff", "\u2060 \u200b"],
)  # fmt: skip
def test_name_refusals(raw):
    with pytest.raises(InvalidInput):
        clean_name(raw)


def test_names_are_nfkc_and_trimmed():
    assert clean_name("  Ｊｏｅ  ") == "Joe"  # noqa: RUF001
    assert clean_name("ﬁona") == "fiona"
    assert clean_name("Ann\u200dLee") == "Ann\u200dLee"  # joiners inside text stay


def test_statuses_keep_lines_and_their_symbols():
    assert clean_status("one\ntwo\tthree ½ ™") == "one\ntwo\tthree ½ ™"
    assert clean_status(unicodedata.normalize("NFD", "é")) == "é"
    for raw in ("\u202eevil", "a\u2028b", "a\x85b", "\u200b\u200b"):
        with pytest.raises(InvalidInput):
            clean_status(raw)


def test_common_passwords_are_refused_whatever_their_case():
    assert is_common_password("password") and is_common_password("PassWord")
    assert not is_common_password("correct horse")
    for weak in ("password", "12345678", "Qwerty123", "iloveyou"):
        with pytest.raises(InvalidInput, match="too common"):
            clean_password(weak)
    assert clean_password("correct horse") == "correct horse"
