"""Answers for paths no route matches."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.errors import DEFAULT_MESSAGES, AppError


class NotFoundHandler(BaseHandler):
    """404 for every method; the page shows who is signed in, as every page does."""

    session_optional = True

    async def prepare(self) -> None:
        await super().prepare()
        raise AppError(404, DEFAULT_MESSAGES[404])
