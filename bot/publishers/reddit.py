"""Posting titles to a subreddit through praw: each post sent once, each failure sorted into a `PublishError` outcome.

Posting needs a script app and its developer's login (the password grant). The one rule that shapes this module
is at-most-once: a submit POST that may have reached Reddit is never sent again. Our `requests` session does not
retry, praw does not re-post on RATELIMIT, and prawcore's own retries (a 5xx, a 408, a dropped connection: its
`FiniteRetryStrategy`) are turned off on the sessions praw builds. Whether a failed request was sent is read from
the requests/urllib3 exception chain (`certainly_not_sent`): only a failure to connect proves it was not.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import prawcore
import requests
from prawcore.sessions import FiniteRetryStrategy
from pydantic import SecretStr

from bot.config import Settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost
from bot.publishers.sending import certainly_not_sent
from bot.scraping import reddit_access
from scrapers.errors import ScrapeError
from scrapers.http import describe, session
from scrapers.reddit import subreddit_name
from scrapers.reddit.failures import APPS_PAGE, credentials_refused, login_refused, reset_seconds

if TYPE_CHECKING:
    import praw
    from praw.exceptions import RedditAPIException
    from praw.models import Submission

logger = logging.getLogger(__name__)

CREDENTIALS = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USERNAME", "REDDIT_PASSWORD")
TOKEN_PATH = "/api/v1/access_token"
PRAW_NEVER_WAITS = -1  # praw's ratelimit_seconds: it sleeps and re-posts on a RATELIMIT this short (0 would still
#                        re-post after "500 milliseconds"); the wait is the scheduler's to keep, from `retry_at`
RATELIMIT_MARGIN = 5  # seconds added to the wait Reddit names, so the next try lands after the break, not on it
DEFAULT_RATELIMIT_WAIT = 600  # seconds, for a RATELIMIT message that names no time (Reddit's usual ten minutes)
WAIT_PART = re.compile(r"(\d+)\s*(millisecond|second|minute|hour)s?", re.IGNORECASE)  # "9 minutes", "30 seconds"
WAIT_UNITS = {"millisecond": 0.001, "second": 1.0, "minute": 60.0, "hour": 3600.0}  # seconds per unit
MAYBE_HANDLED_STATUSES = frozenset({408, 500, 502, 503, 504, 520, 522})  # answers after which a post may exist
HINTS = {  # Reddit's error type -> what a person can do about it
    "SUBREDDIT_NOEXIST": "check the bot's destination",
    "SUBREDDIT_NOTALLOWED": "check that the account may post in that subreddit",
    "NO_SELFS": "the subreddit takes no text posts, so pick another destination",
    "SUBMIT_VALIDATION_FLAIR_REQUIRED": "set flair_id in the bot's [bot.reddit] table",
    "TOO_LONG": "shorten the text or lower the bot's sampling.max_tokens",
}


@dataclass(frozen=True)
class SendOnce(FiniteRetryStrategy):
    """prawcore's retry strategy with no retry (and no sleep before the one try): every request is sent once."""

    retries: int = 0

    def _sleep_seconds(self) -> float | None:
        return None

    def consume_available_retry(self) -> SendOnce:
        return self

    def should_retry_on_failure(self) -> bool:
        return False


