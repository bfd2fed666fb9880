"""Security headers on every response, and requests from other sites refused before they reach a route.

The Content Security Policy lets a page run only this app's own script files (no inline script,
no other origin), load pictures only from here or from the page itself (blob: previews), and
be framed by nobody, except the Telegram Web App's page, which Telegram's web client frames.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.core.texts import say

TELEGRAM_WEB_CLIENTS = "https://web.telegram.org"
FRAMEABLE_PATHS = ("/telegram/draw",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def content_security_policy(frame_ancestors: str) -> str:
    """The policy: this origin's scripts, styles and connections only."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


PAGE_POLICY = content_security_policy("'none'")
FRAMEABLE_POLICY = content_security_policy(f"'self' {TELEGRAM_WEB_CLIENTS}")


class SecurityHeaders:
    """ASGI middleware: the headers, and a 403 for unsafe requests whose Origin is another site's."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        if scope["method"] not in SAFE_METHODS and not same_origin(request_headers):
            response = JSONResponse({"text": say("web.admin.cross_site")}, status_code=403)
            await response(scope, receive, self._with_headers(scope, send))
            return
        await self.app(scope, receive, self._with_headers(scope, send))

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        frameable = scope["path"] in FRAMEABLE_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = FRAMEABLE_POLICY if frameable else PAGE_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                # Not "no-referrer": with it, browsers send `Origin: null` on form posts to this very site.
                headers["Referrer-Policy"] = "same-origin"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "geolocation=(), microphone=(), payment=()"
                if not frameable:
                    headers["X-Frame-Options"] = "DENY"
                if self.https:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
                # Pages and answers are never cached; the static files are, but revalidated (ETag).
                static = scope["path"].startswith("/static/")
                headers.setdefault("Cache-Control", "no-cache" if static else "no-store")
            await send(message)

        return send_with_headers


def same_origin(headers: Headers) -> bool:
    """Whether a request's Origin (when the browser sent one) names this host."""
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request: browsers send Origin with every unsafe one
    return urlsplit(origin).netloc == headers.get("host", "")
