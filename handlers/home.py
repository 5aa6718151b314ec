"""``GET /home``: greeting, status form, the user's statuses page by page, how many times
the user opened the page, and which processes have served this session.

``?before=<status_id>`` shows the statuses older than that one ("Older" links). A
``HEAD /home`` answers the same headers but counts no view.
"""

from __future__ import annotations

import re
from typing import Any

from handlers.base import BaseHandler
from handlers.errors import AppError
from storage.statuses import list_statuses

HOME_STATUSES = 50  # per page
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() accepts "²"


class HomePage(BaseHandler):
    """The home page with its statuses (rendered by ``/home`` and by a failed post)."""

    async def render_home(
        self,
        user: dict[str, Any],
        *,
        status: int = 200,
        before: int | None = None,
        status_error: str | None = None,
        status_text: str = "",
    ) -> None:
        rows = await list_statuses(
            self.res.db, user["user_id"], limit=HOME_STATUSES + 1, before=before
        )
        statuses = rows[:HOME_STATUSES]
        older = statuses[-1].status_id if len(rows) > HOME_STATUSES else None
        served = sorted(self.served_by_counts().items(), key=lambda item: (-item[1], item[0]))
        await self.reply(
            None,
            status=status,
            template="home.html",
            user=user,
            statuses=statuses,
            before=before,
            older=older,
            views=self.session.get("views", 0),
            served=served,
            status_error=status_error,
            status_text=status_text,
        )


class HomeHandler(HomePage):
    async def get(self) -> None:
        user = self.require_user()
        before = self._before()
        # A visit counts; a HEAD changes nothing, and the page a post redirects to is
        # the same visit, not another.
        if self.request.method != "HEAD" and self.flash_code != "posted":
            self.session.incr("views")
        draft = self.session.get("draft")  # a status whose session ended as it was sent
        if draft is not None:
            self.session.delete("draft")
        await self.save_session()  # the count shown is the one Redis returned
        if self.wants_json:
            await self.reply(
                {
                    "user_name": user["user_name"],
                    "views": self.session.get("views", 0),
                    "served_by": self.res.served_by,
                }
            )
            return
        await self.render_home(user, before=before, status_text=draft or "")

    def _before(self) -> int | None:
        raw = self.get_query_argument("before", None)
        if raw is None or raw == "":
            return None
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= 2**63:
            raise AppError(400, f"before must be a whole number from 1 to {2**63}.")
        return int(raw)
