"""A fake X API v2: user lookup by username and a user's posts, as X documents and serves them.

Shapes follow X's API v2 reference (docs.x.com): `GET /2/users/by/username/:username` answers `{"data": {"id",
"name", "username"}}`, or a 200 with only `errors` (`title` "Not Found Error", `type` ".../resource-not-found")
for an unknown name; `GET /2/users/:id/tweets` takes `max_results` (5-100), `pagination_token`, `exclude`
(retweets, replies) and `tweet.fields`, and answers `{"data": [...], "meta": {"result_count", "newest_id",
"oldest_id", "next_token"}}` newest first, `{"meta": {"result_count": 0}}` past the end, each post with only `id`,
`text` and `edit_history_tweet_ids` unless more fields are asked for; a long post's `text` is cut short and its
whole text is in `note_tweet.text`; text escapes &, < and >. Errors are problem details (`title`, `detail`,
`type`, `status`); every answer carries `x-rate-limit-limit`, `x-rate-limit-remaining` and `x-rate-limit-reset`
(a Unix time).

Posting and the account's own reads use OAuth 1.0a user context (`Authorization: OAuth oauth_consumer_key=...,
oauth_token=..., oauth_signature=...`): `GET /2/users/me` answers `{"data": {"id", "name", "username"}}`;
`POST /2/tweets` with a JSON body `{"text": ...}` answers 201 `{"data": {"id", "text", "edit_history_tweet_ids"}}`,
a 403 whose `detail` says "duplicate content" for a text the account already posted, a 400 for a text too long;
both answer app-only (bearer) requests with a 403 "Unsupported Authentication", and a bad key, token or signature
with a 401.
"""

from __future__ import annotations

import hmac
import html
import re
import time
from typing import Any
from urllib.parse import urlencode

from oauthlib.oauth1 import Client
from oauthlib.oauth1.rfc5849 import signature, utils

from tests.fakes.server import FakeAPI, FakeServer, Reply, Request

BEARER_TOKEN = "fake-bearer-token"
# OAuth 1.0a user context (posting, and reading the account's own posts): the app's key and the account's token.
API_KEY, API_SECRET = "fake-api-key", "fake-api-secret"
ACCESS_TOKEN, ACCESS_TOKEN_SECRET = "1600000000000000000-fakeaccesstoken", "fake-access-token-secret"
ACCOUNT = "nnbot_test"  # the account those tokens belong to
ACCOUNT_ID = ACCESS_TOKEN.split("-")[0]  # an access token starts with its account's user id
TWEEPY_HOST = "https://api.twitter.com"  # what tweepy signs: X_API_URL moves a request only after it is signed
FIRST_USER_ID = 2_244_994_945  # the id of the first user `add_user` adds
TIMELINE_CAP = 3200
SHORT_TEXT = 280  # characters of a long post that `text` keeps
USER_PATH = re.compile(r"^/2/users/by/username/(?P<username>[^/]+)$")
TWEETS_PATH = re.compile(r"^/2/users/(?P<id>\d+)/tweets$")
ME_PATH = "/2/users/me"
POST_PATH = "/2/tweets"
BASE_ID = 1_700_000_000_000_000_000  # post ids: snowflakes, as decimal strings
POSTED_BASE_ID = 1_800_000_000_000_000_000  # ids of posts made through the fake: newer than those of `tweet()`
RATE_WINDOW = 900  # seconds: X's 15-minute windows

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
CLIENT_NOT_ENROLLED = {  # X's 403 for an app whose access level cannot use the endpoint
    "client_id": "12345678",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
              "Twitter developer App that is attached to a Project. You can create a project via the developer "
              "portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
TOO_MANY_REQUESTS = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                     "status": 429}
SERVICE_UNAVAILABLE = {"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank",
                       "status": 503}
DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
             "title": "Forbidden", "status": 403}
