"""``GET``/``POST /password``: change the password of the signed-in user.

A change needs the current password (checked like a sign-in, through the same
throttle) and a new one that passes the registration rules; a browser's form also
sends it twice. It then stores the new hash, advances the user's "sessions valid
after" mark, ends every session of the user, and signs this browser in again under
a new session id and a new XSRF token.
"""

from __future__ import annotations

from typing import Any, NoReturn

from tornado.web import Finish

from accounts.signin import Throttled, authenticate
from accounts.validation import InvalidInput, clean_login_password, clean_password
from handlers.base import BaseHandler
from handlers.errors import AppError
from storage.users import find_user_by_id, set_password_hash

WRONG_CURRENT = "Your current password is not correct."
MISMATCH = "The two new passwords differ. Please type the same one twice."
CHANGED = "Password changed. Every other session of your account has been signed out."


class PasswordHandler(BaseHandler):
    def get(self) -> None:
        user = self.require_user()
        if self.wants_json:
            self.write_json(False, {"fields": ["current_password", "new_password"]})
            return
        self.render("password.html", user=user, error=None)

    def fail(self, status: int, message: str, headers: dict[str, str] | None = None) -> NoReturn:
        if self.wants_json:
            raise AppError(status, message, headers)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self.set_status(status)
        self.render("password.html", user=self.current_user, error=message)
        raise Finish()

    async def post(self) -> None:
        user = self.require_user()
        current, new = self.field("current_password"), self.field("new_password")
        confirm = self.field("new_password_confirm")
        try:
            current = clean_login_password(current, "current_password")
            new = clean_password(new, "new_password")
        except InvalidInput as exc:
            self.fail(400, str(exc))
        if (confirm is not None or not self.wants_json) and confirm != new:
            self.fail(400, MISMATCH)
        await self._change(user, current, new)

    async def _change(self, user: dict[str, Any], current: str, new: str) -> None:
        res = self.res
        account = await find_user_by_id(res.db, user["user_id"])
        if account is None:
            self.signed_out()
        try:
            ok = await authenticate(
                res.passwords,
                res.throttle,
                res.db,
                email=account.user_email,
                password=current,
                ip=self.request.remote_ip or "",
            )
        except Throttled as exc:
            wait = exc.retry_after
            self.fail(
                429,
                f"Too many failed attempts. Try again in {wait} seconds.",
                {"Retry-After": str(wait)},
            )
        if ok is None:
            self.fail(401, WRONG_CURRENT)
        new_hash = await res.passwords.hash(new)
        mark = await set_password_hash(res.db, account.user_id, new_hash, end_sessions=True)
        await res.sessions.end_other_user_sessions(account.user_id, None)
        await self.start_session(account.user_id, valid_after=mark, user_name=account.user_name)
        self.rotate_xsrf_token()
        await self.reply(CHANGED, redirect_to="/home")
