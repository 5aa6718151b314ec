"""Sign-in page, registration, sign-in and sign-out."""

from __future__ import annotations

from typing import Any, NoReturn

from tornado.web import Finish

from accounts.signin import Throttled, authenticate
from accounts.validation import (
    InvalidInput,
    clean_email,
    clean_login_password,
    clean_name,
    clean_password,
)
from handlers.base import BaseHandler
from handlers.errors import AppError
from sessions import SessionUnavailable
from storage.errors import EmailTaken
from storage.users import create_user, delete_user

BAD_CREDENTIALS = "Invalid e-mail or password."
SIGN_OUT_PENDING = (
    "You are signed out on this device. The server could not be reached to end the "
    "session there; it will keep trying, and the session cannot be used from here."
)


class SignInPage(BaseHandler):
    """The page with the sign-in and sign-up forms (rendered, never a route by itself)."""

    def render_forms(self, status: int = 200, **state: Any) -> None:
        self.set_status(status)
        self.render(
            "index.html",
            login_error=state.get("login_error"),
            login_email=state.get("login_email", ""),
            register_error=state.get("register_error"),
            register_name=state.get("register_name", ""),
            register_email=state.get("register_email", ""),
        )


class IndexHandler(SignInPage):
    """``GET /``: the sign-in and sign-up forms; signed-in users go to ``/home``."""

    session_optional = True

    def get(self) -> None:
        if self.current_user is not None:
            self.redirect("/home")
            return
        if self.wants_json:
            self.xsrf_token  # noqa: B018  (sets the _xsrf cookie API clients need)
            self.write_json(False, {"signed_in": False})
            return
        self.render_forms()


class FormHandler(SignInPage):
    """A POST (only) whose HTML errors re-render the forms, keeping all but the password."""

    def fail(
        self, status: int, message: str, headers: dict[str, str] | None = None, **state: Any
    ) -> NoReturn:
        """Stop here with ``status``: JSON error envelope, or the forms with the message."""
        if self.wants_json:
            raise AppError(status, message, headers)  # send_error clears earlier headers
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self.render_forms(status, **state)
        raise Finish()


class RegisterHandler(FormHandler):
    """``POST /register``: create the account and sign the new user in (201).

    An e-mail address already in use answers 409: registration does tell which
    addresses have accounts, and the per-address registration throttle bounds how
    fast anyone can ask (see docs/RELIABILITY.md).
    """

    async def post(self) -> None:
        raw_name, raw_email = self.field("user_name"), self.field("user_email")
        state = {"register_name": raw_name or "", "register_email": raw_email or ""}
        try:
            name = clean_name(raw_name)
            email = clean_email(raw_email)
            password = clean_password(self.field("user_password"))
        except InvalidInput as exc:
            self.fail(400, str(exc), register_error=str(exc), **state)
        wait = await self.res.throttle.register_attempt(self.request.remote_ip or "")
        if wait:
            message = f"Too many sign-ups from your address. Try again in {wait} seconds."
            self.fail(429, message, {"Retry-After": str(wait)}, register_error=message, **state)
        password_hash = await self.res.passwords.hash(password)
        try:
            user_id = await create_user(
                self.res.db, name=name, email=email, password_hash=password_hash
            )
        except EmailTaken:
            message = "An account with this e-mail address already exists."
            self.fail(409, message, register_error=message, **state)
        try:
            await self.start_session(user_id, valid_after=0, user_name=name)
        except SessionUnavailable:
            # All or nothing: a 503 must mean "nothing happened, try again", not an
            # account the user cannot sign in to yet and cannot register again.
            await delete_user(self.res.db, user_id)
            raise
        self.rotate_xsrf_token()
        await self.reply({"user_id": user_id, "user_name": name}, status=201, redirect_to="/home")


class LoginHandler(FormHandler):
    """``POST /login``: one answer for unknown e-mail and wrong password (401)."""

    async def post(self) -> None:
        raw_email = self.field("user_email")
        state = {"login_email": raw_email or ""}
        try:
            email = clean_email(raw_email)
            password = clean_login_password(self.field("user_password"))
        except InvalidInput as exc:
            self.fail(400, str(exc), login_error=str(exc), **state)
        res = self.res
        try:
            user = await authenticate(
                res.passwords,
                res.throttle,
                res.db,
                email=email,
                password=password,
                ip=self.request.remote_ip or "",
            )
        except Throttled as exc:
            message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds."
            headers = {"Retry-After": str(exc.retry_after)}
            self.fail(429, message, headers, login_error=message, **state)
        if user is None:
            self.fail(401, BAD_CREDENTIALS, login_error=BAD_CREDENTIALS, **state)
        await self.start_session(
            user.user_id, valid_after=user.sessions_valid_after, user_name=user.user_name
        )
        self.rotate_xsrf_token()
        await self.reply(
            {"user_id": user.user_id, "user_name": user.user_name}, redirect_to="/home"
        )


class LogoutHandler(BaseHandler):
    """``POST /logout``: expire the cookie and delete the session in Redis.

    When Redis does not answer, the cookie is expired all the same, the deletion is
    retried in the background, and the answer (202) says so.
    """

    load_session_first = False

    async def post(self) -> None:
        loc = self.session_locator()
        self.rotate_xsrf_token()
        try:
            await self.end_session()
        except SessionUnavailable:
            if loc is not None:
                self.res.sign_out_retry.schedule(loc)
            self.set_status(202)
            if self.wants_json:
                self.write_json(False, SIGN_OUT_PENDING)
            else:
                self.render("signed_out.html", message=SIGN_OUT_PENDING)
            return
        await self.reply("Signed out.", redirect_to="/")
