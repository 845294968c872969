"""A fake Reddit: the OAuth token endpoint, listings on the OAuth host, and the public `.json` listings.

Shapes follow Reddit's API documentation (reddit.com/dev/api) and what it serves: a `Listing` whose `data` holds
`after`, `before`, `dist`, `modhash`, `geo_filter` and `children` of `{"kind": "t3", "data": {...}}`; pages of at
most 100; `after` is the fullname (`t3_<id>`) of a page's last post, and null after the last page or at about
1,000 posts; `x-ratelimit-used`, `x-ratelimit-remaining` (a float) and `x-ratelimit-reset` (seconds) on every
listing; `POST /api/v1/access_token` with HTTP basic auth answering `{"access_token", "token_type": "bearer",
"expires_in", "scope"}`, a 401 for a bad app, and a 200 with `{"error": "invalid_grant"}` for a bad login; a
subreddit that does not exist redirects to `/subreddits/search`; private, quarantined and banned ones answer
403 or 404 with a `reason`.

Posting, on the OAuth host and only with a token from the password grant (an app-only token gets a 403):
`POST /api/submit` (a urlencoded form: `sr`, `kind=self`, `title`, `text`, `api_type=json`, `flair_id`,
`flair_text`, ...) answers `{"json": {"errors": [], "data": {"url", "drafts_count", "id", "name"}}}`. A
subreddit takes posts once it exists here: given posts with `add()`, or none with `allow_posts()`. Reddit's
refusals come inside a 200, as `{"json": {"errors": [[TYPE, message, field]]}}`: `SUBREDDIT_NOEXIST` for an
unknown subreddit, `SUBREDDIT_NOTALLOWED` for an unavailable one, `NO_TEXT` and `TOO_LONG` for the title,
`SUBMIT_VALIDATION_FLAIR_REQUIRED` where `require_flair()` asked for a flair template, and `RATELIMIT` for the
next posts scripted with `rate_limit_posts()`. Each post made is kept in `created` (oldest first), shows first
in its subreddit's listings and in `GET /user/USERNAME/submitted` (newest first, `limit`, `after`); `GET
/api/v1/me` answers the account. Failures of a post are scripted on the OAuth server with praw's path:
`fake.oauth.fail(SUBMIT_PATH, status=503)`, or with `delay`, `hang_up` (see `FakeServer.fail`).
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import Any, Self

from tests.fakes.server import FakeServer, Reply, Request

LISTING_CAP = 1000  # Reddit serves no more of one listing
PAGE_CAP = 100  # nor more per page
DEFAULT_PAGE = 25  # what it gives without `limit`
CLIENT_ID, CLIENT_SECRET = "fake-client-id", "fake-client-secret"
USERNAME, PASSWORD = "alice", "correct horse"
LISTING_PATH = re.compile(r"^/r/(?P<sub>[^/]+)/(?P<sort>top|hot|new)(?P<json>\.json)?/?$")
BASE_TIME = 1_700_000_000  # created_utc of the first fake post: 2023-11-14 22:13:20 UTC
SUBMIT_PATH = "/api/submit/"  # as praw sends it, with the slash: the path to name in `fake.oauth.fail(...)`
SUBMITTED_PATH = re.compile(r"^/user/(?P<user>[^/]+)/submitted/?$")
FIRST_POST_ID = 36**5  # the first post made here gets the base-36 id "100000", as Reddit's ids look
TITLE_CAP = 300  # characters Reddit takes in a title
RATELIMIT_MESSAGE = "Looks like you've been doing that a lot. Take a break for {wait} before trying again."
FORBIDDEN = Reply(403, {"message": "Forbidden", "error": 403})

UNAVAILABLE = {  # what Reddit answers for a subreddit that exists but cannot be read
    "private": Reply(403, {"reason": "private", "message": "Forbidden", "error": 403}),
    "quarantined": Reply(403, {"reason": "quarantined", "quarantine_message": "This community is quarantined.",
                               "message": "Forbidden", "error": 403}),
    "banned": Reply(404, {"reason": "banned", "message": "Not Found", "error": 404}),
    "gone": Reply(404, {"message": "Not Found", "error": 404}),
}


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
    return text or "0"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50]


def api_errors(*errors: tuple[str, str, str | None]) -> Reply:
    """Reddit's way of refusing a post: an OK status, `[type, message, field]` triples inside."""
    return Reply(200, {"json": {"errors": [list(error) for error in errors]}})


