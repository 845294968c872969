"""Posting to X: one post per call through tweepy's v2 `Client`, as the account whose OAuth 1.0a tokens are set.

Each failure says whether the post may exist: a request that certainly never went out (DNS, a refused or timed-out
connection) is TRANSIENT, X's refusals are RATE_LIMITED, PERMANENT (this post) or ACCOUNT (the keys or the app's permissions), and anything after the POST may have reached
X (a 5xx answer, a timeout or dropped connection while waiting for the answer) is UNKNOWN. Requests are sent once.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from bot.config import Settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost
from bot.publishers.sending import connection_failure
from scrapers.http import TIMEOUT, RetryingAdapter, json_body
from scrapers.x import DEFAULT_RESET, MIN_PAGE_SIZE, PAGE_SIZE, POST_URL, RESET_MARGIN, TIMELINE_CAP, TWEEPY_HOST

logger = logging.getLogger(__name__)

TWEET_FIELDS = ["created_at", "note_tweet"]  # note_tweet: the whole text of a post longer than 280 characters
DUPLICATE = "duplicate content"  # in the detail of X's 403 for a text the account already posted
KEYS_PAGE = 'the "Keys and tokens" page of your app in the X developer portal'
CREDENTIALS = "X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET"
WRITE_ACCESS_FIX = ("in the X developer portal, give the app (in a Project) Read and Write permission under User "
                    "authentication settings, then regenerate X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET")
# Failures that happen before any byte of a request is sent: nothing can have been posted.


class XPublisher:
    """The X account that X_ACCESS_TOKEN belongs to: posts go to its timeline (X has no destination)."""

    def __init__(self, settings: Settings, *, timeout: tuple[float, float] = TIMEOUT) -> None:
        """`timeout`: seconds to connect, and to wait for each part of an answer."""
        credentials = {"X_API_KEY": settings.x_api_key, "X_API_SECRET": _reveal(settings.x_api_secret),
                       "X_ACCESS_TOKEN": settings.x_access_token,
                       "X_ACCESS_TOKEN_SECRET": _reveal(settings.x_access_token_secret)}
        missing = [name for name, value in credentials.items() if not value]
        if missing:
            raise ConfigError(f"Posting to X needs {_join(missing)}; copy {'it' if len(missing) == 1 else 'them'} "
                              f"from {KEYS_PAGE}, with an access token that has Read and Write permission.")
        api_url = urlsplit(settings.x_api_url)
        if api_url.scheme not in ("http", "https") or not api_url.netloc:
            raise ConfigError(f"X_API_URL {settings.x_api_url!r} is not an http(s) URL; set it to "
                              f"{TWEEPY_HOST} or leave it unset.")
        import tweepy

        self.client = tweepy.Client(
            consumer_key=credentials["X_API_KEY"], consumer_secret=credentials["X_API_SECRET"],
            access_token=credentials["X_ACCESS_TOKEN"], access_token_secret=credentials["X_ACCESS_TOKEN_SECRET"],
            return_type=dict, wait_on_rate_limit=False)  # dict: X's JSON as it came; rate limits are ours to report
        adapter = _OnceAdapter(api_url=settings.x_api_url, timeout=timeout, sleep_scale=settings.bot_sleep_scale)
        self.client.session.mount(TWEEPY_HOST + "/", adapter)
        self._account: dict[str, str] | None = None  # {"id", "username"} of the tokens' account, once looked up

    def describe(self) -> str:
        return f"@{self._account['username']} on X" if self._account else "the X account of X_ACCESS_TOKEN"

    def publish(self, text: str, *, key: PostKey | None = None) -> Posted:  # no repeat refusal: unused
        import tweepy

        username = self._me()["username"]  # before the POST: a failure of this lookup has posted nothing
        try:
            body = self.client.create_tweet(text=text, user_auth=True)
        except (tweepy.HTTPException, requests.RequestException) as error:
            raise _failure(error, what="the post", posting=True, username=username) from error
        data = body.get("data") if isinstance(body, dict) else None
        post_id = data.get("id") if isinstance(data, dict) else None
        if not post_id:
            raise PublishError(f"X accepted the post but sent no id for it, so it may have been posted; look for it "
                               f"among @{username}'s posts before posting it again.", outcome=Outcome.UNKNOWN)
        url = POST_URL.format(username=username, id=post_id)
        logger.info("Posted to X: %s", url)
        return Posted(remote_id=str(post_id), url=url)

    def recent_posts(self, *, limit: int) -> list[RemotePost]:
        try:
            account = self._me()
            posts = list(self._timeline(account, limit=min(limit, TIMELINE_CAP)))
        except PublishError as error:  # reading only: whatever failed, nothing was posted and it can be retried
            raise PublishError(str(error), outcome=Outcome.TRANSIENT) from error
        return [_remote_post(post, username=account["username"]) for post in posts]

    def close(self) -> None:
        self.client.session.close()

    def _me(self) -> dict[str, str]:
        """The id and username of the account the tokens belong to, looked up once."""
        if self._account is None:
            body = self._read(self.client.get_me, what="the lookup of X_ACCESS_TOKEN's account", user_auth=True)
            user = body.get("data")
            if not (isinstance(user, dict) and user.get("id") and user.get("username")):
                raise PublishError("X answered the lookup of X_ACCESS_TOKEN's account without the account; try "
                                   "again later.", outcome=Outcome.TRANSIENT)
            self._account = {"id": str(user["id"]), "username": str(user["username"])}
        return self._account

    def _timeline(self, account: Mapping[str, str], *, limit: int) -> Iterator[dict[str, Any]]:
        """The account's newest `limit` posts, newest first, a page at a time."""
        what, fetched, token = f"the list of @{account['username']}'s recent posts", 0, None
        while fetched < limit:
            options: dict[str, Any] = {"max_results": max(MIN_PAGE_SIZE, min(PAGE_SIZE, limit - fetched)),
                                       "tweet_fields": TWEET_FIELDS, "user_auth": True}
            if token:
                options["pagination_token"] = token
            body = self._read(self.client.get_users_tweets, account["id"], what=what, **options)
            posts = body.get("data") or []
            if not isinstance(posts, list) or not all(isinstance(p, dict) and p.get("id") for p in posts):
                raise PublishError(f"X answered {what} with something other than a list of posts; try again "
                                   "later.", outcome=Outcome.TRANSIENT)
            yield from posts[:limit - fetched]  # X's smallest page is 5 posts
            fetched += len(posts)
            token = (body.get("meta") or {}).get("next_token")
            if not token or not posts:
                return

    def _read(self, method: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> dict[str, Any]:
        """One GET; its failures as `PublishError`s, none of them UNKNOWN (a read posts nothing)."""
        import tweepy

        try:
            body = method(*args, **kwargs)
        except (tweepy.HTTPException, requests.RequestException) as error:
            raise _failure(error, what=what, posting=False) from error
        if not isinstance(body, dict):
            raise PublishError(f"X answered {what} with something other than a JSON object; try again later.",
                               outcome=Outcome.TRANSIENT)
        return body


class _OnceAdapter(RetryingAdapter):
    """Sends tweepy's requests to X_API_URL, each once (a repeated POST could post twice), with our timeouts."""

    def __init__(self, *, api_url: str, timeout: tuple[float, float], sleep_scale: float) -> None:
        super().__init__(sleep_scale=sleep_scale, moved=(TWEEPY_HOST, api_url), retries=False)
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:  # tweepy passes none
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def _failure(error: Exception, *, what: str, posting: bool, username: str | None = None) -> PublishError:
    """What a failed request means: whether it may have posted, and what to do about it, in one sentence."""
    import tweepy

    if isinstance(error, tweepy.TooManyRequests):
        retry_at = _reset_time(error.response.headers)
        return PublishError(f"X rate-limited {what} until {retry_at:%H:%M:%S} UTC; try again after that.",
                            outcome=Outcome.RATE_LIMITED, retry_at=retry_at)
    if isinstance(error, tweepy.HTTPException) and error.response.status_code < 500:
        return _refusal(error.response, what=what, posting=posting)
    if isinstance(error, tweepy.HTTPException):  # 5xx: X may have acted on a POST before it failed
        status = f"HTTP {error.response.status_code} {error.response.reason or ''}".strip()
        if posting:
            return PublishError(f"X answered the post with {status}, so it may have been posted; look for it "
                                f"among @{username}'s posts before posting it again.", outcome=Outcome.UNKNOWN)
        return PublishError(f"X answered {what} with {status}; try again later.", outcome=Outcome.TRANSIENT)
    return connection_failure(error, where="X", what=what, posting=posting, setting="X_API_URL",
                              look=f"look for it among @{username}'s posts before posting it again.")


def _refusal(response: requests.Response, *, what: str, posting: bool) -> PublishError:
    """X's 4xx (not 429): it did not act on the request. PERMANENT when the post is at fault (retrying the same
    post gets the same), ACCOUNT when the keys or the app's permissions are (any post would be refused)."""
    status, body = response.status_code, json_body(response)
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    words = str(first.get("message") or body.get("detail") or body.get("title") or response.reason or "no reason")
    words = words.rstrip(".")  # X's words go in parentheses, inside our sentence
    if status == 401:
        return PublishError(f"X refused the app's keys or the account's access token (HTTP 401 {words}); copy "
                            f"{CREDENTIALS} again from {KEYS_PAGE}.", outcome=Outcome.ACCOUNT)
    if posting and status == 403 and DUPLICATE in words.lower():
        return PublishError(f"X refused {what} ({words}); edit its text or reject it.", outcome=Outcome.PERMANENT)
    if status == 403:
        fix = WRITE_ACCESS_FIX if posting else "check the app's API plan and permissions in the X developer portal"
        return PublishError(f"X refused {what} for this app (HTTP 403: {words}); {fix}.", outcome=Outcome.ACCOUNT)
    if posting and status == 400:
        return PublishError(f"X refused {what} as invalid ({words}); edit its text or reject it.",
                            outcome=Outcome.PERMANENT)
    return PublishError(f"X answered {what} with HTTP {status} ({words}); check X_API_URL.",
                        outcome=Outcome.PERMANENT)


def _reset_time(headers: Mapping[str, str]) -> datetime:
    """When X takes requests again: x-rate-limit-reset (a Unix time in whole seconds) plus a margin."""
    now = datetime.now(UTC)
    try:
        reset = datetime.fromtimestamp(float(headers["x-rate-limit-reset"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError):  # absent, or not a time
        return now + timedelta(seconds=DEFAULT_RESET)
    return max(reset, now) + timedelta(seconds=RESET_MARGIN)


def _remote_post(post: Mapping[str, Any], *, username: str) -> RemotePost:
    note = post.get("note_tweet")
    long_text = note.get("text") if isinstance(note, dict) else None  # a long post's `text` is cut short
    text = long_text if isinstance(long_text, str) else str(post.get("text", ""))
    return RemotePost(remote_id=str(post["id"]), url=POST_URL.format(username=username, id=post["id"]),
                      text=html.unescape(text),  # X escapes &, < and > in post text
                      created_at=_parse_time(post.get("created_at")), destination=None)


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC) if value else None  # "2023-02-01T10:00:00.000Z"
    except ValueError:
        return None


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _join(names: list[str]) -> str:
    """['A', 'B', 'C'] -> 'A, B and C'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
