"""Answering: the JSON envelope, rendered pages, and ``reply`` (commit, then answer).

JSON answers are ``{"error": false, "message": ...}``; pages are rendered templates
with the page-protecting headers; after a form POST a browser gets a 303 redirect.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import limits
from handlers.headers import ResponseHeaders
from handlers.negotiation import Negotiation


class Replies(Negotiation, ResponseHeaders):
    """Mixin: ``reply``, ``write_json``, ``render`` with the page headers."""

    save_session: Callable[[], Awaitable[None]]  # from handlers.current_user

    async def reply(
        self,
        message: Any,
        *,
        status: int = 200,
        template: str | None = None,
        redirect_to: str | None = None,
        **namespace: Any,
    ) -> None:
        """Commit the session, then answer: JSON envelope, a page, or 303 redirect."""
        await self.save_session()
        if self.wants_json:
            self.set_status(status)
            self.write_json(False, message)
        elif redirect_to is not None:
            self.redirect(redirect_to, status=303)
        else:
            assert template is not None
            self.set_status(status)
            self.render(template, **namespace)

    def write_json(self, error: bool, message: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(_JSON.encode({"error": error, "message": message}))

    def render(self, template_name: str, **kwargs: Any) -> Any:
        """A page: also the headers that protect what a browser renders."""
        self.protect_page()
        return super().render(template_name, **kwargs)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["served_by"] = self.res.served_by
        namespace["limits"] = limits
        return namespace


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


_JSON = json.JSONEncoder(default=_json_default)  # made once, not per response
