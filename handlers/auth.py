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
from handlers.flash import MESSAGES, local_path
from sessions import SessionUnavailable
from storage.errors import EmailTaken
from storage.users import create_user, delete_user

BAD_CREDENTIALS = "Invalid e-mail or password."
MAX_DRAFT = 4 * 1000  # characters: the status limit, with room for what was too long
SIGN_OUT_PENDING = (
    "You are signed out on this device. The server could not be reached to end the "
    "session there; it will keep trying, and the session cannot be used from here."
)


#: Field ids on the sign-in page: form, then field name.
FIELD_IDS = {
    ("login", "user_email"): "login-email",
    ("login", "user_password"): "login-password",
    ("register", "user_name"): "register-name",
    ("register", "user_email"): "register-email",
    ("register", "user_password"): "register-password",
}


class SignInPage(BaseHandler):
    """The page with the sign-in and sign-up forms (rendered, never a route by itself)."""

    def render_forms(
        self,
        status: int = 200,
        *,
        form: str = "",
        errors: dict[str, str] | None = None,
        email_taken: bool = False,
        **values: Any,
    ) -> None:
        """The forms; ``errors`` (field name -> message) of ``form`` beside their fields,
        the first one focused."""
        field_errors = {FIELD_IDS[(form, name)]: msg for name, msg in (errors or {}).items()}
        extra = {"flash": (MESSAGES["ended"], True)} if values.get("ended") else {}
        self.set_status(status)
        self.render(
            "index.html",
            errors=field_errors,
            focus=next(iter(field_errors), None),
            email_taken=email_taken,
            next_path=local_path(
                values.get("next_path")
                or self.get_query_argument("next", None)
                or self.field("next")
            ),
            draft=values.get("draft") or self.draft(),
            login_email=values.get("login_email", ""),
            register_name=values.get("register_name", ""),
            register_email=values.get("register_email", ""),
            **extra,
        )

    def after_sign_in(self) -> str:
        """Where a browser goes once signed in: back where it was, or home."""
        return local_path(self.field("next")) or "/home"

    def draft(self) -> str | None:
        """A status that was being posted when the session ended (pages without
        JavaScript carry it through the sign-in forms; the script keeps its own)."""
        text = self.field("draft")
        return text if text and len(text) <= MAX_DRAFT else None

    def draft_attributes(self) -> dict[str, str]:
        """What the new session keeps for the home page to put back in the box."""
        text = self.draft()
        return {"draft": text} if text else {}


class IndexHandler(SignInPage):
    """``GET /``: the sign-in and sign-up forms; signed-in users go to ``/home``."""

    session_optional = True

    def get(self) -> None:
        if self.current_user is not None:
            self.redirect(local_path(self.get_query_argument("next", None)) or "/home")
            return
        if self.wants_json:
            self.xsrf_token  # noqa: B018  (sets the _xsrf cookie API clients need)
            self.write_json(False, {"signed_in": False})
            return
        self.render_forms()


class FormHandler(SignInPage):
    """A POST whose HTML errors re-render the forms, keeping all but the password.

    A GET of its address (a bookmark, a reload after an error) shows the forms.
    """

    def get(self) -> None:
        self.get_of_post_route("/")

    def fail(
        self,
        status: int,
        errors: dict[str, str],
        headers: dict[str, str] | None = None,
        **state: Any,
    ) -> NoReturn:
        """Stop here with ``status``: JSON error envelope (the first message), or the
        forms with every message beside its field."""
        if self.wants_json:
            raise AppError(status, next(iter(errors.values())), headers)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self.render_forms(status, errors=errors, **state)
        raise Finish()


def _clean_all(checks: dict[str, tuple[Any, str | None]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every check (field -> (clean function, raw value)); values and all errors."""
    values, errors = {}, {}
    for name, (clean, raw) in checks.items():
        try:
            values[name] = clean(raw)
        except InvalidInput as exc:
            errors[name] = str(exc)
    return values, errors


class RegisterHandler(FormHandler):
    """``POST /register``: create the account and sign the new user in (201).

    An e-mail address already in use answers 409: registration does tell which
    addresses have accounts, and the per-address registration throttle bounds how
    fast anyone can ask (see docs/RELIABILITY.md).
    """

    async def post(self) -> None:
        raw_name, raw_email = self.field("user_name"), self.field("user_email")
        state = {
            "form": "register",
            "register_name": raw_name or "",
            "register_email": raw_email or "",
        }
        values, errors = _clean_all(
            {
                "user_name": (clean_name, raw_name),
                "user_email": (clean_email, raw_email),
                "user_password": (clean_password, self.field("user_password")),
            }
        )
        if errors:
            self.fail(400, errors, **state)
        name, email = values["user_name"], values["user_email"]
        wait = await self.res.throttle.register_attempt(self.request.remote_ip or "")
        if wait:
            message = f"Too many sign-ups from your address. Try again in {wait} seconds."
            self.fail(429, {"user_email": message}, {"Retry-After": str(wait)}, **state)
        password_hash = await self.res.passwords.hash(values["user_password"])
        try:
            user_id = await create_user(
                self.res.db, name=name, email=email, password_hash=password_hash
            )
        except EmailTaken:
            message = "An account with this e-mail address already exists."
            self.fail(
                409, {"user_email": message}, email_taken=True, login_email=raw_email or "", **state
            )
        try:
            await self.start_session(
                user_id, valid_after=0, user_name=name, **self.draft_attributes()
            )
        except SessionUnavailable:
            # All or nothing: a 503 must mean "nothing happened, try again", not an
            # account the user cannot sign in to yet and cannot register again.
            await delete_user(self.res.db, user_id)
            raise
        self.rotate_xsrf_token()
        if not self.wants_json:
            self.flash("signed_up")
        await self.reply(
            {"user_id": user_id, "user_name": name}, status=201, redirect_to=self.after_sign_in()
        )


class LoginHandler(FormHandler):
    """``POST /login``: one answer for unknown e-mail and wrong password (401)."""

    async def post(self) -> None:
        raw_email = self.field("user_email")
        state = {"form": "login", "login_email": raw_email or ""}
        values, errors = _clean_all(
            {
                "user_email": (clean_email, raw_email),
                "user_password": (clean_login_password, self.field("user_password")),
            }
        )
        if errors:
            self.fail(400, errors, **state)
        res = self.res
        try:
            user = await authenticate(
                res.passwords,
                res.throttle,
                res.db,
                email=values["user_email"],
                password=values["user_password"],
                ip=self.request.remote_ip or "",
            )
        except Throttled as exc:
            message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds."
            headers = {"Retry-After": str(exc.retry_after)}
            self.fail(429, {"user_email": message}, headers, **state)
        if user is None:
            self.fail(401, {"user_password": BAD_CREDENTIALS}, **state)
        await self.start_session(
            user.user_id,
            valid_after=user.sessions_valid_after,
            user_name=user.user_name,
            **self.draft_attributes(),
        )
        self.rotate_xsrf_token()
        if not self.wants_json:
            self.flash("signed_in")
        await self.reply(
            {"user_id": user.user_id, "user_name": user.user_name},
            redirect_to=self.after_sign_in(),
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
        if not self.wants_json:
            self.flash("signed_out")
        await self.reply("Signed out.", redirect_to="/")
