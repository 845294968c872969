"""Reading subreddits page by page: through praw with an app's credentials, or Reddit's public JSON without."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, Self

from scrapers.documents import Page
from scrapers.errors import ScrapeError
from scrapers.reddit.listing import REDDIT_SOURCE, parse_listing
from scrapers.waiting import Waiter

SORTS = ("top", "hot", "new")
TIMES = ("hour", "day", "week", "month", "year", "all")  # `t` of a top listing
LISTING_CAP = 1000  # Reddit serves at most about this many posts of any one listing
PAGE_SIZE = 100  # posts per request, the most Reddit gives
SUBREDDIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")  # 2-21 letters, digits or _
PASSWORD, APP_ONLY, PUBLIC = "password", "app-only", "public"  # the ways of reading, by what is configured
PLATFORM = "python"  # the <platform> of Reddit's user agent format
DEFAULT_APP_ID = "nnbot"

__all__ = ["LISTING_CAP", "REDDIT_SOURCE", "SORTS", "TIMES", "RedditAccess", "SubredditReader",
           "subreddit_name", "user_agent"]


@dataclass(frozen=True)
class RedditAccess:
    """Credentials and endpoints, from REDDIT_* settings; which are set decides how Reddit is read."""

    user_agent: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"

    def __post_init__(self) -> None:
        if bool(self.client_id) != bool(self.client_secret):
            missing = "REDDIT_CLIENT_SECRET" if self.client_id else "REDDIT_CLIENT_ID"
            raise ScrapeError(f"{missing} is not set; set both REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET from "
                              "your script app, or neither to read Reddit's public listings.")
        if self.password and not self.username:
            raise ScrapeError("REDDIT_PASSWORD is set but REDDIT_USERNAME is not; set the account's username too.")
        if self.password and not self.client_id:
            raise ScrapeError("REDDIT_PASSWORD is set but REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET are not; a login "
                              "needs a script app (see the README), or unset REDDIT_PASSWORD to read the public "
                              "listings.")

    @property
    def mode(self) -> str:
        """`password` (a script app and its developer's login), `app-only` (the app alone), or `public`."""
        if not self.client_id:
            return PUBLIC
        return PASSWORD if self.username and self.password else APP_ONLY


def user_agent(*, version: str, client_id: str | None = None, username: str | None = None) -> str:
    """Reddit's requested form, `<platform>:<app id>:<version> (by /u/<user>)`.

    Without a username there is nobody to name, so the `(by …)` part is left out rather than invented; setting
    REDDIT_USERNAME alone (no password) adds it.
    """
    agent = f"{PLATFORM}:{client_id or DEFAULT_APP_ID}:{version}"
    return f"{agent} (by /u/{username})" if username else agent


def subreddit_name(text: str) -> str:
    """'r/Python', '/r/Python/' or 'Python' -> 'Python'; `ScrapeError` if it cannot be a subreddit's name."""
    name = re.sub(r"^/?r/", "", text.strip()).strip("/")
    if not SUBREDDIT_NAME.match(name):
        raise ScrapeError(f"{text!r} is not a subreddit name (2-21 letters, digits or _, like r/AskReddit); "
                          "check the spelling.")
    return name


class _Listings(Protocol):
    def fetch(self, subreddit: str, sort: str, params: dict[str, str | int]) -> object: ...

    def close(self) -> None: ...


class SubredditReader:
    """Reads subreddits with one client: praw when an app is configured, else the public JSON listings."""

    def __init__(self, access: RedditAccess, *, waiter: Waiter) -> None:
        self.access = access
        self.listings: _Listings
        if access.mode == PUBLIC:
            from scrapers.reddit.public import PublicListings

            self.listings = PublicListings(reddit_url=access.reddit_url, user_agent=access.user_agent,
                                           waiter=waiter)
        else:
            from scrapers.reddit.oauth import OAuthListings

            self.listings = OAuthListings(access, waiter=waiter)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listings.close()

    def pages(self, subreddit: str, *, sort: str = "top", time: str = "week", limit: int = LISTING_CAP,
              with_body: bool = False, include_nsfw: bool = False) -> Iterator[Page]:
        """r/`subreddit`'s listing one page at a time, until `limit` posts were read or the listing ends."""
        if sort not in SORTS or time not in TIMES:
            raise ScrapeError(f"Sort {sort!r} with time {time!r} is not a Reddit listing; "
                              f"use a sort of {', '.join(SORTS)} and a time of {', '.join(TIMES)}.")
        limit = min(limit, LISTING_CAP)
        fetched, after = 0, None
        while fetched < limit:
            params: dict[str, str | int] = {"limit": min(PAGE_SIZE, limit - fetched)}
            if sort == "top":
                params["t"] = time
            if after:
                params["after"] = after
            payload = self.listings.fetch(subreddit, sort, params)
            listing = parse_listing(payload, where=f"r/{subreddit}", reddit_url=self.access.reddit_url,
                                    with_body=with_body, include_nsfw=include_nsfw)
            fetched += listing.page.fetched
            yield listing.page
            if not listing.after or listing.page.fetched == 0:
                return
            after = listing.after
