"""``BaseHandler``: every page and API handler derives from it.

It only puts together one mixin per job, each in the module named after it:

* :mod:`handlers.services` - ``self.res``: the worker's services (Redis, session store,
  MariaDB pool, password hasher, throttle); the one way a handler reaches them;
* :mod:`handlers.current_user` - the session (``self.session``) and the signed-in user
  (``self.current_user``, ``require_user()``, ``save_session()``);
* :mod:`handlers.negotiation` - ``wants_json`` (``Accept``, or ``json_only``);
* :mod:`handlers.inputs` - ``field(name)`` for form and JSON bodies, the body limit;
* :mod:`handlers.replies` - ``reply()``, ``write_json()``, ``render()``;
* :mod:`handlers.errors` - ``AppError`` and the error page or JSON envelope;
* :mod:`handlers.forgery` - the stricter XSRF check and token rotation;
* :mod:`handlers.headers` - the headers every response carries.

Once per request, in ``prepare``, it checks the body limit and resolves the session and
from it the user (no MariaDB query). Routes are declared in :func:`handlers.routes`.
"""

from __future__ import annotations

from handlers.current_user import CurrentUser
from handlers.errors import DEFAULT_MESSAGES, AppError, ErrorPages
from handlers.forgery import Forgery
from handlers.inputs import Inputs


class BaseHandler(CurrentUser, Forgery, Inputs, ErrorPages):
    #: Resolve the session in ``prepare``. When False, the handler does it itself.
    load_session_first = True

    async def prepare(self) -> None:
        self.check_body_size()
        if self.load_session_first:
            await self.resolve_user()

    async def head(self, *args: str, **kwargs: str) -> None:
        """``HEAD``: what ``GET`` answers (status, headers, Content-Length), no body.

        Tornado drops the body of a HEAD answer itself. A route without ``get``
        answers 405, as it does for GET.
        """
        result = self.get(*args, **kwargs)
        if result is not None:
            await result

    def get_of_post_route(self, page: str) -> None:
        """A browser that GETs a form's address (a reload, a bookmark) goes to ``page``;
        an API client is told the method is not allowed."""
        if self.wants_json:
            raise AppError(405, DEFAULT_MESSAGES[405])
        self.redirect(page)
