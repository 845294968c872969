"""Server-side rendering: the Jinja2 environment (autoescape always on) and the helpers templates use."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
LINK_SCHEMES = ("http", "https", "file")  # remote URLs shown as links; anything else is shown as text
FLASH_MAX_CHARS = 300  # characters of a message carried to the next page in the session cookie

PAGES = (  # (path, label): the navigation, in order
    ("/", "Pending"), ("/approved", "Approved"), ("/posted", "Posted"), ("/problems", "Problems"),
    ("/status", "Status"), ("/try", "Try the model"),
)


def score(logprob: float, tokens: int) -> float:
    """Mean log-probability per token: the queue's measure of how fluent a text is."""
    return logprob / max(tokens, 1)


def link(url: str | None) -> str | None:
    """`url` if it may be rendered as a link (http, https, file), else None."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in LINK_SCHEMES else None


def when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(score=score, link=link, when=when, pages=PAGES)
    return env


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page for a logged-in person: carries their CSRF token, and shows (then drops) the flash message."""
    app = request.app
    session: dict[str, Any] = request.state.session
    flash = session.pop("flash", None)
    base = {"csrf_token": session["csrf"], "path": request.url.path, "flash": flash, "error": None,
            "page_class": ""}
    html = app.state.templates.get_template(template).render({**base, **context})
    response = HTMLResponse(html, status_code=status_code)
    if flash is not None:
        app.state.sessions.save(request, response, session)
    return response


def render_public(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page for someone not logged in (the login page)."""
    html = request.app.state.templates.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code)
