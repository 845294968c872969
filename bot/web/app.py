"""The review page's application: `create_app(store, settings, bots)` wires the routes, templates, static files
and defences together; `bot serve` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from bot.config import BotsFile, Settings
from bot.store import Store
from bot.web import access
from bot.web.rendering import environment
from bot.web.routes import auth, panel, queue, status
from bot.web.security import LoginLimiter, SameOrigin, SecurityHeaders, Sessions, require_password, secret_key

STATIC = Path(__file__).parent / "static"


def create_app(store: Store, settings: Settings, bots: BotsFile, *,
               allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The review page on `store`; refuses (ConfigError) without BOT_REVIEW_PASSWORD. With `allowed_hosts`, a
    request for any other Host is refused (400): a DNS-rebinding page names its own host."""
    password = require_password(settings)
    app = FastAPI(title="nnbot review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.settings, app.state.bots = store, settings, bots
    app.state.sessions = Sessions(secret_key(settings.bot_home), password)
    app.state.limiter = LoginLimiter()
    app.state.templates = environment()
    app.state.drafts = queue.Drafts()
    app.add_middleware(SameOrigin)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)  # added last, so it is outermost: its headers go on every answer above
    app.add_exception_handler(access.LoginRequired, access.to_login)
    app.add_exception_handler(access.CsrfRefused, access.refuse_csrf)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, queue, status, panel):
        app.include_router(module.router)
    return app
