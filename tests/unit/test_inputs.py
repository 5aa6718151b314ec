"""JSON request bodies: an object of strings, or a 400 with a message (``handlers.inputs``)."""

from __future__ import annotations

import pytest

from handlers.errors import AppError
from handlers.inputs import parse_json_object


def test_an_object_of_strings_is_read_as_sent() -> None:
    body = '{"user_email": " Ann@x.y ", "user_password": "a\\u0000b", "é": "ü"}'.encode()
    assert parse_json_object(body) == {
        "user_email": " Ann@x.y ",
        "user_password": "a\x00b",
        "é": "ü",
    }
    assert parse_json_object(b"") == {}


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"text"',
        b"null",
        b'{"a": 1}',
        b'{"a": null}',
        b'{"a": ["x"]}',
        b'{"a": {"b": "c"}}',
        b'{"a": "\\ud800"}',
        b'{"\\udfff": "x"}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_anything_else_is_a_400_with_a_message(body: bytes) -> None:
    with pytest.raises(AppError) as caught:
        parse_json_object(body)
    assert caught.value.status_code == 400
    assert caught.value.message
