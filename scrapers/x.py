"""Reading an account's posts on X through the v2 API (tweepy's `Client`), newest first, one page at a time."""

from __future__ import annotations

import html
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import requests

from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.http import RetryingAdapter, describe, json_body
from scrapers.waiting import Waiter
from scrapers.x_archive import X_SOURCE

logger = logging.getLogger(__name__)

TWEEPY_HOST = "https://api.twitter.com"  # fixed in tweepy's code; X_API_URL moves it
POST_URL = "https://x.com/{username}/status/{id}"
TIMELINE_CAP = 3200  # X serves at most an account's 3,200 most recent posts
PAGE_SIZE, MIN_PAGE_SIZE = 100, 5  # max_results that X accepts for a timeline page
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
TWEET_FIELDS = ["created_at", "public_metrics", "note_tweet", "referenced_tweets"]
REPLY = "reply"  # the skip reason of a reply
RESET_MARGIN = 1.0  # seconds added to X's reset time, which it gives in whole seconds
DEFAULT_RESET = 900.0  # seconds: X's rate-limit windows are 15 minutes, for a 429 that does not say when
MAX_RATE_LIMIT_WAITS = 5  # 429s in a row for one request before giving up
NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"
ARCHIVE_HINT = ("import your X archive instead with `bot import path/to/archive.zip --corpus NAME` "
                "(x.com: Settings, Your account, Download an archive of your data)")


@dataclass(frozen=True)
class XAccess:
    """X_BEARER_TOKEN and X_API_URL, from settings."""

    bearer_token: str | None = field(default=None, repr=False)
    api_url: str = TWEEPY_HOST


def x_username(text: str) -> str:
    """'@jack' or 'jack' -> 'jack'; `ScrapeError` if it cannot be an X username."""
    name = text.strip().removeprefix("@")
    if not USERNAME.match(name):
        raise ScrapeError(f"{text!r} is not an X username (1-15 letters, digits or _); check the spelling.")
    return name


class XReader:
    """An account's posts through tweepy's v2 `Client` with a bearer token (app-only access)."""

    def __init__(self, access: XAccess, *, waiter: Waiter) -> None:
        if not access.bearer_token:
            raise ScrapeError(f"Reading posts from X needs X_BEARER_TOKEN from an app whose plan can read posts; "
                              f"set it, or {ARCHIVE_HINT}.")
        import tweepy

        self.waiter = waiter
        # return_type=dict: the API's JSON as it came, so the shapes here are X's documented ones.
        self.client = tweepy.Client(bearer_token=access.bearer_token, return_type=dict, wait_on_rate_limit=False)
        adapter = RetryingAdapter(sleep_scale=waiter.scale, moved=(TWEEPY_HOST, access.api_url))
        self.client.session.mount(TWEEPY_HOST + "/", adapter)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.session.close()

    def pages(self, username: str, *, limit: int = TIMELINE_CAP, include_replies: bool = False,
              include_retweets: bool = False) -> Iterator[Page]:
        """@`username`'s posts, newest first, until `limit` were read or the timeline ends."""
        user = self._user(x_username(username))
        name, limit = user["username"], min(limit, TIMELINE_CAP)
        # Retweets are left out by X itself. Replies are left out here: asking X to exclude them caps the
        # timeline at its 800 most recent posts instead of 3,200.
        exclude = [] if include_retweets else ["retweets"]
        fetched, token = 0, None
        while fetched < limit:
            options: dict[str, Any] = {"max_results": max(MIN_PAGE_SIZE, min(PAGE_SIZE, limit - fetched)),
                                       "tweet_fields": TWEET_FIELDS}
            if exclude:
                options["exclude"] = exclude
            if token:
                options["pagination_token"] = token
            body = self._call(self.client.get_users_tweets, user["id"], what=f"@{name}'s posts", **options)
            posts = _timeline_posts(body, name=name)[:limit - fetched]  # X's smallest page is 5 posts
            page = _page(posts, username=name, include_replies=include_replies)
            fetched += page.fetched
            yield page
            token = (body.get("meta") or {}).get("next_token")
            if not token or not posts:
                return

    def _user(self, username: str) -> dict[str, Any]:
        body = self._call(self.client.get_user, username=username, what=f"@{username}")
        user = body.get("data")
        if isinstance(user, dict) and user.get("id") and user.get("username"):
            return user
        error = _first_error(body)
        if error.get("type") == NOT_FOUND_TYPE or not error:
            raise SourceUnavailableError(f"X has no account @{username}; check the spelling.")
        raise SourceUnavailableError(f"X will not show @{username} ({_problem(error)}); pick another account.")

    def _call(self, method: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; X's errors become one sentence each, and rate limits a wait."""
        import tweepy

        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            try:
                body = method(*args, **kwargs)
            except tweepy.TooManyRequests as error:
                self.waiter.rate_limited(service="X", seconds=_until_reset(error.response.headers),
                                         what=f"reading {what}")
                continue
            except tweepy.HTTPException as error:
                raise _http_failure(error.response, what=what) from error
            except requests.exceptions.JSONDecodeError as error:  # before RequestException: it is one too
                raise ScrapeError(f"X sent an answer for {what} that is not valid JSON; what was fetched is "
                                  "kept, so run the command again to continue.") from error
            except requests.RequestException as error:
                raise ScrapeError(f"The connection to X failed while reading {what} ({describe(error)}); "
                                  "what was fetched is kept, so check your network and run the command again."
                                  ) from error
            if not isinstance(body, dict):
                raise ScrapeError(f"X answered {what} with something other than a JSON object; try again later.")
            return body
        raise RateLimitError(f"X kept rate-limiting {what} after {MAX_RATE_LIMIT_WAITS} waits; try again later.")


def _http_failure(response: requests.Response, *, what: str) -> ScrapeError:
    status, body = response.status_code, json_body(response)
    reason = body.get("reason") or body.get("title") or response.reason
    if status == 401:
        return ScrapeError(f"X refused X_BEARER_TOKEN (HTTP 401 {reason}); copy the bearer token again from your "
                           f"app in the X developer portal, or {ARCHIVE_HINT}.")
    if status == 403:
        return ScrapeError(f"X_BEARER_TOKEN's API access cannot read posts (HTTP 403 {reason}); use an app whose "
                           f"plan includes reading posts, or {ARCHIVE_HINT}.")
    if status == 404:
        return SourceUnavailableError(f"X found no {what} (HTTP 404); check the username.")
    if status >= 500:
        return ScrapeError(f"X kept failing (HTTP {status}) while reading {what}; what was fetched is kept, so "
                           "run the command again later to continue.")
    return ScrapeError(f"X answered HTTP {status} ({reason}) while reading {what}; check the username and "
                       "X_API_URL.")


def _until_reset(headers: Mapping[str, str]) -> float:
    """Seconds until x-rate-limit-reset, a Unix time."""
    try:
        return max(float(headers["x-rate-limit-reset"]) - time.time(), 0.0) + RESET_MARGIN
    except (KeyError, ValueError):
        return DEFAULT_RESET


def _problem(error: Mapping[str, Any]) -> str:
    return str(error.get("detail") or error.get("title") or "no reason given")


def _first_error(body: Mapping[str, Any]) -> dict[str, Any]:
    errors = body.get("errors")
    return errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}


