"""People on the web page, known only by an anonymous id in a signed cookie.

The id is their user and chat id for predictions and verdicts, so a person can judge the answers
they were given and nobody else's. Requests that change something carry a token derived from the
id (`X-CSRF-Token`), which a page on another site can neither read nor forge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME = "visitor"
COOKIE_MAX_AGE = 365 * 24 * 3600
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Visitor:
    """One browser: its anonymous id, and whether the id was made for this response."""

    id: str
    new: bool = False


class Visitors:
    """Reads, makes and checks visitors' signed cookies."""

    def __init__(self, secret_key: str, *, secure_cookies: bool) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="visitor-id")
        self._csrf_key = hashlib.sha256(b"visitor-csrf:" + secret_key.encode()).digest()
        self.secure_cookies = secure_cookies

    def known(self, request: Request) -> Visitor | None:
        """The visitor whose valid cookie came with the request, or None."""
        cookie = request.cookies.get(COOKIE_NAME)
        if not cookie:
            return None
        try:
            visitor_id = self._serializer.loads(cookie)
        except BadSignature:
            return None
        return Visitor(visitor_id) if isinstance(visitor_id, str) else None

    def known_or_new(self, request: Request) -> Visitor:
        """The request's visitor, or a new one (whose cookie the response must set)."""
        return self.known(request) or Visitor("w-" + secrets.token_urlsafe(12), new=True)

    def remember(self, response: Response, visitor: Visitor) -> None:
        """Set the visitor's cookie on a response, if it is new."""
        if visitor.new:
            response.set_cookie(
                COOKIE_NAME,
                self._serializer.dumps(visitor.id),
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="strict",
                secure=self.secure_cookies,
            )

    def csrf_token(self, visitor: Visitor) -> str:
        """The token the visitor's page sends with each request that changes something."""
        return hmac.new(self._csrf_key, visitor.id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, visitor: Visitor) -> bool:
        """Whether the request carries the visitor's token (compared in constant time)."""
        sent = request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(sent.encode(), self.csrf_token(visitor).encode())
