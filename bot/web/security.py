"""The review page's defences: who may serve it, the login, signed session cookies, CSRF tokens, login rate limits,
and the security headers on every response."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Settings
from bot.errors import ConfigError

logger = logging.getLogger(__name__)

SECRET_FILE = "web-secret"  # in BOT_HOME: the key that signs session cookies, created on first use
SECRET_BYTES = 32  # bytes of randomness in that key and in each CSRF token
SECRET_MODE = 0o600  # only the owner may read the key
SESSION_COOKIE = "nnbot_session"
SESSION_MAX_AGE = 12 * 3600  # seconds a login lasts
SESSION_SALT = "nnbot-review-session"  # separates session signatures from anything else signed with the key
CSRF_FIELD = "csrf_token"  # the hidden field every form carries
LOGIN_FAILURES_ALLOWED = 5  # failed logins per client address ...
LOGIN_WINDOW = 15 * 60  # ... within this many seconds; more are refused with 429 until the oldest ages out

NO_PASSWORD = ("The review page needs a password: set BOT_REVIEW_PASSWORD (in the environment or BOT_HOME/.env) "
               "before `bot serve`.")
CSRF_REFUSED = "The form's security token is missing or out of date; reload the page and send the form again."
TOO_MANY_LOGINS = (f"Too many failed logins from your address; wait {LOGIN_WINDOW // 60} minutes and try again.")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NO_STORE = "no-store"  # pages hold the queue: no shared or back-button cache keeps them


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_password(settings: Settings) -> SecretStr:
    """The review password; the page never runs without one, on any interface (the loopback one too: other users
    of the machine, and web pages through DNS rebinding, can reach 127.0.0.1)."""
    password = settings.bot_review_password
    if password is None or not password.get_secret_value():
        raise ConfigError(NO_PASSWORD)
    return password


def secret_key(home: Path) -> bytes:
    """BOT_HOME/web-secret, created (mode 0600) with a random key if missing; its mode is tightened if loose."""
    path = home / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(SECRET_MODE)
        key = path.read_text(encoding="ascii").strip()
        if len(key) < SECRET_BYTES:
            raise ConfigError(f"{path} is too short to be the review page's key; delete it and a new one is made "
                              "(everyone logs in again).") from None
        return key.encode("ascii")
    key = secrets.token_hex(SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
    return key.encode("ascii")


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class Sessions:
    """Signed, timed session cookies. A session holds its CSRF token and, once logged in, a mark derived from the
    password, so changing BOT_REVIEW_PASSWORD logs everyone out, and a random login id that this server keeps while
    the login lasts: logging out forgets it, so a copy of the cookie stops working too (as does restarting
    `bot serve`, which forgets them all)."""

    def __init__(self, key: bytes, password: SecretStr) -> None:
        self._signer = URLSafeTimedSerializer(key, salt=SESSION_SALT)
        self._password = _digest(password.get_secret_value())
        self._mark = hmac.new(key, b"login:" + self._password, hashlib.sha256).hexdigest()
        self._live: dict[str, float] = {}  # login id -> time.monotonic() when it ends

    def load(self, request: Request) -> dict[str, Any]:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return {}
        try:
            data = self._signer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        response.set_cookie(SESSION_COOKIE, self._signer.dumps(data), max_age=SESSION_MAX_AGE, path="/",
                            httponly=True, samesite="lax", secure=request.url.scheme == "https")

    def clear(self, request: Request, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")

    @staticmethod
    def anonymous() -> dict[str, Any]:
        return {"csrf": secrets.token_urlsafe(SECRET_BYTES)}

    def logged_in_session(self) -> dict[str, Any]:
        """A fresh session for someone who just logged in: a new CSRF token, so no token from before survives."""
        now = time.monotonic()
        self._live = {sid: end for sid, end in self._live.items() if end > now}  # ended logins are forgotten
        sid = secrets.token_urlsafe(SECRET_BYTES)
        self._live[sid] = now + SESSION_MAX_AGE
        return {"csrf": secrets.token_urlsafe(SECRET_BYTES), "login": self._mark, "sid": sid}

    def is_logged_in(self, session: dict[str, Any]) -> bool:
        mark, sid = session.get("login"), session.get("sid")
        return (isinstance(mark, str) and hmac.compare_digest(mark, self._mark) and isinstance(sid, str)
                and self._live.get(sid, 0.0) > time.monotonic())

    def end(self, session: dict[str, Any]) -> None:
        """Log out: the login id is forgotten, whoever holds a copy of the cookie."""
        self._live.pop(str(session.get("sid")), None)

    def password_matches(self, given: str) -> bool:
        """Constant time: both sides are hashed to the same length first."""
        return hmac.compare_digest(_digest(given), self._password)


def csrf_matches(session: dict[str, Any], given: object) -> bool:
    expected = session.get("csrf")
    return (isinstance(expected, str) and isinstance(given, str) and bool(given)
            and hmac.compare_digest(given.encode(), expected.encode()))


class LoginLimiter:
    """Failed logins per client address, in memory: at most LOGIN_FAILURES_ALLOWED per LOGIN_WINDOW seconds."""

    def __init__(self, allowed: int = LOGIN_FAILURES_ALLOWED, window: float = LOGIN_WINDOW) -> None:
        self.allowed, self.window = allowed, window
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures[client]
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, client: str, now: float | None = None) -> bool:
        return len(self._recent(client, time.monotonic() if now is None else now)) >= self.allowed

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(client, now).append(now)
        logger.warning("review page: failed login from %s", client)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


CROSS_SITE = ("This request came from another site ({origin}), so it was refused and nothing was changed; use "
              "the review page itself.")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class SameOrigin:
    """Pure ASGI middleware: a state-changing request whose browser says it came from another site (its `Origin`, or
    `Sec-Fetch-Site: cross-site`) is refused with 403, whatever its CSRF token. Requests without those headers
    (older browsers, scripts) are left to the CSRF token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            request = Request(scope)
            origin = request.headers.get("origin")
            own = f"{request.url.scheme}://{request.url.netloc}"
            if (origin is not None and origin != own) or request.headers.get("sec-fetch-site") == "cross-site":
                response = Response(CROSS_SITE.format(origin=origin or "cross-site"), status_code=403,
                                    media_type="text/plain")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


SERVER_ERROR = b"Something went wrong on the server; the log of `bot serve` says what. Nothing was changed."


class SecurityHeaders:
    """Pure ASGI middleware: the security headers (and no caching of pages) on every response, errors included: an
    unexpected error becomes a plain 500 with them here, before Starlette's outermost handler (which adds none) sees
    it to log it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() not in {h.lower() for h in SECURITY_HEADERS}]
                headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
                if not static:
                    headers.append((b"cache-control", NO_STORE.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if not started:
                await tracked({"type": "http.response.start", "status": 500,
                               "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await tracked({"type": "http.response.body", "body": SERVER_ERROR})
            raise
