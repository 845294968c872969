"""Logging in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from bot.web.access import SEE_OTHER, checked_form
from bot.web.rendering import render_public
from bot.web.security import CSRF_FIELD, CSRF_REFUSED, TOO_MANY_LOGINS, client_address, csrf_matches

router = APIRouter()

WRONG_PASSWORD = "That password is not right; try again."


def _login_page(request: Request, session: dict, *, error: str | None = None, status_code: int = 200) -> Response:
    response = render_public(request, "login.html", {"csrf_token": session["csrf"], "error": error},
                             status_code=status_code)
    request.app.state.sessions.save(request, response, session)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    sessions = request.app.state.sessions
    session = sessions.load(request)
    if sessions.is_logged_in(session):
        return RedirectResponse("/", status_code=SEE_OTHER)
    if "csrf" not in session:
        session = sessions.anonymous()
    return _login_page(request, session)


@router.post("/login")
async def login(request: Request) -> Response:
    sessions, limiter = request.app.state.sessions, request.app.state.limiter
    client = client_address(request)
    if limiter.blocked(client):
        return PlainTextResponse(TOO_MANY_LOGINS, status_code=429)
    session = sessions.load(request)
    form = await request.form()
    if not csrf_matches(session, form.get(CSRF_FIELD)):
        return PlainTextResponse(CSRF_REFUSED, status_code=403)
    password = form.get("password")
    if not isinstance(password, str) or not sessions.password_matches(password):
        limiter.failed(client)
        return _login_page(request, session, error=WRONG_PASSWORD, status_code=401)
    limiter.succeeded(client)
    response = RedirectResponse("/", status_code=SEE_OTHER)
    sessions.save(request, response, sessions.logged_in_session())  # a new session: nothing from before survives
    return response


@router.post("/logout")
def logout(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    response = RedirectResponse("/login", status_code=SEE_OTHER)
    request.app.state.sessions.end(request.state.session)
    request.app.state.sessions.clear(request, response)
    return response
