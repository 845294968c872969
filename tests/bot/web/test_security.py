"""The review page's login, sessions, CSRF, rate limit, headers, and the rule that it never runs without a password."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.web.security import CSRF_REFUSED, LOGIN_FAILURES_ALLOWED, NO_PASSWORD, SECRET_FILE, TOO_MANY_LOGINS
from tests.bot.service.helpers import add_candidates
from tests.bot.web.helpers import PASSWORD, csrf_of

PAGES = ("/", "/approved", "/posted", "/problems", "/status", "/try")
HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
}
ROOT = Path(__file__).resolve().parents[3]


def test_every_page_needs_a_login(web) -> None:  # type: ignore[no-untyped-def]
    for path in PAGES:
        response = web.client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/login"), path
    for path in ("/candidates/1", "/candidates/bulk", "/try", "/try/send", "/bots/fb/reconcile", "/logout"):
        response = web.client.post(path, data={"action": "approve"}, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/login"), path


def test_a_wrong_password_is_refused_and_the_right_one_logs_in(web) -> None:  # type: ignore[no-untyped-def]
    wrong = web.login("hunter2")
    assert wrong.status_code == 401 and "That password is not right; try again." in wrong.text
    assert web.client.get("/", follow_redirects=False).status_code == 303
    right = web.login()
    assert (right.status_code, right.headers["location"]) == (303, "/")
    page = web.client.get("/")
    assert page.status_code == 200 and "<h1>Pending</h1>" in page.text
    assert PASSWORD not in page.text and PASSWORD not in right.headers["set-cookie"]


def test_login_needs_its_csrf_token(web) -> None:  # type: ignore[no-untyped-def]
    web.client.get("/login")
    response = web.client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert (response.status_code, response.text) == (403, CSRF_REFUSED)
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_logging_out_ends_the_session(logged_in) -> None:  # type: ignore[no-untyped-def]
    response = logged_in.post("/logout", {}, follow=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert logged_in.client.get("/", follow_redirects=False).status_code == 303


def test_a_forged_or_foreign_session_cookie_is_no_login(web, make_web) -> None:  # type: ignore[no-untyped-def]
    web.client.cookies.set("nnbot_session", "eyJsb2dpbiI6IngifQ.forged.signature")
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_failed_logins_are_limited_per_client(web) -> None:  # type: ignore[no-untyped-def]
    for _ in range(LOGIN_FAILURES_ALLOWED):
        assert web.login("wrong").status_code == 401
    blocked = web.login()  # even the right password waits
    assert (blocked.status_code, blocked.text) == (429, TOO_MANY_LOGINS)
    assert web.client.get("/", follow_redirects=False).status_code == 303


def test_the_limit_forgets_failures_after_its_window() -> None:
    from bot.web.security import LOGIN_WINDOW, LoginLimiter

    limiter = LoginLimiter()
    for second in range(LOGIN_FAILURES_ALLOWED):
        limiter.failed("10.0.0.1", now=float(second))
    assert limiter.blocked("10.0.0.1", now=10.0) and not limiter.blocked("10.0.0.2", now=10.0)
    assert not limiter.blocked("10.0.0.1", now=LOGIN_WINDOW + 1.0)


def test_every_response_carries_the_security_headers(web, logged_in) -> None:  # type: ignore[no-untyped-def]
    responses = [web.client.get(path) for path in PAGES]
    responses += [web.client.get("/login"), web.client.get("/static/app.css"), web.client.get("/static/keys.js"),
                  web.client.get("/no-such-page"), web.client.post("/candidates/1", data={})]
    for response in responses:
        for name, value in HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
    assert responses[0].headers["cache-control"] == "no-store"
    assert "<script>" not in responses[0].text and 'src="/static/keys.js"' in responses[0].text  # no inline script


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(make_web) -> None:  # type: ignore[no-untyped-def]
    plain = make_web().login().headers["set-cookie"]
    assert "HttpOnly" in plain and "SameSite=lax" in plain and "Secure" not in plain
    secure = make_web(base_url="https://testserver").login().headers["set-cookie"]
    assert "HttpOnly" in secure and "SameSite=lax" in secure and "Secure" in secure


def test_the_signing_key_is_kept_in_bot_home_readable_by_its_owner_only(web) -> None:  # type: ignore[no-untyped-def]
    key = web.settings.bot_home / SECRET_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() not in web.client.get("/login").text


def test_the_page_never_runs_without_a_password(store) -> None:  # type: ignore[no-untyped-def]
    from bot.config import BotsFile
    from bot.web.app import create_app

    with pytest.raises(ConfigError, match="BOT_REVIEW_PASSWORD"):
        create_app(store, load_settings(), BotsFile())


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_bot_serve_refuses_without_a_password_on_any_address(bot, host: str) -> None:  # type: ignore[no-untyped-def]
    importlib.import_module("bot.cli.serve")  # adds `bot serve`, as bot.cli._register does

    run = bot("serve", "--host", host)
    assert run.code == 1 and NO_PASSWORD in run.err and run.out == ""


def test_a_wrong_csrf_token_on_a_state_change_is_refused(logged_in) -> None:  # type: ignore[no-untyped-def]
    [candidate] = add_candidates(logged_in.store, "fb", ["a text to approve"], approve=False)
    token = csrf_of(logged_in.client.get("/").text)
    response = logged_in.client.post(f"/candidates/{candidate}", data={"csrf_token": token[:-2] + "xx",
                                                                       "action": "approve"})
    assert (response.status_code, response.text) == (403, CSRF_REFUSED)


def test_bot_help_does_not_import_the_web_stack() -> None:
    code = ("import sys; import bot.cli, bot.cli.serve; "
            "assert not {'fastapi', 'uvicorn', 'starlette', 'jinja2'} & set(sys.modules), sorted(sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
