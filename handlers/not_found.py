"""Answers for paths no route matches."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.errors import AppError


class NotFoundHandler(BaseHandler):
    load_session_first = False

    def prepare(self) -> None:  # type: ignore[override]  # same for every method
        raise AppError(404, "Not found.")
