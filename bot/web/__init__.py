"""The web front end (Starlette on uvicorn, in the service's event loop): it translates HTTP requests
into calls of bot.core and bot.core's answers back into pages and JSON.

- application: builds the Starlette app, its routes and middleware (the one place);
- user_routes, answers: the page at `/`: a photo or a drawing read, and the person's verdict;
- admin_routes, admin_auth, live_progress: the dashboard at `/admin`, its sign-in and CSRF
  tokens, and training runs streamed to it as server-sent events;
- telegram_web_app: the drawing canvas as a Telegram Web App, its initData checked;
- visitors, uploads, security: anonymous visitors' cookies, bounded uploads, security headers;
- keys, server: the signing key and the admin token; uvicorn inside the service's loop.
"""
