"""FastAPI dependencies that guard routes: a page needs a login; a state change needs a login and the CSRF token."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bot.web.security import CSRF_FIELD, CSRF_REFUSED, csrf_matches

SEE_OTHER = 303  # after a POST, the browser GETs the page it is sent to


class LoginRequired(Exception):
    """Nobody is logged in: the browser goes to the login page."""


class CsrfRefused(Exception):
    """A state-changing request came without the session's CSRF token."""


def logged_in(request: Request) -> dict[str, Any]:
    """The session of a logged-in person (kept on request.state for rendering), else LoginRequired."""
    session = request.app.state.sessions.load(request)
    if not request.app.state.sessions.is_logged_in(session):
        raise LoginRequired
    request.state.session = session
    return session


async def checked_form(request: Request) -> FormData:
    """The posted form of a logged-in person, its CSRF token checked."""
    session = logged_in(request)
    form = await request.form()
    if not csrf_matches(session, form.get(CSRF_FIELD)):
        raise CsrfRefused
    return form


def to_login(request: Request, error: Exception) -> Response:
    return RedirectResponse("/login", status_code=SEE_OTHER)


def refuse_csrf(request: Request, error: Exception) -> Response:
    return PlainTextResponse(CSRF_REFUSED, status_code=403)


def redirect_with_flash(request: Request, path: str, message: str, *, error: bool = False,
                        about: int | None = None) -> Response:
    """Post/Redirect/Get: the next page shows `message` once (it travels in the signed session cookie); with `error`,
    as an error, beside candidate `about` where that page lists it."""
    from bot.web.rendering import FLASH_MAX_CHARS

    response = RedirectResponse(path, status_code=SEE_OTHER)
    session = {**request.state.session, "flash": message[:FLASH_MAX_CHARS]}
    if error:
        session["flash_error"] = about if about is not None else True
    request.app.state.sessions.save(request, response, session)
    return response