def _timeline_posts(body: Mapping[str, Any], *, name: str) -> list[dict[str, Any]]:
    posts = body.get("data")
    if posts is None:
        error = _first_error(body)
        if error:  # e.g. a protected account: X answers 200 with only an error
            raise SourceUnavailableError(
                f"X will not show @{name}'s posts ({_problem(error)}); pick another account.")
        return []  # meta.result_count 0: no (more) posts
    if not isinstance(posts, list) or not all(isinstance(p, dict) and p.get("id") for p in posts):
        raise ScrapeError(f"X answered @{name}'s posts with something other than a list of posts; "
                          "try again later.")
    return posts


def _page(posts: list[dict[str, Any]], *, username: str, include_replies: bool) -> Page:
    documents, skipped = [], Counter[str]()
    for post in posts:
        if not include_replies and _is_reply(post):
            skipped[REPLY] += 1
        else:
            documents.append(_document(post, username=username))
    return Page(documents=tuple(documents), fetched=len(posts), skipped=dict(skipped))


def _is_reply(post: Mapping[str, Any]) -> bool:
    references = post.get("referenced_tweets") or []
    return any(isinstance(ref, dict) and ref.get("type") == "replied_to" for ref in references)


def _document(post: Mapping[str, Any], *, username: str) -> Document:
    note = post.get("note_tweet")
    # A post longer than 280 characters comes with its text cut short; the whole of it is in note_tweet.
    long_text = note.get("text") if isinstance(note, dict) else None
    text = long_text if isinstance(long_text, str) else str(post.get("text", ""))
    likes = (post.get("public_metrics") or {}).get("like_count")
    return Document(
        source=X_SOURCE,
        external_id=str(post["id"]),
        text=html.unescape(text).strip(),  # X escapes &, < and > in post text
        author=username,
        created_at=_parse_time(post.get("created_at")),
        score=likes if isinstance(likes, int) else None,
        url=POST_URL.format(username=username, id=post["id"]),
    )


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC) if value else None  # "2023-02-01T10:00:00.000Z"
    except ValueError:
        return None
