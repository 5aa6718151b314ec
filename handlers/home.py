"""``GET /home``: greeting, status form, the user's statuses, the page-view counter.

A ``HEAD /home`` answers the same headers but counts no view.
"""

from __future__ import annotations

from handlers.base import BaseHandler
from storage.statuses import list_statuses

HOME_STATUSES = 100


class HomeHandler(BaseHandler):
    async def get(self) -> None:
        user = self.require_user()
        if self.request.method != "HEAD":  # a HEAD is no visit: it changes nothing
            self.session.incr("views")
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
        statuses = await list_statuses(self.res.db, user["user_id"], limit=HOME_STATUSES)
        await self.reply(
            None,
            template="home.html",
            user=user,
            statuses=statuses,
            views=self.session.get("views", 0),
            status_error=None,
            status_text="",
        )
