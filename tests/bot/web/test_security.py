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
from tests.bot.web.helpers import PASSWORD, csrf_of, version_of

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


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_bot_serve_refuses_without_a_password_on_an_address_other_machines_reach(bot, host: str) -> None:  # type: ignore[no-untyped-def]
    importlib.import_module("bot.cli.serve")  # adds `bot serve`, as bot.cli._register does

    run = bot("serve", "--host", host)
    assert run.code == 1 and NO_PASSWORD in run.err and run.out == ""


def test_bot_serve_on_loopback_without_a_password_makes_one_up_for_the_run_and_asks_for_it(tmp_path) -> None:
    import socket

    import httpx

    from tests.bot.service.helpers import python, wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"BOT_HOME": str(tmp_path / "home"), "BOT_REVIEW_PASSWORD": "", "PYTHONUNBUFFERED": "1"}
    (tmp_path / "home").mkdir()
    server = python("-m", "bot.cli", "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []

    def password_printed() -> bool:
        assert server.stdout is not None
        lines.append(server.stdout.readline())
        return lines[-1].startswith("Password for this run: ")

    try:
        wait_for(password_printed, what="`bot serve` to print the run's password")
        password = lines[-1].split()[4]
        assert len(password) == 16 and "set it to keep a password of your own" in lines[-1]
        with httpx.Client(base_url=base) as client:
            assert client.get("/", follow_redirects=False).status_code in (302, 303)  # still behind the login
            token = csrf_of(client.get("/login").text)
            assert client.post("/login", data={"password": "wrong", "csrf_token": token}).status_code == 401
            token = csrf_of(client.get("/login").text)
            assert client.post("/login", data={"password": password, "csrf_token": token},
                               follow_redirects=False).status_code in (302, 303)
            assert client.get("/").status_code == 200
    finally:
        server.terminate()
        server.communicate(timeout=30)


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


def test_logging_out_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(logged_in) -> None:  # type: ignore
    copied = logged_in.client.cookies.get("nnbot_session")
    assert logged_in.post("/logout", {}, follow=False).status_code == 303
    logged_in.client.cookies.set("nnbot_session", copied)  # as someone who copied it before the logout
    assert logged_in.client.get("/", follow_redirects=False).headers["location"] == "/login"


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}])
def test_a_state_change_from_another_site_is_refused_whatever_its_token(logged_in, headers) -> None:  # type: ignore
    from bot.web.security import CROSS_SITE

    ids = add_candidates(logged_in.store, "fb", ["Approved from elsewhere?"], approve=False)
    html = logged_in.client.get("/").text
    response = logged_in.client.post(f"/candidates/{ids[0]}", headers=headers, data={
        "csrf_token": csrf_of(html), "back": "/", "version": version_of(html, ids[0]), "action": "approve"})
    origin = headers.get("Origin", "cross-site")
    assert (response.status_code, response.text) == (403, CROSS_SITE.format(origin=origin))
    assert response.headers["x-frame-options"] == "DENY"
    same = logged_in.client.post(f"/candidates/{ids[0]}", headers={"Origin": "http://testserver"}, data={
        "csrf_token": csrf_of(html), "back": "/", "version": version_of(html, ids[0]), "action": "approve"},
        follow_redirects=False)
    assert same.status_code == 303  # the page's own origin goes through


def test_a_request_for_another_host_name_is_refused(make_web, store, bots_toml) -> None:  # type: ignore
    from fastapi.testclient import TestClient

    from bot.config import load_bots_file, load_settings
    from bot.web.app import create_app

    app = create_app(store, load_settings(bot_review_password=PASSWORD), load_bots_file(bots_toml),
                     allowed_hosts=["127.0.0.1", "localhost"])
    rebinding = TestClient(app, base_url="http://evil.example:8000").get("/login")
    assert (rebinding.status_code, rebinding.text) == (400, "Invalid host header")
    assert rebinding.headers["x-content-type-options"] == "nosniff"
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/login").status_code == 200


def test_bot_serve_answers_to_the_names_of_the_address_it_listens_on() -> None:
    from bot.cli.serve import allowed_hosts

    assert allowed_hosts("127.0.0.1", None) == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("::1", None) == ["::1", "[::1]", "localhost", "127.0.0.1"]
    assert allowed_hosts("192.0.2.7", None) == ["192.0.2.7"]
    assert allowed_hosts("0.0.0.0", None) == ["*"]
    assert allowed_hosts("0.0.0.0", ["review.example.org"]) == ["review.example.org"]


@pytest.mark.parametrize("path", ["/candidates/99999999999999999999", "/candidates/9223372036854775808",
                                  "/candidates/0"])
def test_an_id_past_what_a_database_holds_is_refused_not_a_server_error(logged_in, path) -> None:  # type: ignore
    response = logged_in.post(path, {"action": "approve", "version": "1"}, follow=False)
    assert response.status_code == 422
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value
    bulk = logged_in.post("/candidates/bulk", {"action": "approve", "ids": ["99999999999999999999"]})
    assert bulk.url.path == "/" and "No candidate was chosen; tick the ones to approve." in bulk.text


def test_a_token_count_past_any_sample_is_refused_on_the_try_panel(logged_in) -> None:  # type: ignore
    response = logged_in.post("/try/send", {"bot": "fb", "temperature": "1", "top_p": "0.95", "seed": "9" * 30,
                                            "pick": "0", "text-0": "A title", "logprob-0": "-3", "tokens-0": "1e20"},
                              page="/try")
    assert response.status_code == 400
    assert "The token count must be a whole number from 0 to 100000." in response.text


def test_an_unexpected_error_is_a_plain_500_with_the_security_headers() -> None:
    import asyncio

    from bot.web.security import SERVER_ERROR, SecurityHeaders

    async def broken(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    sent: list[dict] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    with pytest.raises(RuntimeError):  # still raised, for the server's log
        asyncio.run(SecurityHeaders(broken)({"type": "http", "path": "/"}, None, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 500 and sent[1]["body"] == SERVER_ERROR
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    for name, value in HEADERS.items():
        assert headers[name.lower()] == value


def test_bot_serve_counts_failed_logins_by_the_connecting_address_whatever_x_forwarded_for_says(tmp_path) -> None:
    import socket

    import httpx

    from tests.bot.service.helpers import python, wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = python("-m", "bot.cli", "serve", "--port", str(port), env={"BOT_REVIEW_PASSWORD": PASSWORD})
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/login").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, what="`bot serve` to answer")
        with httpx.Client(base_url=base) as client:
            token = csrf_of(client.get("/login").text)
            codes = [client.post("/login", data={"password": "wrong", "csrf_token": token},
                                 headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                     for n in range(LOGIN_FAILURES_ALLOWED + 3)]
            assert codes == [401] * LOGIN_FAILURES_ALLOWED + [429] * 3
            assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding
    finally:
        server.terminate()
        server.communicate(timeout=30)
