"""The one place that builds the web app: its routes, its middleware and what they share."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.core.services import Services
from bot.web import admin_routes, telegram_web_app, telegram_webhook, user_routes
from bot.web.admin_auth import AdminGate
from bot.web.context import STATIC_DIR, WebContext, make_templates
from bot.web.keys import admin_token, signing_key
from bot.web.live_progress import LiveProgress
from bot.web.security import SecurityHeaders
from bot.web.visitors import Visitors


def build_web_application(services: Services, live: LiveProgress | None = None) -> Starlette:
    """Build the app on the shared services; `live` is the dashboard's admin channel (added to the hub)."""
    settings = services.settings
    https = bool(settings.web_public_url)  # then cookies are Secure and HSTS is sent
    live = live or LiveProgress()
    context = WebContext(
        services=services,
        visitors=Visitors(signing_key(settings), secure_cookies=https),
        admin=AdminGate(admin_token(settings), secure_cookies=https),
        live=live,
        templates=make_templates(),
    )
    routes = [
        Route("/", user_routes.home),
        Route("/healthz", health),
        Route("/api/read", user_routes.read_picture, methods=["POST"]),
        Route("/api/verdict", user_routes.judge_answer, methods=["POST"]),
        Route("/admin", admin_routes.dashboard),
        Route("/admin/sign-in", admin_routes.sign_in, methods=["POST"]),
        Route("/admin/sign-out", admin_routes.sign_out, methods=["POST"]),
        Route("/admin/api/events", admin_routes.events),
        Route("/admin/api/runs", admin_routes.runs),
        Route("/admin/api/models", admin_routes.models),
        Route("/admin/api/usage", admin_routes.usage),
        Route("/admin/api/train", admin_routes.start_run, methods=["POST"]),
        Route("/admin/api/cancel", admin_routes.cancel_run, methods=["POST"]),
        Route("/admin/api/serve", admin_routes.serve, methods=["POST"]),
        Route("/telegram/draw", telegram_web_app.draw_page),
        Route("/telegram/drawing", telegram_web_app.send_drawing, methods=["POST"]),
        Route("/telegram/webhook", telegram_webhook.receive_update, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders, https=https),
        # Pictures are already compressed; only the pages, scripts and JSON gain from gzip.
        Middleware(GZipMiddleware, minimum_size=1024),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.web = context
    services.admins.add(live, own=True)  # every instance streams runs to the dashboards it serves
    return app


async def health(request: Request) -> Response:
    """Answer the proxy's and the container's health checks: this instance is up and serving."""
    return JSONResponse({"status": "ok"})
