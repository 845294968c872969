"""Subreddit listings with a Reddit app's credentials, through praw (password grant, or app-only access)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scrapers.errors import RateLimitError, ScrapeError
from scrapers.http import describe, json_body, session
from scrapers.reddit.failures import (
    bad_json,
    credentials_refused,
    dropped,
    login_refused,
    reset_seconds,
    subreddit_failure,
)
from scrapers.waiting import Waiter

if TYPE_CHECKING:
    from scrapers.reddit import RedditAccess

logger = logging.getLogger(__name__)

MAX_RATE_LIMIT_WAITS = 5  # 429s in a row for one page before giving up
TOKEN_PATH = "/api/v1/access_token"


class OAuthListings:
    """GET {REDDIT_OAUTH_URL}/r/SUB/SORT through praw, which fetches the token and paces by x-ratelimit-*.

    praw's own rate limiter spaces requests by Reddit's headers; a 429 that still comes back is waited on here,
    visibly. The raw listing JSON is returned (`Reddit.request`), so both ways of reading parse it alike.
    """

    def __init__(self, access: RedditAccess, *, waiter: Waiter) -> None:
        import praw

        self.waiter = waiter
        self.http = session(user_agent=None, sleep_scale=waiter.scale)  # prawcore sets the user agent on it
        password_grant = access.mode == "password"
        self.reddit = praw.Reddit(
            client_id=access.client_id,
            client_secret=access.client_secret,
            # Without both, praw asks for an app-only token (grant_type=client_credentials).
            username=access.username if password_grant else None,
            password=access.password if password_grant else None,
            refresh_token=None,  # every setting given here, so a stray praw.ini cannot add one
            user_agent=access.user_agent,
            oauth_url=access.oauth_url.rstrip("/"),
            reddit_url=access.reddit_url.rstrip("/"),
            check_for_updates=False,
            requestor_kwargs={"session": self.http},
        )

    def fetch(self, subreddit: str, sort: str, params: Mapping[str, str | int]) -> Any:
        """One page of r/`subreddit`'s `sort` listing as parsed JSON; `ScrapeError` on any failure."""
        import prawcore

        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            try:
                return self.reddit.request(method="GET", path=f"r/{subreddit}/{sort}", params=dict(params))
            except prawcore.TooManyRequests as error:
                self.waiter.rate_limited(service="Reddit", seconds=reset_seconds(error.response.headers),
                                         what=f"reading r/{subreddit}")
            except prawcore.OAuthException as error:  # the token endpoint said no to the username or password
                raise login_refused(error.error) from error
            except prawcore.Redirect as error:
                raise subreddit_failure(subreddit, status=302, body={}, location=error.path,
                                        authenticated=True) from error
            except prawcore.BadJSON as error:
                raise bad_json(subreddit) from error
            except prawcore.ResponseException as error:
                raise _response_failure(subreddit, error.response) from error
            except prawcore.RequestException as error:
                raise dropped(subreddit, describe(error.original_exception)) from error
        raise RateLimitError(f"Reddit kept rate-limiting r/{subreddit} after {MAX_RATE_LIMIT_WAITS} waits; "
                             "try again later.")

    def close(self) -> None:
        self.http.close()


def _response_failure(subreddit: str, response: Any) -> ScrapeError:
    if TOKEN_PATH in (response.url or "") and response.status_code < 500:  # the app's id or secret
        return credentials_refused(response.status_code)
    return subreddit_failure(subreddit, status=response.status_code, body=json_body(response),
                             location=response.headers.get("location"), authenticated=True)