NO_WRITE_PERMISSION = {  # X's 403 for a post with an access token made while the app could only read
    "title": "Forbidden", "status": 403, "type": "https://api.twitter.com/2/problems/oauth1-permissions",
    "detail": "Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.",
}
UNSUPPORTED_AUTHENTICATION = {  # X's 403 for a bearer token where a user's context is needed
    "title": "Unsupported Authentication", "type": "https://api.twitter.com/2/problems/unsupported-authentication",
    "status": 403, "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
                             "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
}
INVALID_REQUEST = {"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                   "type": "https://api.twitter.com/2/problems/invalid-request"}
TEXT_TOO_LONG = ("Your Tweet text is too long. For more information on how Twitter determines text length see "
                 "https://github.com/twitter/twitter-text.")
APP, USER = "app", "user"  # how a request authenticated: the bearer token, or the account's OAuth 1.0a token


def tweet(number: int, text: str, *, likes: int = 5, reply_to: str | None = None,
          retweet_of: str | None = None) -> dict[str, Any]:
    """A post with every field the fake can give; the fake answers only the ones asked for."""
    post_id = str(BASE_ID + number)
    full = html.escape(text, quote=False)  # X escapes &, < and > in post text
    data: dict[str, Any] = {
        "id": post_id, "text": full[:SHORT_TEXT - 1] + "…" if len(text) > SHORT_TEXT else full,
        "edit_history_tweet_ids": [post_id],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_700_000_000 + number * 3600)),
        "public_metrics": {"retweet_count": 1, "reply_count": 2, "like_count": likes, "quote_count": 0,
                           "bookmark_count": 0, "impression_count": 100},
    }
    if len(text) > SHORT_TEXT:
        data["note_tweet"] = {"text": full, "entities": {}}
    references = [{"type": "replied_to", "id": reply_to}] if reply_to else []
    references += [{"type": "retweeted", "id": retweet_of}] if retweet_of else []
    if references:
        data["referenced_tweets"] = references
    if reply_to:
        data["in_reply_to_user_id"] = "783214"
    return data