class RedditPublisher:
    """Self-posts to one subreddit as the account of REDDIT_USERNAME; `body` and flair go with every title."""

    def __init__(self, settings: Settings, *, subreddit: str, body: str | None = None, flair_id: str | None = None,
                 flair_text: str | None = None) -> None:
        import praw

        values = (settings.reddit_client_id, settings.reddit_client_secret, settings.reddit_username,
                  settings.reddit_password)
        missing = [name for name, value in zip(CREDENTIALS, values, strict=True) if not _is_set(value)]
        if missing:
            them = "it" if len(missing) == 1 else "them"
            raise ConfigError(f"Posting to Reddit needs a script app and its developer's login, but {_listed(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} not set; set {them} as the README's "
                              "\"Reddit with a script app\" shows.")
        try:
            self.subreddit = subreddit_name(subreddit)
        except ScrapeError as error:
            raise ConfigError(str(error)) from None
        access = reddit_access(settings)
        self.username: str = access.username or ""
        self.reddit_url = access.reddit_url.rstrip("/")
        self.body, self.flair_id, self.flair_text = body, flair_id, flair_text
        self.http = session(user_agent=None, sleep_scale=settings.bot_sleep_scale, retries=False)
        self.reddit = praw.Reddit(
            client_id=access.client_id,
            client_secret=access.client_secret,
            username=access.username,
            password=access.password,
            refresh_token=None,  # every setting given here, so a stray praw.ini cannot add one
            user_agent=access.user_agent,
            oauth_url=access.oauth_url.rstrip("/"),
            reddit_url=self.reddit_url,
            check_for_updates=False,
            ratelimit_seconds=PRAW_NEVER_WAITS,
            requestor_kwargs={"session": self.http},  # prawcore sets the user agent on it
        )
        send_once(self.reddit)

    def describe(self) -> str:
        return f"r/{self.subreddit} as u/{self.username}"

    def publish(self, text: str, *, key: PostKey | None = None) -> Posted:  # no repeat refusal: unused
        """Submit `text` as a self-post's title, once; `PublishError` says whether it may have been made."""
        from praw.exceptions import PRAWException, RedditAPIException

        try:
            submission = self.reddit.subreddit(self.subreddit).submit(
                title=text, selftext=self.body or "", flair_id=self.flair_id, flair_text=self.flair_text)
        except RedditAPIException as error:
            raise self._refused(error) from error
        except prawcore.OAuthException as error:  # the token endpoint said no to the username or password
            raise PublishError(str(login_refused(error.error)), outcome=Outcome.ACCOUNT) from error
        except prawcore.TooManyRequests as error:
            retry_at = _after(reset_seconds(error.response.headers))
            raise PublishError(f"Reddit rate-limited the post to r/{self.subreddit} (HTTP 429) until "
                               f"{retry_at:%H:%M:%S} UTC, so nothing was posted; try again after that.",
                               outcome=Outcome.RATE_LIMITED, retry_at=retry_at) from error
        except prawcore.ResponseException as error:
            raise self._answered(error) from error
        except prawcore.RequestException as error:
            raise self._unanswered(error) from error
        except (PRAWException, prawcore.PrawcoreException, requests.RequestException, ValueError) as error:
            raise PublishError(f"The post to r/{self.subreddit} ended in an error nnbot does not know "
                               f"({type(error).__name__}), so it may have been posted; {self._look_for_it}.",
                               outcome=Outcome.UNKNOWN) from error
        assert submission is not None  # None only for image and video posts sent without websockets
        # The answer's id is all praw keeps of it; reading anything else of `submission` would fetch the post.
        posted = Posted(remote_id=submission.id, url=f"{self.reddit_url}/r/{self.subreddit}/comments/{submission.id}/")
        logger.info("Posted %s to r/%s as u/%s", posted.remote_id, self.subreddit, self.username)
        return posted

    def recent_posts(self, *, limit: int) -> list[RemotePost]:
        """The account's newest submissions, newest first (one request for up to 100)."""
        from praw.exceptions import PRAWException

        try:
            return [self._remote(s) for s in self.reddit.redditor(self.username).submissions.new(limit=limit)]
        except (PRAWException, prawcore.PrawcoreException, requests.RequestException, ValueError) as error:
            detail = _detail(error)
            raise PublishError(f"Could not read u/{self.username}'s recent posts on Reddit ({detail}); check the "
                               "network and the REDDIT_* settings, then try again.", outcome=Outcome.TRANSIENT) from error

    def close(self) -> None:
        self.http.close()

    # --- what a failure means

    def _refused(self, error: RedditAPIException) -> PublishError:
        """Reddit's own refusal, inside an OK answer: a RATELIMIT break, or a reason this post cannot be made."""
        for item in error.items:
            if item.error_type == "RATELIMIT":
                retry_at = _after(ratelimit_wait(item.message or ""))
                return PublishError(f"Reddit rate-limited u/{self.username}'s posts until {retry_at:%H:%M:%S} UTC "
                                    f"(\"{item.message}\"), so nothing was posted; try again after that.",
                                    outcome=Outcome.RATE_LIMITED, retry_at=retry_at)
        words = "; ".join(f"{(i.message or '').rstrip('.')} ({i.error_type})" for i in error.items)
        hint = "; ".join(HINTS[i.error_type] for i in error.items if i.error_type in HINTS)
        return PublishError(f"Reddit refused the post to r/{self.subreddit}: {words}{'; ' + hint if hint else ''}.",
                            outcome=Outcome.PERMANENT)

    def _answered(self, error: prawcore.ResponseException) -> PublishError:
        """An HTTP answer other than OK, from the token endpoint (nothing posted) or to the submit itself."""
        response = error.response
        status = response.status_code
        if TOKEN_PATH in (response.url or ""):
            if status in (400, 401, 403):  # the app's id or secret
                return PublishError(str(credentials_refused(status)), outcome=Outcome.ACCOUNT)
            return PublishError(f"Reddit's token endpoint answered HTTP {status}; nothing was posted, so try again "
                                "later.", outcome=Outcome.TRANSIENT)
        if isinstance(error, prawcore.BadJSON):
            return PublishError(f"Reddit's answer to the post to r/{self.subreddit} was not valid JSON, so it may "
                                f"have been posted; {self._look_for_it}.", outcome=Outcome.UNKNOWN)
        if status in MAYBE_HANDLED_STATUSES:
            return PublishError(f"Reddit answered the post to r/{self.subreddit} with HTTP {status}, so it may have "
                                f"been posted; {self._look_for_it}.", outcome=Outcome.UNKNOWN)
        if status == 401:  # prawcore dropped the token; the next request gets a new one
            return PublishError("Reddit did not accept the access token (HTTP 401); nothing was posted, so try "
                                "again.", outcome=Outcome.TRANSIENT)
        if status == 403:
            return PublishError(f"Reddit refused to let u/{self.username} post to r/{self.subreddit} (HTTP 403); check "
                                "that the account may post there and is a developer of the script app at "
                                f"{APPS_PAGE}.", outcome=Outcome.ACCOUNT)
        return PublishError(f"Reddit refused the post to r/{self.subreddit} (HTTP {status}); check the bot's "
                            "destination and [bot.reddit] options.", outcome=Outcome.PERMANENT)

    def _unanswered(self, error: prawcore.RequestException) -> PublishError:
        """No answer at all: harmless before the submit was sent, an open question after."""
        original = error.original_exception
        if TOKEN_PATH in _request_url(error):
            return PublishError(f"Could not get an access token from Reddit ({_detail(original)}); nothing was "
                                "posted, so check the network and try again.", outcome=Outcome.TRANSIENT)
        if certainly_not_sent(original):
            return PublishError(f"Could not connect to Reddit to post to r/{self.subreddit} ({_detail(original)}); "
                                "nothing was posted, so check the network and try again.", outcome=Outcome.TRANSIENT)
        return PublishError(f"The connection to Reddit failed after the post to r/{self.subreddit} was sent "
                            f"({_detail(original)}), so it may have been posted; {self._look_for_it}.",
                            outcome=Outcome.UNKNOWN)

    @property
    def _look_for_it(self) -> str:
        return f"look for it among u/{self.username}'s posts before posting it again"

    def _remote(self, submission: Submission) -> RemotePost:
        return RemotePost(remote_id=submission.id, url=self.reddit_url + submission.permalink, text=submission.title,
                          created_at=datetime.fromtimestamp(submission.created_utc, UTC),
                          destination=submission.subreddit.display_name)


