"""Does a client prefer JSON to HTML? Decided from its ``Accept`` header's q-values."""

from __future__ import annotations

import functools

import tornado.web


def _quality(accept: str, mime: str) -> float:
    """The q-value ``accept`` gives ``mime``, the most specific matching range winning."""
    kind = mime.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        rng = pieces[0].lower()
        q = 1.0
        for param in pieces[1:]:
            if param.lower().startswith("q="):
                try:
                    q = min(max(float(param[2:]), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        if rng == mime:
            specificity = 2
        elif rng == f"{kind}/*":
            specificity = 1
        elif rng == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


#: Accept values longer than this are decided afresh each time, never kept.
KEPT_ACCEPT_LENGTH = 256


def prefers_json(accept: str | None) -> bool:
    """True only when ``application/json`` is strictly preferred to ``text/html``.

    A client sends the same ``Accept`` on every request, and clients send few distinct
    values, so the answers for short values are kept (a bounded table).
    """
    if not accept:
        return False
    if len(accept) > KEPT_ACCEPT_LENGTH:
        return _decide(accept)
    return _decide_kept(accept)


def _decide(accept: str) -> bool:
    return _quality(accept, "application/json") > _quality(accept, "text/html")


_decide_kept = functools.lru_cache(maxsize=512)(_decide)


class Negotiation(tornado.web.RequestHandler):
    """Mixin: ``wants_json``, decided once per request."""

    #: Answer JSON whatever the Accept header says (API-only routes).
    json_only = False

    @functools.cached_property
    def wants_json(self) -> bool:
        return self.json_only or prefers_json(self.request.headers.get("Accept"))
