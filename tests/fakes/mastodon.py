"""A fake Mastodon instance: instance info, the token's account, posting statuses, and an account's statuses.

Shapes follow Mastodon's API documentation (docs.joinmastodon.org: entities/Status, Account, Instance; methods/
statuses, accounts, instance; api/rate-limits) and its source (Api::V1::StatusesController, PostStatusService,
StatusLengthValidator, AccountStatusesFilter, TextFormatter, config/initializers/rack_attack.rb):

- `GET /api/v1/instance` (with `Deprecation: @1668384000`, as Mastodon marks it) and `GET /api/v2/instance` (with
  `api_versions`) answer anyone, a bad token included; `configuration.statuses` holds `max_characters` and
  `characters_reserved_per_url`. Mastodon.py asks for both, with a trailing slash, when it checks the version.
- `Authorization: Bearer TOKEN`. A token Mastodon does not know gets a 401 `{"error": "The access token is invalid"}`
  (a revoked one: "... was revoked") with a `WWW-Authenticate` header, on every endpoint but the instance's; a token
  without the scope gets a 403 `{"error": "This action is outside the authorized scopes"}`; an app's token (client
  credentials, no user) gets a 422 `{"error": "This method requires an authenticated user"}` where a user is needed.
- `GET /api/v1/accounts/verify_credentials`: the token's account with `source` and `role` (a CredentialAccount).
- `POST /api/v1/statuses` (form or JSON: status, spoiler_text, visibility, sensitive, language, in_reply_to_id)
  answers 200 and the Status. An `Idempotency-Key` header is kept per account (by Mastodon for an hour; here until
  `forget_idempotency_keys()`): the same key again answers the first status, whatever the text, and creates
  nothing (PostStatusService looks the key up before anything else). Text and
  spoiler over `max_characters` graphemes, a URL counting 23 and `@user@domain` counting as `@user`, get a 422
  `{"error": "Validation failed: Text character limit of 500 exceeded"}`; a blank text "Text can't be blank".
  Mastodon strips the text; `content` is its HTML: `<p>` paragraphs, `<br />`, `&quot;`-style escaping, links,
  mentions of known accounts and hashtags marked up as Mastodon marks them.
- `GET /api/v1/accounts/:id/statuses`: newest first; `limit` (default 20, at most 40), `max_id`, `since_id`,
  `min_id`; `exclude_reblogs`, `exclude_replies` (which, as Mastodon's, keeps replies to oneself: threads),
  `tagged`, `only_media` and `pinned` (no status here has media or a pin); others see public and unlisted statuses,
  the owner all.
  A `Link` header has `rel="next"` (`max_id` of the page's last) when the page is full, `rel="prev"` (`min_id`)
  when it is not empty, so Mastodon.py's `fetch_next` pages until it gets None. Boosts carry the original in
  `reblog` and an empty `content`; replies carry `in_reply_to_id` and `in_reply_to_account_id`.
- `GET /api/v1/accounts/lookup?acct=name` (404 `{"error": "Record not found"}`), `GET /api/v1/accounts/:id`,
  `GET /api/v1/statuses/:id`.
- Rate limits as Mastodon's: every API answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
  `X-RateLimit-Reset` (ISO 8601, the end of the window) of the closest limit: 300 requests per 5 minutes per token
  (or per address without one), and for new statuses 300 per 3 hours per account. Past a limit: 429 `{"error":
  "Too many requests"}`. The limits are attributes a test may lower; `rate_limited()` scripts one 429.

Not here: media, polls, `scheduled_at` (posted at once, not scheduled), edits, deletes, follows.

Failures of a post are scripted with the server's mechanism: `fake.server.fail(STATUSES_PATH, status=503)`, or
`delay`, `hold`, `hang_up` (the status is made, the answer is late or never comes), `hang_up` with `unhandled`.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from tests.fakes.server import FakeAPI, FakeServer, Reply, Request

Bucket = tuple[int, int, float]  # a rate limit: (limit, remaining, when the window ends as a Unix time)

VERSION = "4.5.0"  # what the instance says it runs: Mastodon.py's "created" version checks pass for every method
API_VERSION = 7  # `api_versions.mastodon` of Mastodon 4.5 (quote posts)
TOKEN = "fake-mastodon-token"  # the account's token, scopes read and write
READ_TOKEN = "fake-mastodon-read-token"  # the same account, scope read only
APP_TOKEN = "fake-mastodon-app-token"  # an app's own token (client credentials): no user behind it
ACCOUNT = "nnbot"  # the tokens' account
ACCOUNT_ID = "109000000000000001"
APP_NAME = "nnbot"  # the application the token belongs to, in `application` of the statuses it posts
MAX_CHARACTERS = 500
URL_CHARACTERS = 23  # what a URL counts, whatever its length
DEFAULT_LIMIT, MAX_LIMIT = 20, 40  # statuses per page: without `limit`, and at most
API_LIMIT, API_PERIOD = 300, 300  # requests per 5 minutes, per token (or per address without one)
STATUSES_LIMIT, STATUSES_PERIOD = 300, 3 * 3600  # new statuses per 3 hours, per account
IDEMPOTENCY_TTL = 3600  # seconds Mastodon keeps an Idempotency-Key
BASE_TIME = 1_700_000_000  # created_at of the first status `add_status` adds (2023-11-14); one an hour after it
DEPRECATED_V1 = "@1668384000"  # Mastodon's Deprecation header on /api/v1/instance (deprecated 2022-11-14)

STATUSES_PATH = "/api/v1/statuses"  # as Mastodon.py posts to it: the path to name in `fake.server.fail(...)`
VERIFY_PATH = "/api/v1/accounts/verify_credentials"
LOOKUP_PATH = "/api/v1/accounts/lookup"
INSTANCE_V1_PATH, INSTANCE_V2_PATH = "/api/v1/instance/", "/api/v2/instance/"  # as Mastodon.py asks, with a slash
ACCOUNT_STATUSES_PATH = re.compile(r"^/api/v1/accounts/(?P<id>[^/]+)/statuses$")
ACCOUNT_PATH = re.compile(r"^/api/v1/accounts/(?P<id>\d+)$")
STATUS_PATH = re.compile(r"^/api/v1/statuses/(?P<id>\d+)$")

INVALID_TOKEN = "The access token is invalid"
REVOKED_TOKEN = "The access token was revoked"
OUTSIDE_SCOPES = {"error": "This action is outside the authorized scopes"}
USER_REQUIRED = {"error": "This method requires an authenticated user"}
NOT_FOUND = {"error": "Record not found"}
ROUTE_NOT_FOUND = {"error": "Not Found"}
TOO_MANY_REQUESTS = {"error": "Too many requests"}
SERVICE_UNAVAILABLE = {"error": "Service Unavailable"}  # what a 503 from Mastodon's proxy might carry
TOO_LONG = "Validation failed: Text character limit of {limit} exceeded"
BLANK = "Validation failed: Text can't be blank"
REPLY_NOT_FOUND = "The post you are trying to reply to does not appear to exist."
FALSE_VALUES = {"0", "f", "false", "off", ""}  # what Rails casts to false; anything else is true
PAGING_KEPT = ("exclude_reblogs", "exclude_replies", "limit", "only_media", "pinned", "tagged")  # in Link URLs

URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,:;!?)\]'’]")
MENTION = re.compile(r"(?<![\w/@])@(?P<user>\w+)(?:@(?P<domain>[\w.-]+\w))?")
HASHTAG = re.compile(r"(?<![\w/#&])#(?P<tag>\w*[^\W\d]\w*)")
ENTITY = re.compile(f"(?P<url>{URL.pattern})|(?P<mention>{MENTION.pattern})|(?P<hashtag>{HASHTAG.pattern})")


def rate_limited(*, reset_in: float | None, limit: int = API_LIMIT) -> dict[str, Any]:
    """The keyword arguments of `server.fail` for Mastodon's 429, resetting `reset_in` seconds from now (None:
    unsaid). `fake.server.fail(STATUSES_PATH, **rate_limited(reset_in=2))` rate-limits the next post."""
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0"}
    if reset_in is not None:
        headers["X-RateLimit-Reset"] = _reset_time(time.time() + reset_in)
    return {"status": 429, "body": TOO_MANY_REQUESTS, "headers": headers}


def countable_length(text: str, spoiler_text: str = "") -> int:
    """How long Mastodon counts a status: graphemes of spoiler and text, a URL as 23, `@user@domain` as `@user`."""
    def countable(match: re.Match[str]) -> str:
        return "x" * URL_CHARACTERS if match["url"] else "@" + match["user"] if match["mention"] else match[0]
    return _graphemes(spoiler_text + ENTITY.sub(countable, text.strip()))


class FakeMastodon(FakeAPI):
    """A Mastodon instance on 127.0.0.1 whose domain is its host:port, with ACCOUNT (the tokens') on it."""

    def __init__(self, *, version: str = VERSION, max_characters: int = MAX_CHARACTERS) -> None:
        self.version = version
        self.max_characters = max_characters
        self.accounts: dict[str, dict[str, Any]] = {}  # id -> settable fields (see `add_account`)
        self.statuses: dict[str, dict[str, Any]] = {}  # id -> the stored status (see `_store`)
        self.posted: list[dict[str, Any]] = []  # statuses made through POST /api/v1/statuses, oldest first
        self.tokens: dict[str, tuple[str | None, set[str]]] = {  # token -> (account id, None for an app; scopes)
            TOKEN: (ACCOUNT_ID, {"read", "write"}), READ_TOKEN: (ACCOUNT_ID, {"read"}),
            APP_TOKEN: (None, {"read", "write"})}
        self.revoked: set[str] = set()
        self.api_limit, self.api_period = API_LIMIT, API_PERIOD
        self.statuses_limit, self.statuses_period = STATUSES_LIMIT, STATUSES_PERIOD
        self._idempotency: dict[tuple[str, str], str] = {}  # (account id, Idempotency-Key) -> status id
        self._counts: dict[tuple[str, str, int], int] = {}  # (bucket, who, window) -> requests in that window
        self._added = 0  # statuses `add_status`/`add_boost` made: their times
        self._sequence = 0  # the low bits of status ids, so that two made in one millisecond differ
        self._lock = threading.RLock()  # the server answers each request in its own thread
        self.add_account(ACCOUNT, display_name="nnbot", bot=True, account_id=ACCOUNT_ID)
        self.server = FakeServer(self._route, name="mastodon")

    @property
    def domain(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def account(self) -> dict[str, Any]:
        """ACCOUNT's settable fields: `fake.account["bot"] = False` unflags it."""
        return self.accounts[ACCOUNT_ID]

    # --- setting the scene

    def add_account(self, username: str, *, domain: str | None = None, display_name: str = "", bot: bool = False,
                    locked: bool = False, note: str = "", account_id: str | None = None) -> str:
        """An account, local unless `domain` names another server; its id."""
        account_id = account_id or str(int(ACCOUNT_ID) + len(self.accounts))
        self.accounts[account_id] = {"id": account_id, "username": username, "domain": domain and domain.lower(),
                                     "display_name": display_name, "bot": bot, "locked": locked, "note": note,
                                     "created_at": BASE_TIME - 86400 * 30, "followers_count": 0,
                                     "following_count": 0}
        return account_id

    def add_status(self, username: str, text: str, *, in_reply_to: str | None = None, visibility: str = "public",
                   spoiler_text: str = "", language: str | None = "en", sensitive: bool = False,
                   favourites: int = 0) -> str:
        """A status by `username` (added first if unknown), an hour after the one added before it; its id."""
        account_id = self._lookup(username) or self.add_account(username)
        self._added += 1
        return self._store(account_id, text, created_at=BASE_TIME + 3600 * self._added, in_reply_to=in_reply_to,
                           visibility=visibility, spoiler_text=spoiler_text, language=language,
                           sensitive=sensitive, favourites=favourites)["id"]

    def add_boost(self, username: str, status_id: str) -> str:
        """`username` boosts the status `status_id`; the boost's id."""
        account_id = self._lookup(username) or self.add_account(username)
        self._added += 1
        return self._store(account_id, "", created_at=BASE_TIME + 3600 * self._added, reblog_of=status_id,
                           language=None)["id"]

    def revoke(self, token: str) -> None:
        """The account's owner revoked `token`: Mastodon answers it with a 401 from now on."""
        self.revoked.add(token)

    def forget_idempotency_keys(self) -> None:
        """An hour (IDEMPOTENCY_TTL) has passed: Mastodon no longer knows the keys it was given."""
        with self._lock:
            self._idempotency.clear()

    # --- reading what happened

    def status(self, status_id: str, *, viewer: str | None = ACCOUNT_ID) -> dict[str, Any]:
        """The Status entity of `status_id` as Mastodon would answer `viewer` (an account id)."""
        with self._lock:
            return self._status_json(self.statuses[status_id], viewer)

    def timeline(self, username: str = ACCOUNT) -> list[dict[str, Any]]:
        """Every status of `username`, newest first, as its owner sees them."""
        with self._lock:
            account_id = self._lookup(username)
            return [self._status_json(s, account_id) for s in self._statuses_of(account_id)]

    def post_requests(self) -> list[Request]:
        """Every POST to /api/v1/statuses that arrived (answered or not), oldest first, headers included."""
        return [r for r in self.server.requests if r.method == "POST" and r.path.rstrip("/") == STATUSES_PATH]

    def idempotency_keys(self) -> list[str | None]:
        """The Idempotency-Key header of each POST to /api/v1/statuses, in order (None: none sent)."""
        return [r.headers.get("idempotency-key") for r in self.post_requests()]

    # --- routes

    def _route(self, request: Request) -> Reply:
        path = request.path.rstrip("/") or "/"
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        with self._lock:  # one request at a time changes or reads the store (answers are sent outside it)
            valid = token is not None and token in self.tokens and token not in self.revoked
            api = self._bucket("api", token if valid else "address", self.api_limit, self.api_period)
            if api[1] < 0:
                return Reply(429, TOO_MANY_REQUESTS, _limit_headers(*api))
            reply = self._dispatch(request, path, token, api)
            reply.headers = {**_limit_headers(*api), **reply.headers}  # a route's own (closer) limit wins
            return reply

    def _dispatch(self, request: Request, path: str, token: str | None, api: Bucket) -> Reply:
        if request.method == "GET" and path == INSTANCE_V1_PATH.rstrip("/"):  # the instance ignores tokens
            return Reply(200, self._instance_v1(), {"Deprecation": DEPRECATED_V1})
        if request.method == "GET" and path == INSTANCE_V2_PATH.rstrip("/"):
            return Reply(200, self._instance_v2())
        if token is not None and (token not in self.tokens or token in self.revoked):
            return _unauthorized(REVOKED_TOKEN if token in self.revoked else INVALID_TOKEN)
        user, scopes = self.tokens[token] if token is not None else (None, set())
        if request.method == "POST" and path == STATUSES_PATH:
            return _refusal(token, user, scopes, "write:statuses") or self._create(request, user, api)
        if request.method != "GET":
            return Reply(404, ROUTE_NOT_FOUND)
        if path == VERIFY_PATH:
            return _refusal(token, user, scopes, "read:accounts", "profile") or Reply(200, self._credentials(user))
        if token is not None and not _has_scope(scopes, "read"):
            return Reply(403, OUTSIDE_SCOPES)
        if path == LOOKUP_PATH:
            account_id = self._lookup(request.query.get("acct", ""))
            return Reply(200, self._account_json(account_id)) if account_id else Reply(404, NOT_FOUND)
        if match := ACCOUNT_STATUSES_PATH.match(path):
            if match["id"] not in self.accounts:
                return Reply(404, NOT_FOUND)
            return self._account_statuses(match["id"], request.query, user)
        if (match := ACCOUNT_PATH.match(path)) and match["id"] in self.accounts:
            return Reply(200, self._account_json(match["id"]))
        if (match := STATUS_PATH.match(path)) and _visible(status := self.statuses.get(match["id"]), user):
            return Reply(200, self._status_json(status, user))  # type: ignore[arg-type]
        return Reply(404, NOT_FOUND if ACCOUNT_PATH.match(path) or STATUS_PATH.match(path) else ROUTE_NOT_FOUND)

    def _create(self, request: Request, user: str, api: Bucket) -> Reply:
        body = request.json() if request.headers.get("content-type", "").startswith("application/json") else None
        params: dict[str, Any] = body if isinstance(body, dict) else request.form
        key = request.headers.get("idempotency-key", "")
        if key and (user, key) in self._idempotency:  # looked up before anything else, as PostStatusService does
            return Reply(200, self._status_json(self.statuses[self._idempotency[(user, key)]], user))
        text, spoiler = str(params.get("status") or "").strip(), str(params.get("spoiler_text") or "").strip()
        if not text:
            return Reply(422, {"error": BLANK})
        if countable_length(text, spoiler) > self.max_characters:
            return Reply(422, {"error": TOO_LONG.format(limit=self.max_characters)})
        reply_to = str(params.get("in_reply_to_id") or "") or None
        if reply_to and not _visible(self.statuses.get(reply_to), user):
            return Reply(404, {"error": REPLY_NOT_FOUND})
        family = self._bucket("statuses", user, self.statuses_limit, self.statuses_period, count=False)
        if family[1] <= 0:
            return Reply(429, TOO_MANY_REQUESTS, _limit_headers(family[0], 0, family[2]))
        status = self._store(user, text, created_at=time.time(), in_reply_to=reply_to,
                             visibility=str(params.get("visibility") or "public"), spoiler_text=spoiler,
                             language=str(params.get("language") or "en"), sensitive=_truthy(params.get("sensitive")),
                             application=APP_NAME)
        self.posted.append(status)
        if key:
            self._idempotency[(user, key)] = status["id"]
        family = self._bucket("statuses", user, self.statuses_limit, self.statuses_period)
        return Reply(200, self._status_json(status, user), _limit_headers(*min(api, family, key=lambda b: b[1])))

    def _account_statuses(self, account_id: str, query: dict[str, str], viewer: str | None) -> Reply:
        """AccountStatusesFilter, then pagination by id, then the Link header, as Mastodon's controller does."""
        statuses = [s for s in self._statuses_of(account_id) if _visible(s, viewer)]  # newest first
        if _truthy(query.get("exclude_reblogs")):
            statuses = [s for s in statuses if not s["reblog_of"]]
        if _truthy(query.get("exclude_replies")):  # Status.without_replies keeps a thread's replies to oneself
            statuses = [s for s in statuses if not s["in_reply_to"] or s["in_reply_to_account"] == account_id]
        if query.get("tagged"):
            statuses = [s for s in statuses
                        if query["tagged"].lower() in {m["tag"].lower() for m in HASHTAG.finditer(s["text"])}]
        if _truthy(query.get("only_media")) or _truthy(query.get("pinned")):
            statuses = []  # no status here has media or is pinned
        limit = min(abs(_to_int(query["limit"])), MAX_LIMIT) if "limit" in query else DEFAULT_LIMIT
        for name, keep in (("max_id", int.__lt__), ("since_id", int.__gt__), ("min_id", int.__gt__)):
            if query.get(name):
                statuses = [s for s in statuses if keep(int(s["id"]), _to_int(query[name]))]
        # min_id: the `limit` statuses just after it (still newest first); else the newest `limit`
        page = statuses[max(len(statuses) - limit, 0):] if query.get("min_id") else statuses[:limit]
        kept = {k: v for k, v in query.items() if k in PAGING_KEPT}
        base = f"{self.url}/api/v1/accounts/{account_id}/statuses"
        links = []
        if page and len(page) == limit:
            links.append(f'<{base}?{urlencode(sorted({**kept, "max_id": page[-1]["id"]}.items()))}>; rel="next"')
        if page:
            links.append(f'<{base}?{urlencode(sorted({**kept, "min_id": page[0]["id"]}.items()))}>; rel="prev"')
        return Reply(200, [self._status_json(s, viewer) for s in page], {"Link": ", ".join(links)} if links else {})

    def _lookup(self, acct: str) -> str | None:
        username, _, domain = acct.removeprefix("@").partition("@")
        where = None if domain.lower() in ("", self.domain) else domain.lower()
        return next((account_id for account_id, account in self.accounts.items()
                     if account["username"].lower() == username.lower() and account["domain"] == where), None)

    # --- storage

    def _store(self, account_id: str, text: str, *, created_at: float, in_reply_to: str | None = None,
               reblog_of: str | None = None, visibility: str = "public", spoiler_text: str = "",
               language: str | None = "en", sensitive: bool = False, favourites: int = 0,
               application: str | None = None) -> dict[str, Any]:
        self._sequence += 1
        status_id = str((int(created_at * 1000) << 16) + self._sequence)  # Mastodon's ids: time-ordered snowflakes
        replied = self.statuses[in_reply_to] if in_reply_to else None
        status = {"id": status_id, "account": account_id, "text": text, "created_at": created_at,
                  "in_reply_to": in_reply_to, "in_reply_to_account": replied["account"] if replied else None,
                  "reblog_of": reblog_of, "visibility": visibility, "spoiler_text": spoiler_text,
                  "language": language, "sensitive": sensitive, "favourites": favourites, "application": application}
        self.statuses[status_id] = status
        return status

    def _statuses_of(self, account_id: str | None) -> list[dict[str, Any]]:
        return sorted((s for s in self.statuses.values() if s["account"] == account_id),
                      key=lambda s: int(s["id"]), reverse=True)

    def _bucket(self, name: str, who: str, limit: int, period: int, *, count: bool = True) -> Bucket:
        """(limit, remaining, reset time) of `who` in a rate-limit window of `period` seconds, after counting one."""
        window = int(time.time() // period)
        if count:
            self._counts[(name, who, window)] = self._counts.get((name, who, window), 0) + 1
        return limit, limit - self._counts.get((name, who, window), 0), float((window + 1) * period)

    # --- entities

    def _account_json(self, account_id: str) -> dict[str, Any]:
        account = self.accounts[account_id]
        base, username = self._origin(account), account["username"]
        missing = f"{self.url}/{{}}/original/missing.png"  # Mastodon's picture for an account without avatar/header
        statuses = self._statuses_of(account_id)
        return {
            "id": account_id, "username": username,
            "acct": f"{username}@{account['domain']}" if account["domain"] else username,
            "display_name": account["display_name"], "locked": account["locked"], "bot": account["bot"],
            "discoverable": True, "indexable": False, "group": False,
            "created_at": _timestamp(account["created_at"] // 86400 * 86400),  # Mastodon gives midnight
            "note": _html(account["note"], {}, self.url)[0], "url": f"{base}/@{username}",
            "uri": f"{base}/users/{username}", "avatar": missing.format("avatars"),
            "avatar_static": missing.format("avatars"), "header": missing.format("headers"),
            "header_static": missing.format("headers"),
            "followers_count": account["followers_count"], "following_count": account["following_count"],
            "statuses_count": len(statuses),
            "last_status_at": (datetime.fromtimestamp(statuses[0]["created_at"], UTC).strftime("%Y-%m-%d")
                               if statuses else None),
            "hide_collections": False, "noindex": False, "emojis": [], "roles": [], "fields": [],
        }

    def _credentials(self, account_id: str) -> dict[str, Any]:
        account = self.accounts[account_id]
        return {**self._account_json(account_id),
                "source": {"privacy": "public", "sensitive": False, "language": "", "note": account["note"],
                           "fields": [], "follow_requests_count": 0, "hide_collections": False,
                           "discoverable": True, "indexable": False, "attribution_domains": []},
                "role": {"id": "-99", "name": "", "permissions": "65536", "color": "", "highlighted": False}}

    def _status_json(self, status: dict[str, Any], viewer: str | None) -> dict[str, Any]:
        account = self.accounts[status["account"]]
        base = self._origin(account)
        reblog = self._status_json(self.statuses[status["reblog_of"]], viewer) if status["reblog_of"] else None
        content, mentions, tags = ("", [], []) if reblog else _html(status["text"], self._mentionable(), self.url)
        uri = f"{base}/users/{account['username']}/statuses/{status['id']}" + ("/activity" if reblog else "")
        others = list(self.statuses.values())
        return {
            "id": status["id"], "created_at": _timestamp(status["created_at"]),
            "in_reply_to_id": status["in_reply_to"], "in_reply_to_account_id": status["in_reply_to_account"],
            "sensitive": status["sensitive"], "spoiler_text": status["spoiler_text"],
            "visibility": status["visibility"], "language": status["language"], "uri": uri,
            "url": uri if reblog else f"{base}/@{account['username']}/{status['id']}",
            "replies_count": sum(1 for s in others if s["in_reply_to"] == status["id"]),
            "reblogs_count": sum(1 for s in others if s["reblog_of"] == status["id"]),
            "favourites_count": status["favourites"], "quotes_count": 0, "edited_at": None,
            "favourited": False, "reblogged": False, "muted": False, "bookmarked": False,
            **({"pinned": False} if viewer == status["account"] and not reblog else {}),
            "content": content, "filtered": [], "reblog": reblog,
            **({"application": {"name": status["application"], "website": None}} if status["application"] else {}),
            "account": self._account_json(status["account"]), "media_attachments": [], "mentions": mentions,
            "tags": tags, "emojis": [], "quote": None, "card": None, "poll": None,
        }

    def _mentionable(self) -> dict[str, dict[str, str]]:
        """`user` (local) or `user@domain`, lower case -> the Status::Mention of that account."""
        found = {}
        for account_id, account in self.accounts.items():
            username, domain = account["username"], account["domain"]
            acct = f"{username}@{domain}" if domain else username
            mention = {"id": account_id, "username": username, "url": f"{self._origin(account)}/@{username}",
                       "acct": acct}
            found[acct.lower()] = mention
            if not domain:
                found[f"{username}@{self.domain}".lower()] = mention
        return found

    def _origin(self, account: dict[str, Any]) -> str:
        """Where the account lives: this instance, or the server its `domain` names."""
        return f"https://{account['domain']}" if account["domain"] else self.url

    def _instance_configuration(self) -> dict[str, Any]:
        return {"statuses": {"max_characters": self.max_characters, "max_media_attachments": 4,
                             "characters_reserved_per_url": URL_CHARACTERS},
                "media_attachments": {"supported_mime_types": ["image/jpeg", "image/png", "image/gif",
                                                               "image/webp", "video/mp4"],
                                      "image_size_limit": 16777216, "image_matrix_limit": 33177600,
                                      "video_size_limit": 103809024, "video_frame_rate_limit": 120,
                                      "video_matrix_limit": 8294400, "description_limit": 1500},
                "polls": {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300,
                          "max_expiration": 2629746}}

    def _instance_v2(self) -> dict[str, Any]:
        return {
            "domain": self.domain, "title": "Fake Mastodon", "version": self.version,
            "source_url": "https://github.com/mastodon/mastodon", "description": "A local fake for nnbot's tests.",
            "usage": {"users": {"active_month": len(self.accounts)}},
            "thumbnail": {"url": f"{self.url}/packs/media/images/preview.png"}, "icon": [], "languages": ["en"],
            "configuration": {
                "urls": {"streaming": f"ws://{self.domain}", "status": None, "about": f"{self.url}/about",
                         "privacy_policy": f"{self.url}/privacy-policy", "terms_of_service": None},
                "vapid": {"public_key": "BFakeVapidPublicKey="},
                "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5, "max_profile_fields": 4,
                             "profile_field_name_limit": 255, "profile_field_value_limit": 255},
                **self._instance_configuration(), "translation": {"enabled": False},
                "timelines_access": {kind: {"local": "public", "remote": "public"}
                                     for kind in ("live_feeds", "hashtag_feeds", "trending_link_feeds")},
                "limited_federation": False},
            "registrations": {"enabled": False, "approval_required": False, "reason_required": False,
                              "message": None, "min_age": None, "url": None},
            "api_versions": {"mastodon": API_VERSION},
            "contact": {"email": "admin@example.com", "account": None}, "rules": [],
        }

    def _instance_v1(self) -> dict[str, Any]:
        return {
            "uri": self.domain, "title": "Fake Mastodon", "short_description": "A local fake for nnbot's tests.",
            "description": "", "email": "admin@example.com", "version": self.version,
            "urls": {"streaming_api": f"ws://{self.domain}"},
            "stats": {"user_count": len(self.accounts), "status_count": len(self.statuses), "domain_count": 1},
            "thumbnail": f"{self.url}/packs/media/images/preview.png", "languages": ["en"],
            "registrations": False, "approval_required": False, "invites_enabled": False,
            "configuration": {"accounts": {"max_featured_tags": 10}, **self._instance_configuration()},
            "contact_account": None, "rules": [],
        }


def _unauthorized(message: str) -> Reply:
    return Reply(401, {"error": message}, {"WWW-Authenticate": f'Bearer realm="Doorkeeper", error="invalid_token", '
                                                               f'error_description="{message}"'})


def _refusal(token: str | None, user: str | None, scopes: set[str], *needed: str) -> Reply | None:
    """Mastodon's answer when the token may not do what needs one of the scopes `needed`; None when it may."""
    if token is None:
        return _unauthorized(INVALID_TOKEN)
    if not any(_has_scope(scopes, scope) for scope in needed):
        return Reply(403, OUTSIDE_SCOPES, {"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="insufficient_scope"'
                                           ', error_description="The request requires higher privileges than '
                                           'provided by the access token."'})
    return Reply(422, USER_REQUIRED) if user is None else None


def _visible(status: dict[str, Any] | None, viewer: str | None) -> bool:
    """Others see public and unlisted statuses (no one follows anyone here); the author sees all."""
    return status is not None and (status["visibility"] in ("public", "unlisted") or status["account"] == viewer)


def _to_int(value: str) -> int:
    """Ruby's String#to_i: the leading digits, 0 without any."""
    match = re.match(r"\s*-?\d+", str(value))
    return int(match[0]) if match else 0


def _limit_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(remaining, 0)),
            "X-RateLimit-Reset": _reset_time(reset)}


def _reset_time(epoch: float) -> str:
    """Ruby's `Time#iso8601(6)` in UTC, as Mastodon writes X-RateLimit-Reset."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timestamp(epoch: float) -> str:
    """Mastodon's datetimes: milliseconds, UTC, with a Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _truthy(value: Any) -> bool:
    return value is not None and value is not False and str(value).strip().lower() not in FALSE_VALUES


def _has_scope(scopes: set[str], needed: str) -> bool:
    """`read` grants every `read:...`, `write` every `write:...`; `profile` only itself."""
    return needed in scopes or needed.split(":")[0] in scopes and needed != "profile"


def _graphemes(text: str) -> int:
    """Grapheme clusters, near enough: combining marks, variation selectors, skin tones and what a zero-width
    joiner joins extend the character before them, CR LF is one, and a pair of regional indicators is one flag."""
    count, previous, flag_half = 0, "", False
    for char in text:
        code = ord(char)
        regional = 0x1F1E6 <= code <= 0x1F1FF
        joins = (unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me")
                 or 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or char == "\u200d"
                 or previous == "\u200d" or (previous, char) == ("\r", "\n") or (regional and flag_half))
        flag_half = regional and not flag_half
        count += not joins
        previous = char
    return count


def _html(text: str, mentionable: dict[str, dict[str, str]],
          origin: str) -> tuple[str, list[dict[str, str]], list[dict[str, str]]]:
    """Mastodon's TextFormatter: the `content` of a plain-text status, and the mentions and tags in it (links to
    accounts in `mentionable` only, hashtags under `origin`, the instance's URL)."""
    mentions: list[dict[str, str]] = []
    tags: list[dict[str, str]] = []
    pieces, end = [], 0
    for match in ENTITY.finditer(text.strip()):
        pieces.append(_escape(text.strip()[end:match.start()]))
        end = match.end()
        if match["url"]:
            pieces.append(_link(match["url"]))
        elif match["hashtag"]:
            tag = match["tag"]
            url = f"{origin}/tags/{tag.lower()}"
            tags.append({"name": tag.lower(), "url": url})
            pieces.append(f'<a href="{_escape(url)}" class="mention hashtag" rel="tag">#<span>{_escape(tag)}'
                          '</span></a>')
        else:
            account = mentionable.get((match["user"] + (f"@{match['domain']}" if match["domain"] else "")).lower())
            if account is None:
                pieces.append(_escape(match[0]))
                continue
            mentions.append(account)
            pieces.append(f'<span class="h-card" translate="no"><a href="{_escape(account["url"])}" '
                          f'class="u-url mention">@<span>{_escape(account["username"])}</span></a></span>')
    pieces.append(_escape(text.strip()[end:]))
    body = "".join(pieces).replace("\r\n", "\n")
    if not body:
        return "", mentions, tags
    paragraphs = re.split(r"\n\n+", body)
    return "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in paragraphs), mentions, tags


def _link(url: str) -> str:
    """TextFormatter.shortened_link: the scheme (and www.) hidden, 30 characters shown, the rest hidden."""
    prefix = re.match(r"https?://(www\.)?", url)[0]  # type: ignore[index]
    rest = url[len(prefix):]
    return (f'<a href="{_escape(url)}" target="_blank" rel="nofollow noopener" translate="no"><span class="invisible">'
            f'{_escape(prefix)}</span><span class="{"ellipsis" if len(rest) > 30 else ""}">{_escape(rest[:30])}'
            f'</span><span class="invisible">{_escape(rest[30:])}</span></a>')


def _escape(text: str) -> str:
    """Ruby's ERB::Util.html_escape, as Mastodon escapes text: &, <, >, " and '."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))
