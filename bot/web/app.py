"""The review page's application: `create_app(store, settings, bots)` wires the routes, templates, static files
and defences together; `bot serve` runs it under uvicorn."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bot.config import BotsFile, Settings
from bot.store import Store
from bot.web import access
from bot.web.rendering import environment
from bot.web.routes import auth, panel, queue, status
from bot.web.security import LoginLimiter, SecurityHeaders, Sessions, require_password, secret_key

STATIC = Path(__file__).parent / "static"


def create_app(store: Store, settings: Settings, bots: BotsFile) -> FastAPI:
    """The review page on `store`; refuses (ConfigError) without BOT_REVIEW_PASSWORD."""
    password = require_password(settings)
    app = FastAPI(title="nnbot review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.settings, app.state.bots = store, settings, bots
    app.state.sessions = Sessions(secret_key(settings.bot_home), password)
    app.state.limiter = LoginLimiter()
    app.state.templates = environment()
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(access.LoginRequired, access.to_login)
    app.add_exception_handler(access.CsrfRefused, access.refuse_csrf)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, queue, status, panel):
        app.include_router(module.router)
    return app
