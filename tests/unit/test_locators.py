"""What a session cookie carries and the Redis keys it leads to (``sessions.ids``)."""

from __future__ import annotations

import pytest

from sessions.ids import KeySpace, Locator, new_sid, sid_digest

SID = "A" * 21 + "b" * 21 + "-"  # 43 URL-safe base64 characters


def test_new_ids_are_43_url_safe_characters_and_never_repeat() -> None:
    ids = {new_sid() for _ in range(1000)}
    assert len(ids) == 1000
    for sid in ids:
        assert Locator.parse(":" + sid) == Locator(sid)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f":{SID}", Locator(SID)),
        (f"0:{SID}", Locator(SID, 0)),
        (f"42:{SID}", Locator(SID, 42)),
        (f"42:{SID}".encode(), Locator(SID, 42)),
        (f"{10**17}:{SID}", Locator(SID, 10**17)),
    ],
)
def test_parse_accepts_what_encode_writes(value: str | bytes, expected: Locator) -> None:
    assert Locator.parse(value) == expected
    assert Locator.parse(expected.encode()) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        SID,  # no colon
        ":" + SID[:-1],  # 42 characters
        ":" + SID + "A",  # 44
        ":" + SID[:-1] + "=",  # padding
        ":" + SID[:-1] + "/",  # standard base64, not URL-safe
        "01:" + SID,  # a leading zero
        "-1:" + SID,
        "1e3:" + SID,
        f"{10**18}:{SID}",  # 19 digits
        " 1:" + SID,
        "1:" + SID + "\n",
        "1::" + SID,
        "\u0661:" + SID,  # ARABIC-INDIC DIGIT ONE
        b"\xff:" + SID.encode(),
        "u:1:" + SID,
    ],
)
def test_parse_refuses_anything_else(value: str | bytes | None) -> None:
    assert Locator.parse(value) is None


def test_keys_of_a_signed_in_session_share_the_users_hash_tag() -> None:
    keys = KeySpace("p:")
    signed_in = Locator(SID, 7)
    assert keys.session(signed_in) == f"p:sess:{{u:7}}:{SID}"
    assert keys.user_index(7) == "p:sess:{u:7}:index"
    assert keys.session(Locator(SID)) == f"p:sess:{{a:{SID}}}"  # a hash tag of its own


def test_logs_show_a_digest_never_the_id() -> None:
    digest = sid_digest(SID)
    assert len(digest) == 12
    assert SID not in digest
    assert digest == sid_digest(SID)
    assert digest != sid_digest(SID[:-1] + "A")