def send_once(reddit: praw.Reddit) -> None:
    """Turn off prawcore's retries on every session `reddit` built: a re-sent submit could post twice.

    prawcore has no public switch for them; each `prawcore.Session` makes its retry state from
    `_retry_strategy_class` (prawcore 4), so that is replaced, and a prawcore without it is refused outright.
    """
    cores: list[prawcore.Session] = []
    for core in (reddit._core, reddit._authorized_core, reddit._read_only_core):
        if core is not None and all(core is not c for c in cores):
            cores.append(core)
    for core in cores:
        if not hasattr(core, "_retry_strategy_class"):
            raise RuntimeError(f"prawcore {prawcore.__version__} retries requests in a way nnbot cannot turn off, "
                               "so it cannot post safely; install prawcore 4.")
        core._retry_strategy_class = SendOnce


def ratelimit_wait(message: str) -> float:
    """Seconds a RATELIMIT message asks for: "Take a break for 9 minutes before trying again." -> 540."""
    parts = WAIT_PART.findall(message)
    if not parts:
        return DEFAULT_RATELIMIT_WAIT
    return sum(int(amount) * WAIT_UNITS[unit.lower()] for amount, unit in parts)


def _after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds + RATELIMIT_MARGIN)


def _request_url(error: prawcore.RequestException) -> str:
    """The URL of the request that failed: prawcore keeps (method, url) as the request's arguments."""
    args = error.request_args or ()
    url = args[1] if len(args) > 1 else (error.request_kwargs or {}).get("url", "")
    return str(url)


def _detail(error: BaseException) -> str:
    """A few words on why a request failed, for a one-sentence error."""
    if isinstance(error, prawcore.RequestException):
        error = error.original_exception
    if certainly_not_sent(error):
        return "could not connect"
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.Timeout):
        return "the connection dropped"
    if isinstance(error, requests.RequestException):
        return describe(error)  # "it timed out", "the answer was cut off"
    if isinstance(error, prawcore.ResponseException):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


def _is_set(value: str | SecretStr | None) -> bool:
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


def _listed(names: list[str]) -> str:
    """["A", "B", "C"] -> "A, B and C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