def post(number: int, title: str, *, subreddit: str = "test", selftext: str = "", author: str | None = "alice",
         score: int = 10, stickied: bool = False, over_18: bool = False, removed_by_category: str | None = None,
         is_self: bool | None = None) -> dict[str, Any]:
    """The `data` of a t3 thing, with the fields Reddit sends that the scraper reads, and a few it does not."""
    post_id = f"p{number:05d}"
    permalink = f"/r/{subreddit}/comments/{post_id}/{slug(title)}/"
    self_post = bool(selftext) if is_self is None else is_self
    return {
        "id": post_id, "name": f"t3_{post_id}", "title": title, "selftext": selftext,
        "author": author if author is not None else "[deleted]", "author_fullname": f"t2_{author or 'gone'}",
        "created_utc": float(BASE_TIME + number * 60), "score": score, "ups": score, "upvote_ratio": 0.97,
        "num_comments": 3, "permalink": permalink, "is_self": self_post,
        "url": f"https://www.reddit.com{permalink}" if self_post else f"https://example.com/{post_id}",
        "stickied": stickied, "over_18": over_18, "removed_by_category": removed_by_category, "spoiler": False,
        "subreddit": subreddit, "subreddit_name_prefixed": f"r/{subreddit}", "domain": f"self.{subreddit}",
    }


