"""Answering: the JSON envelope, rendered pages, and ``reply`` (commit, then answer).

JSON answers are ``{"error": false, "message": ...}``, encoded by orjson (one C call,
compact; datetimes as ISO 8601); pages are rendered templates with the page-protecting
headers; after a form POST a browser gets a 303 redirect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

import limits
from handlers.flash import Flash
from handlers.headers import ResponseHeaders
from handlers.negotiation import Negotiation


class Replies(Negotiation, ResponseHeaders, Flash):
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
        self._headers["Content-Type"] = JSON_CONTENT_TYPE  # a constant: no checks needed
        self.finish(orjson.dumps({"error": error, "message": message}, option=_JSON_OPTIONS))

    def render(self, template_name: str, **kwargs: Any) -> Any:
        """A page: also the headers that protect what a browser renders."""
        self.protect_page()
        return super().render(template_name, **kwargs)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["served_by"] = self.res.served_by
        namespace["flash"] = self.take_flash()
        namespace["limits"] = limits
        return namespace


JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
#: Integer keys become strings, as the standard library's encoder does.
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
