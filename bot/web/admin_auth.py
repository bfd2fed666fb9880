"""The admin's sign-in: the token compared in constant time, a server-side session behind an HttpOnly,
SameSite=Strict cookie, and a single-use CSRF token on every request that changes something.

A token is spent by the request that carries it, and the answer brings the next one
(`X-CSRF-Token`), so a captured or repeated request is refused; signing out ends the session
and every token it had.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "admin_session"
SESSION_PATH = "/admin"
SESSION_LIFETIME_SECONDS = 12 * 3600
# Tokens a session holds unspent: one per open dashboard tab and request in flight is plenty.
TOKENS_PER_SESSION = 16
# Sign-in forms handed out and not yet used; the oldest are forgotten first.
PENDING_SIGN_INS = 1000
SIGN_IN_FORM_SECONDS = 3600
WRONG_TOKENS_PER_MINUTE = 10
CSRF_HEADER = "x-csrf-token"


class CsrfRefused(Exception):
    """A request that changes something came without a valid, unspent token."""

    def __init__(self, missing: bool) -> None:
        super().__init__("missing CSRF token" if missing else "unknown or spent CSRF token")
        self.missing = missing


@dataclass
class AdminSession:
    """A signed-in admin's browser."""

    expires_at: float
    tokens: OrderedDict[str, None] = field(default_factory=OrderedDict)


class AdminGate:
    """Checks the token, keeps the sessions and their CSRF tokens (in memory: a restart signs out)."""

    def __init__(self, token: str, *, secure_cookies: bool) -> None:
        self._token = token.encode()
        self.secure_cookies = secure_cookies
        self._sessions: dict[str, AdminSession] = {}
        self._sign_in_forms: OrderedDict[str, float] = OrderedDict()
        self._attempts = MovingWindowRateLimiter(MemoryStorage())
        self._attempt_limit = RateLimitItemPerMinute(WRONG_TOKENS_PER_MINUTE, namespace="admin-sign-in")

    # --- Signing in and out ---------------------------------------------------------------------

    def sign_in_form(self) -> str:
        """A single-use token for one sign-in form (so a sign-in cannot be forged from another site)."""
        self._forget_expired()
        form_token = secrets.token_urlsafe(24)
        self._sign_in_forms[form_token] = time.monotonic() + SIGN_IN_FORM_SECONDS
        while len(self._sign_in_forms) > PENDING_SIGN_INS:
            self._sign_in_forms.popitem(last=False)
        return form_token

    def spend_sign_in_form(self, form_token: str) -> bool:
        """Use up a sign-in form's token; False if it is unknown, expired or already used."""
        expires_at = self._sign_in_forms.pop(form_token, None)
        return expires_at is not None and expires_at > time.monotonic()

    def may_try(self, client: str) -> bool:
        """Whether a client may try a token now: False after too many wrong ones this minute."""
        return self._attempts.test(self._attempt_limit, client)

    def count_failure(self, client: str) -> None:
        """Count a wrong token from a client."""
        self._attempts.hit(self._attempt_limit, client)

    def token_matches(self, offered: str) -> bool:
        """Whether the offered token is the admin token, in time that does not depend on where they differ."""
        return hmac.compare_digest(offered.encode(), self._token)

    def open_session(self, response: Response) -> str:
        """Start a session (a fresh id, never one the browser brought) and set its cookie."""
        self._forget_expired()
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = AdminSession(expires_at=time.monotonic() + SESSION_LIFETIME_SECONDS)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=SESSION_LIFETIME_SECONDS,
            path=SESSION_PATH,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
        )
        return session_id

    def close_session(self, request: Request, response: Response) -> None:
        """End the request's session and remove its cookie."""
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            self._sessions.pop(session_id, None)
        response.delete_cookie(
            SESSION_COOKIE, path=SESSION_PATH, httponly=True, samesite="strict", secure=self.secure_cookies
        )

    def session_of(self, request: Request) -> AdminSession | None:
        """The live session whose cookie came with the request, or None."""
        session_id = request.cookies.get(SESSION_COOKIE)
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            return None
        if session.expires_at <= time.monotonic():
            self._sessions.pop(session_id or "", None)
            return None
        return session

    # --- CSRF tokens ----------------------------------------------------------------------------

    def new_csrf_token(self, session: AdminSession) -> str:
        """A token for the session's next request that changes something."""
        token = secrets.token_urlsafe(24)
        session.tokens[token] = None
        while len(session.tokens) > TOKENS_PER_SESSION:
            session.tokens.popitem(last=False)
        return token

    def spend_csrf_token(self, request: Request, session: AdminSession) -> None:
        """Use up the request's token; raise CsrfRefused if it has none or one already spent."""
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent:
            raise CsrfRefused(missing=True)
        for token in list(session.tokens):
            if hmac.compare_digest(token.encode(), sent.encode()):
                del session.tokens[token]
                return
        raise CsrfRefused(missing=False)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for session_id in [key for key, session in self._sessions.items() if session.expires_at <= now]:
            del self._sessions[session_id]
        while self._sign_in_forms and next(iter(self._sign_in_forms.values())) <= now:
            self._sign_in_forms.popitem(last=False)