class FakeReddit:
    """Two servers, as Reddit has two hosts: `www` (tokens, public listings), `oauth` (listings, posting and the
    account's own posts, with a token)."""

    def __init__(self) -> None:
        self.subreddits: dict[str, list[dict[str, Any]]] = {}  # lower-case name -> posts in listing order
        self.unavailable: dict[str, Reply] = {}
        self.tokens: dict[str, str] = {}  # access token -> grant type it was issued for
        self.ratelimit = {"x-ratelimit-used": "1", "x-ratelimit-remaining": "99.0", "x-ratelimit-reset": "300"}
        self.created: list[dict[str, Any]] = []  # posts made through /api/submit, oldest first (t3 `data`)
        self.flair_required: dict[str, set[str]] = {}  # lower-case subreddit -> flair template ids it accepts
        self.rate_limited: list[str] = []  # the waits ("9 minutes") of the next submits refused with RATELIMIT
        self.www = FakeServer(self._www, name="reddit-www")
        self.oauth = FakeServer(self._oauth, name="reddit-oauth")

    def __enter__(self) -> Self:
        self.www.start()
        self.oauth.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.www.stop()
        self.oauth.stop()

    def add(self, subreddit: str, posts: list[dict[str, Any]]) -> None:
        self.subreddits.setdefault(subreddit.lower(), []).extend(posts)

    def make_unavailable(self, subreddit: str, reason: str) -> None:
        self.unavailable[subreddit.lower()] = UNAVAILABLE[reason]

    def allow_posts(self, subreddit: str) -> None:
        """Make r/`subreddit` exist (with no posts yet) so that it takes posts."""
        self.subreddits.setdefault(subreddit.lower(), [])

    def require_flair(self, subreddit: str, *template_ids: str) -> None:
        """Posts to r/`subreddit` must name one of these flair templates (`flair_id`)."""
        self.allow_posts(subreddit)
        self.flair_required[subreddit.lower()] = set(template_ids)

    def rate_limit_posts(self, times: int = 1, *, wait: str = "9 minutes") -> None:
        """Refuse the next `times` posts with Reddit's RATELIMIT error, saying to take a break for `wait`."""
        self.rate_limited.extend([wait] * times)

    def listing_requests(self, server: FakeServer) -> list[dict[str, str]]:
        """The query of each listing request `server` got, in order."""
        return [r.query for r in server.requests if LISTING_PATH.match(r.path)]

    # --- routes

    def _www(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/api/v1/access_token":
            return self._token(request)
        match = LISTING_PATH.match(request.path)
        if request.method == "GET" and match and match["json"]:
            return self._listing(match["sub"], request)
        return Reply(404, {"message": "Not Found", "error": 404})

    def _oauth(self, request: Request) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return Reply(401, {"message": "Unauthorized", "error": 401},
                         {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
        match = LISTING_PATH.match(request.path)
        if request.method == "GET" and match and not match["json"]:
            return self._listing(match["sub"], request)
        if request.method == "POST" and request.path in ("/api/submit", SUBMIT_PATH):
            return self._submit(request) if self.tokens[token] == "password" else FORBIDDEN
        if request.method == "GET" and request.path == "/api/v1/me":
            return self._me() if self.tokens[token] == "password" else FORBIDDEN
        match = SUBMITTED_PATH.match(request.path)
        if request.method == "GET" and match:
            return self._submitted(match["user"], request)
        return Reply(404, {"message": "Not Found", "error": 404})

    def _token(self, request: Request) -> Reply:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        client = base64.b64decode(encoded).decode("utf-8") if scheme == "Basic" else ""
        if client != f"{CLIENT_ID}:{CLIENT_SECRET}":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        grant = request.form.get("grant_type")
        login = (request.form.get("username"), request.form.get("password"))
        if grant == "password" and login != (USERNAME, PASSWORD):
            return Reply(200, {"error": "invalid_grant"})  # Reddit's way: an OK status with an error inside
        if grant not in ("password", "client_credentials"):
            return Reply(200, {"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(16)
        self.tokens[token] = grant
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})

    def _listing(self, subreddit: str, request: Request) -> Reply:
        name = subreddit.lower()
        if name in self.unavailable:
            return self.unavailable[name]
        if name not in self.subreddits:
            return Reply(302, None, {"location": f"https://www.reddit.com/subreddits/search.json?q={subreddit}"})
        return self._page(self.subreddits[name][:LISTING_CAP], request)

    def _page(self, posts: list[dict[str, Any]], request: Request) -> Reply:
        """The page of `posts` that the request's `after` and `limit` select, as a Listing."""
        names = [p["name"] for p in posts]
        after = request.query.get("after")
        start = names.index(after) + 1 if after in names else 0
        size = min(int(request.query.get("limit", DEFAULT_PAGE)), PAGE_CAP)
        page = posts[start:start + size]
        more = start + size < len(posts) and page
        return Reply(200, {"kind": "Listing", "data": {
            "after": page[-1]["name"] if more else None, "dist": len(page), "modhash": "", "geo_filter": "",
            "children": [{"kind": "t3", "data": p} for p in page], "before": None,
        }}, dict(self.ratelimit))

    def _submit(self, request: Request) -> Reply:
        form = request.form
        name, title = form.get("sr", ""), form.get("title", "")
        if name.lower() in self.unavailable:
            return api_errors(("SUBREDDIT_NOTALLOWED", "you aren't allowed to post there.", "sr"))
        if name.lower() not in self.subreddits:
            return api_errors(("SUBREDDIT_NOEXIST", "that community doesn't exist", "sr"))
        if not title.strip():
            return api_errors(("NO_TEXT", "we need something here", "title"))
        if len(title) > TITLE_CAP:
            return api_errors(("TOO_LONG", f"this is too long (max: {TITLE_CAP})", "title"))
        required = self.flair_required.get(name.lower())
        if required is not None and form.get("flair_id") not in required:
            return api_errors(("SUBMIT_VALIDATION_FLAIR_REQUIRED", "Your post must contain post flair.", "flair"))
        if self.rate_limited:
            wait = self.rate_limited.pop(0)
            return api_errors(("RATELIMIT", RATELIMIT_MESSAGE.format(wait=wait), "ratelimit"))
        made = post(0, title, subreddit=name, selftext=form.get("text", ""), author=USERNAME, score=1,
                    is_self=True)
        post_id = base36(FIRST_POST_ID + len(self.created))
        permalink = f"/r/{name}/comments/{post_id}/{slug(title)}/"
        made.update(id=post_id, name=f"t3_{post_id}", permalink=permalink, url=f"https://www.reddit.com{permalink}",
                    created_utc=float(int(time.time())), num_comments=0, upvote_ratio=1.0,
                    link_flair_template_id=form.get("flair_id"), link_flair_text=form.get("flair_text"))
        self.created.append(made)
        self.subreddits[name.lower()].insert(0, made)
        return Reply(200, {"json": {"errors": [], "data": {
            "url": made["url"], "drafts_count": 0, "id": post_id, "name": made["name"]}}}, dict(self.ratelimit))

    def _me(self) -> Reply:
        return Reply(200, {"name": USERNAME, "id": "fake1", "created_utc": float(BASE_TIME), "link_karma": 1,
                           "comment_karma": 0, "is_suspended": False, "has_verified_email": True},
                     dict(self.ratelimit))

    def _submitted(self, user: str, request: Request) -> Reply:
        if user.lower() != USERNAME.lower():
            return Reply(404, {"message": "Not Found", "error": 404})
        return self._page(list(reversed(self.created)), request)  # newest first
