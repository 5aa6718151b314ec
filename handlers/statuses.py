"""Posting statuses (``POST /addStatus``) and reading them (``GET /fetchStatus``)."""

from __future__ import annotations

import re
from typing import Any, NoReturn

from tornado.web import Finish

from accounts.validation import InvalidInput, clean_status
from handlers.auth import SignInPage
from handlers.base import BaseHandler
from handlers.errors import AppError
from handlers.home import HomePage
from storage.errors import UnknownUser
from storage.statuses import Status, add_status, list_statuses

_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() accepts "²"
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def status_json(status: Status) -> dict[str, Any]:
    return {
        "status_id": status.status_id,
        "user_status": status.text,
        "created_date": status.created_date.isoformat(),
    }


class AddStatusHandler(HomePage, SignInPage):
    """``POST /addStatus``: store a status (201); HTML errors re-render the home page.

    A GET of its address (a reload after an error) goes to the home page.
    """

    def get(self) -> None:
        self.get_of_post_route("/home")

    def signed_out(self) -> NoReturn:
        """A browser without JavaScript whose session ended while it typed: the sign-in
        page, at once, carrying the status through sign-in back into the box."""
        draft = None if self.wants_json else self.field("status")
        if draft and self.get_cookie(self.session_cookie_name) is not None:
            self.render_forms(401, ended=True, next_path="/home", draft=draft)
            raise Finish()
        super().signed_out()

    async def post(self) -> None:
        user = self.require_user()
        raw = self.field("status")
        try:
            text = clean_status(raw)
        except InvalidInput as exc:
            await self.fail(user, str(exc), raw or "")
        try:
            status_id = await add_status(self.res.db, user["user_id"], text)
        except UnknownUser:
            await self.end_session()
            self.signed_out()
        if not self.wants_json:
            self.flash("posted")
        await self.reply(
            {"status_id": status_id, "user_status": text}, status=201, redirect_to="/home"
        )

    async def fail(self, user: dict[str, Any], message: str, text: str) -> NoReturn:
        """Stop with 400: JSON error envelope, or the home page showing the message."""
        if self.wants_json:
            raise AppError(400, message)
        await self.render_home(user, status=400, status_error=message, status_text=text)
        raise Finish()


class FetchStatusHandler(BaseHandler):
    """JSON list, newest first. ``?limit=`` (1-1000, default 100), ``?before=<status_id>``."""

    json_only = True

    async def get(self) -> None:
        user = self.require_user()
        limit = self._int_argument("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        before = self._int_argument("before", None, 1, 2**63)
        statuses = await list_statuses(self.res.db, user["user_id"], limit=limit, before=before)
        self.write_json(False, [status_json(s) for s in statuses])

    def _int_argument(self, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
            raise AppError(400, f"{name} must be a whole number from {low} to {high}.")
        return int(raw)
