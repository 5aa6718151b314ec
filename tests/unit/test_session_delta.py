"""The delta a request leaves for the store to write (``sessions.session.Session``)."""

from __future__ import annotations

import json

import pytest

from sessions.ids import Locator
from sessions.session import Session, Snapshot

LOC = Locator("s" * 43, 5)


def loaded(**attributes: object) -> Session:
    fields = {name: json.dumps(value) for name, value in attributes.items()}
    return Session(LOC, {"@c": "1000", "@s": "2000", **fields})


def test_a_loaded_session_is_unmodified_and_hides_the_metadata() -> None:
    session = loaded(views=3, name="Ann")
    assert not session.modified
    assert session.pending() == ({}, set(), {})
    assert {name: session[name] for name in session} == {"views": 3, "name": "Ann"}
    assert "@c" not in session


def test_only_changed_fields_are_written() -> None:
    session = loaded(a=1, b=2, c=3)
    session["a"] = {"x": [1, "é"]}
    del session["b"]
    session.incr("views", 2)
    assert session.modified
    assert session.pending() == ({"a": '{"x":[1,"é"]}'}, {"b"}, {"views": 2})
    assert session["a"] == {"x": [1, "é"]}
    assert "b" not in session
    assert session["views"] == 2
    assert session["c"] == 3


def test_increments_add_up_and_a_later_set_replaces_them() -> None:
    session = loaded(views=10)
    session.incr("views")
    session.incr("views", 4)
    assert session.pending() == ({}, set(), {"views": 5})
    assert session["views"] == 15
    session["views"] = 1
    assert session.pending() == ({"views": "1"}, set(), {})


def test_an_increment_after_a_set_folds_into_the_set() -> None:
    session = loaded()
    session["n"] = 3
    session.incr("n", 2)
    assert session.pending() == ({"n": "5"}, set(), {})


def test_delete_then_set_writes_the_value_and_set_then_delete_deletes() -> None:
    session = loaded(a=1)
    del session["a"]
    session["a"] = 2
    assert session.pending() == ({"a": "2"}, set(), {})
    session["b"] = 1
    del session["b"]
    assert session.pending() == ({"a": "2"}, {"b"}, {})


def test_mark_written_takes_the_counters_redis_returned() -> None:
    session = loaded(views=1)
    session.incr("views")
    session["x"] = True
    session.mark_written({"views": 9})
    assert not session.modified
    assert session["views"] == 9
    assert session["x"] is True


def test_a_stored_value_must_be_json() -> None:
    session = loaded()
    with pytest.raises(TypeError):
        session["when"] = object()
    assert not session.modified


@pytest.mark.parametrize("name", ["", "@c", "@anything"])
def test_metadata_names_are_not_attributes(name: str) -> None:
    session = loaded()
    for change in (
        lambda: session.set(name, 1),
        lambda: session.delete(name),
        lambda: session.incr(name),
    ):
        with pytest.raises(KeyError):
            change()
    assert not session.modified


def test_a_field_this_code_did_not_write_is_ignored_not_fatal() -> None:
    session = Session(LOC, {"good": "1", "bad": "{not json"})
    assert {name: session[name] for name in session} == {"good": 1}


def test_identity_comes_from_the_locator() -> None:
    assert (loaded().sid, loaded().user_id, loaded().is_stored) == ("s" * 43, 5, True)
    fresh = Session()
    assert (fresh.sid, fresh.user_id, fresh.is_stored) == (None, None, False)


def test_a_view_shares_the_snapshot_until_a_change_and_never_changes_it() -> None:
    snapshot = Snapshot({"@c": "1000", "@s": "2000", "views": "3", "tags": '["a"]'})
    first, second = Session.view(LOC, snapshot), Session.view(LOC, snapshot)
    assert (first["views"], first.created_at, snapshot.created_ms) == (3, 1.0, 1000)
    first.incr("views")
    first["name"] = "Ann"
    del first["tags"]
    second["tags"].append("b")  # a container is the request's own copy
    assert second["tags"] == ["a", "b"]
    assert snapshot.data == {"views": 3, "tags": ["a"]}
    assert (first["views"], "tags" in first, "name" in second) == (4, False, False)
    assert Session.view(LOC, snapshot)["tags"] == ["a"]


def test_a_snapshot_with_a_write_applied_is_a_new_one_and_the_old_is_unchanged() -> None:
    fields = {"@c": "1000", "@s": "2000", "a": "1", "b": '"x"', "views": "4", "list": "[1]"}
    before = Snapshot(fields)
    after = before.with_changes({"a": '{"k":[2]}', "new": '"é"'}, {"b", "absent"}, {"views": 5})
    assert after is not before
    assert after.data == {"a": {"k": [2]}, "new": "é", "views": 5, "list": [1]}
    assert (after.meta, after.created_ms, after.seen_ms) == (before.meta, 1000, 2000)
    assert before.data == {"a": 1, "b": "x", "views": 4, "list": [1]}
    written = {**fields, "a": '{"k":[2]}', "new": '"é"', "views": "5"}
    del written["b"]
    assert after.data == Snapshot(written).data  # as decoded from the hash Redis now has
    session = Session.view(LOC, after)
    session["list"].append(2)  # a request's change of a container stays its own
    assert after.data["list"] == [1]
