"""What the web routes share, built once with the app: the services, cookies, sign-in, live runs, pages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from bot.core.services import Services
from bot.core.texts import say
from bot.web.admin_auth import AdminGate
from bot.web.live_progress import LiveProgress
from bot.web.visitors import Visitors

PACKAGE_DIR = Path(__file__).parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"


@dataclass
class WebContext:
    """Everything a route needs; stored on the app as `app.state.web`."""

    services: Services
    visitors: Visitors
    admin: AdminGate
    live: LiveProgress
    templates: Jinja2Templates

    def page(self, request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
        """Render a page; every template can call say() for its words."""
        return self.templates.TemplateResponse(request, name, values, status_code=status_code)


def make_templates() -> Jinja2Templates:
    """The page templates, autoescaped, with say() for every word."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.globals["say"] = say
    return templates


def web_of(request: Request) -> WebContext:
    """The context build_web_application stored on the app."""
    context: WebContext = request.app.state.web
    return context


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn takes it from X-Forwarded-For behind a trusted proxy)."""
    return request.client.host if request.client is not None else "unknown"