class FakeX(FakeAPI):
    """api.twitter.com's v2 user lookup and user timeline (app-only or user auth), and posting as ACCOUNT."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, str]] = {  # lower-case username -> user object
            ACCOUNT.lower(): {"id": ACCOUNT_ID, "name": "nnbot (a bot)", "username": ACCOUNT}}
        self.timelines: dict[str, list[dict[str, Any]]] = {ACCOUNT_ID: []}  # user id -> posts, newest first
        self.protected: set[str] = set()  # user ids whose posts the app may not see
        self.posted: list[dict[str, Any]] = []  # posts made through POST /2/tweets, oldest first
        self._added = 0  # users added by `add_user`, for their ids
        self.server = FakeServer(self._route, name="x")

    def add_user(self, username: str, posts: list[dict[str, Any]], *, protected: bool = False) -> str:
        """A user and their posts (newest first); ACCOUNT, the tokens' own, is there already: this sets its posts."""
        if username.lower() == ACCOUNT.lower():
            self.timelines[ACCOUNT_ID] = posts
            return ACCOUNT_ID
        user_id = str(FIRST_USER_ID + self._added)
        self._added += 1
        self.users[username.lower()] = {"id": user_id, "name": username.title(), "username": username}
        self.timelines[user_id] = posts
        if protected:
            self.protected.add(user_id)
        return user_id

    @property
    def account_posts(self) -> list[dict[str, Any]]:
        """ACCOUNT's timeline, newest first, as X stores it (text escaped)."""
        return self.timelines[ACCOUNT_ID]

    def timeline_requests(self) -> list[dict[str, str]]:
        return [r.query for r in self.server.requests if TWEETS_PATH.match(r.path)]

    def post_requests(self) -> int:
        """How many POSTs to /2/tweets arrived, answered or not."""
        return self.server.count("POST", POST_PATH)

    # --- routes

    def _route(self, request: Request) -> Reply:
        auth = _authentication(request)
        if auth is None:
            return self._reply(401, UNAUTHORIZED)
        if request.path in (ME_PATH, POST_PATH) and auth != USER:
            return self._reply(403, UNSUPPORTED_AUTHENTICATION)
        if request.path == ME_PATH:
            return self._reply(200, {"data": self.users[ACCOUNT.lower()]})
        if request.path == POST_PATH and request.method == "POST":
            return self._create(request)
        if match := USER_PATH.match(request.path):
            return self._user(match["username"])
        if match := TWEETS_PATH.match(request.path):
            return self._tweets(match["id"], request.query)
        return self._reply(404, {"title": "Not Found Error", "type": "about:blank", "status": 404,
                                 "detail": "Sorry, that page does not exist."})

    def _user(self, username: str) -> Reply:
        user = self.users.get(username.lower())
        if user:
            return self._reply(200, {"data": user})
        return self._reply(200, {"errors": [{
            "value": username, "detail": f"Could not find user with username: [{username}].",
            "title": "Not Found Error", "resource_type": "user", "parameter": "username", "resource_id": username,
            "type": "https://api.twitter.com/2/problems/resource-not-found"}]})

    def _tweets(self, user_id: str, query: dict[str, str]) -> Reply:
        if user_id in self.protected:
            return self._reply(200, {"errors": [{
                "resource_id": user_id, "parameter": "id", "resource_type": "user", "section": "data",
                "title": "Authorization Error", "value": user_id,
                "detail": f"Sorry, you are not authorized to see the user with id: [{user_id}].",
                "type": "https://api.twitter.com/2/problems/not-authorized-for-resource"}]})
        size = int(query.get("max_results", 10))
        if not 5 <= size <= 100:
            return self._reply(400, {"errors": [{"parameters": {"max_results": [str(size)]},
                                                 "message": "The `max_results` query parameter value "
                                                            f"[{size}] is not between 5 and 100"}],
                                     "title": "Invalid Request", "detail": "One or more parameters to your "
                                     "request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"})
        excluded = set(filter(None, query.get("exclude", "").split(",")))
        posts = [p for p in self.timelines.get(user_id, [])[:TIMELINE_CAP] if not _excluded(p, excluded)]
        start = int(query["pagination_token"].removeprefix("page-")) if "pagination_token" in query else 0
        page = posts[start:start + size]
        if not page:
            return self._reply(200, {"meta": {"result_count": 0}})
        fields = set(filter(None, query.get("tweet.fields", "").split(",")))
        meta: dict[str, Any] = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if start + size < len(posts):
            meta["next_token"] = f"page-{start + size}"
        return self._reply(200, {"data": [_fields(p, fields) for p in page], "meta": meta})

    def _create(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            body = None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return self._reply(400, {**INVALID_REQUEST, "errors": [{"message": "$.text: is missing but it is "
                                                                               "required"}]})
        if len(text) > SHORT_TEXT:  # X counts a weighted length (URLs, CJK); characters are enough here
            return self._reply(400, {**INVALID_REQUEST, "errors": [{"message": TEXT_TOO_LONG}]})
        if any(_plain_text(post) == text for post in self.account_posts):
            return self._reply(403, DUPLICATE)
        post_id = str(POSTED_BASE_ID + len(self.posted) + 1)
        escaped = html.escape(text, quote=False)  # X escapes &, < and > in post text
        post = {"id": post_id, "text": escaped, "edit_history_tweet_ids": [post_id],
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        self.account_posts.insert(0, post)
        self.posted.append(post)
        return self._reply(201, {"data": {"id": post_id, "text": escaped, "edit_history_tweet_ids": [post_id]}})

    def _reply(self, status: int, body: dict[str, Any]) -> Reply:
        return Reply(status, body, {"x-rate-limit-limit": "1500", "x-rate-limit-remaining": "1499",
                                    "x-rate-limit-reset": str(int(time.time()) + RATE_WINDOW)})


def rate_limited(*, reset_in: int | None) -> dict[str, Any]:
    """The keyword arguments of `server.fail` for X's 429, resetting `reset_in` seconds from now (None: unsaid).

    `x.server.fail(POST_PATH, **rate_limited(reset_in=60))` rate-limits the next post.
    """
    headers = {"x-rate-limit-limit": "1500", "x-rate-limit-remaining": "0"}
    if reset_in is not None:
        headers["x-rate-limit-reset"] = str(int(time.time()) + reset_in)
    return {"status": 429, "body": TOO_MANY_REQUESTS, "headers": headers}


def _authentication(request: Request) -> str | None:
    """APP for the bearer token, USER for an OAuth 1.0a request signed with the app's and the account's secrets."""
    header = request.headers.get("authorization", "")
    if header == f"Bearer {BEARER_TOKEN}":
        return APP
    if not header.startswith("OAuth "):
        return None
    oauth = {name: utils.unescape(value) for name, value in utils.parse_authorization_header(header)}
    if oauth.get("oauth_consumer_key") != API_KEY or oauth.get("oauth_token") != ACCESS_TOKEN:
        return None
    # The signature covers the method, the URL and the query and oauth_* parameters (a JSON body is not signed).
    parameters = signature.collect_parameters(uri_query=urlencode(request.query), headers={"Authorization": header})
    base = signature.signature_base_string(request.method, signature.base_string_uri(TWEEPY_HOST + request.path),
                                           signature.normalize_parameters(parameters))
    secrets = Client(API_KEY, client_secret=API_SECRET, resource_owner_key=ACCESS_TOKEN,
                     resource_owner_secret=ACCESS_TOKEN_SECRET)
    expected = signature.sign_hmac_sha1_with_client(base, secrets)
    return USER if hmac.compare_digest(expected, oauth.get("oauth_signature", "")) else None


def _plain_text(post: dict[str, Any]) -> str:
    note = post.get("note_tweet")
    return html.unescape(note["text"] if isinstance(note, dict) else post["text"])


def _excluded(post: dict[str, Any], excluded: set[str]) -> bool:
    kinds = {ref["type"] for ref in post.get("referenced_tweets", [])}
    return ("retweets" in excluded and "retweeted" in kinds) or ("replies" in excluded and "replied_to" in kinds)


def _fields(post: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    default = {"id", "text", "edit_history_tweet_ids"}
    return {key: value for key, value in post.items() if key in default | fields}
