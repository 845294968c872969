"""Server-side rendering: the Jinja2 environment (autoescape always on) and the helpers templates use."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot import queue
from bot.store.schema import Candidate, utcnow

TEMPLATES = Path(__file__).parent / "templates"
LINK_SCHEMES = ("http", "https")  # remote URLs shown as links (a page cannot open a file: one); others, as text
FLASH_MAX_CHARS = 300  # characters of a message carried to the next page in the session cookie

COMMAND = re.compile(r"`([^`]+)`")  # a command in a message the CLI shares ("run `bot status`")

PAGES = (  # (path, label): the navigation, in order
    ("/", "Pending"), ("/approved", "Approved"), ("/posted", "Posted"), ("/problems", "Problems"),
    ("/status", "Status"), ("/try", "Try the model"),
)


SCORE_BY_BASE = "The base model's mean log-probability per piece: higher reads more like real text."
SCORE_BY_OWN = ("No base model scored this one: the bot's own model's mean log-probability per token; higher reads "
                "more like real text.")
SCORE_ORDER = ("Pending candidates are listed best first: by the base model's score, then those only the bot's own "
               "model scored, by theirs.")


def score(c: Candidate) -> str:
    """The candidate's one score (`bot.queue.score`), rounded as the CLI and its JSON round it."""
    return queue.SCORE_FORMAT.format(queue.score(c))


def score_meaning(scored: Any) -> str:
    """What the score of a candidate (or of a sample on the try panel) measures: the words of its tooltip."""
    return SCORE_BY_BASE if scored.plausibility is not None else SCORE_BY_OWN


def link(url: str | None) -> str | None:
    """`url` if it may be rendered as a link (http, https), else None."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in LINK_SCHEMES else None


def place(url: str) -> str:
    """A URL no page can open, as text: a file: URL as its path (and post id), anything else as it is."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    if parts.scheme.lower() != "file":
        return url
    return unquote(parts.path) + (f"#{parts.fragment}" if parts.fragment else "")


def upcoming(at: datetime | str | None, *, now: datetime | None = None) -> str:
    """A running scheduler's next run of a job as a page may state it: a time that has passed is not upcoming (the
    job is under way, or late). While no scheduler runs there is no next run at all: pages say so instead."""
    if at is None:
        return "not scheduled"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at <= (now or utcnow()):
        return f"due now (since {when(at)})"
    return when(at)


def prose(message: object) -> Markup:
    """A message written for the CLI, as HTML: escaped, its `commands` shown as code rather than in backticks."""
    return Markup(COMMAND.sub(r"<code>\1</code>", str(escape(message))))


def when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["prose"] = prose
    env.globals.update(score=score, score_meaning=score_meaning, link=link, place=place, when=when,
                       upcoming=upcoming, score_order=SCORE_ORDER, pages=PAGES)
    return env


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page for a logged-in person: carries their CSRF token, and shows (then drops) the flash message, as an
    error if it is one (`error_about`: the candidate it concerns, for the page to show it beside)."""
    app = request.app
    session: dict[str, Any] = request.state.session
    flash = session.pop("flash", None)
    failed = session.pop("flash_error", None)
    base = {"csrf_token": session["csrf"], "path": request.url.path, "flash": flash, "error": None,
            "error_about": None, "listed": (), "page_class": ""}
    if failed is not None:
        about = failed if isinstance(failed, int) and not isinstance(failed, bool) else None
        base.update(flash=None, error=flash, error_about=about)
    context = {**base, **context}
    html = app.state.templates.get_template(template).render(context)
    response = HTMLResponse(html, status_code=status_code)
    if flash is not None:
        app.state.sessions.save(request, response, session)
    return response


def render_public(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page for someone not logged in (the login page)."""
    html = request.app.state.templates.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code)
