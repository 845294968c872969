"""The Reddit publisher against the fake Reddit through the real praw: one POST per post, every failure classed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bot.config import load_settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, Posted, PublishError, RemotePost
from bot.publishers.reddit import RATELIMIT_MARGIN, RedditPublisher
from bot.publishers.sending import certainly_not_sent
from tests.bot.publishers.helpers import closed_port, publish_error
from tests.fakes import reddit as fake
from tests.fakes.reddit import SUBMIT_PATH, FakeReddit

TOKEN_PATH = "/api/v1/access_token"
SECRETS = (fake.CLIENT_SECRET, fake.PASSWORD)
APPS_PAGE = "https://www.reddit.com/prefs/apps"
LOOK_FOR_IT = "so it may have been posted; look for it among u/alice's posts before posting it again."
NINE_MINUTES = "Looks like you've been doing that a lot. Take a break for 9 minutes before trying again."

Make = Callable[..., RedditPublisher]


@pytest.fixture
def make(reddit_account: FakeReddit) -> Iterator[Make]:
    """Build publishers for r/test (which takes posts) after the test has set the environment it wants."""
    reddit_account.allow_posts("test")
    made: list[RedditPublisher] = []

    def build(subreddit: str = "r/test", **options: str | None) -> RedditPublisher:
        made.append(RedditPublisher(load_settings(), subreddit=subreddit, **options))
        return made[-1]

    yield build
    for publisher in made:
        publisher.close()


def submits(reddit: FakeReddit) -> int:
    return reddit.oauth.count("POST", SUBMIT_PATH)


# --- posting -----------------------------------------------------------------------------------------------


def test_a_post_arrives_with_its_title_body_flair_and_subreddit(reddit_account: FakeReddit, make: Make) -> None:
    publisher = make("/r/test/", body="I am a bot.", flair_id="flair-1", flair_text="Bot")
    assert publisher.describe() == "r/test as u/alice"
    posted = publisher.publish("Show HN: a bot that writes titles")
    (stored,) = reddit_account.created
    assert posted == Posted(remote_id=stored["id"],
                            url=f"{reddit_account.www.url}/r/test/comments/{stored['id']}/")
    assert stored["permalink"] == f"/r/test/comments/{stored['id']}/show_hn_a_bot_that_writes_titles/"
    (request,) = [r for r in reddit_account.oauth.requests if r.path == SUBMIT_PATH]
    assert {k: request.form[k] for k in ("sr", "kind", "title", "text", "flair_id", "flair_text", "api_type")} == {
        "sr": "test", "kind": "self", "title": "Show HN: a bot that writes titles", "text": "I am a bot.",
        "flair_id": "flair-1", "flair_text": "Bot", "api_type": "json"}
    (token,) = [r for r in reddit_account.www.requests if r.path == TOKEN_PATH]
    assert token.form["grant_type"] == "password"
    assert reddit_account.oauth.requests[0].headers["user-agent"].startswith(
        "python:fake-client-id:0.1.0 (by /u/alice) PRAW/")


def test_without_a_body_or_flair_the_post_is_title_only(reddit_account: FakeReddit, make: Make) -> None:
    make("test").publish("Just a title")
    (request,) = reddit_account.oauth.requests
    assert "text=" in request.body.split("&")  # an empty body (the form parser leaves out blank values)
    assert "flair_id" not in request.form and "flair_text" not in request.form


def test_each_publish_is_exactly_one_post_and_the_token_is_fetched_once(reddit_account: FakeReddit,
                                                                        make: Make) -> None:
    publisher = make()
    ids = [publisher.publish(f"Title {n}").remote_id for n in range(3)]
    assert ids == [p["id"] for p in reddit_account.created] and len(set(ids)) == 3
    assert reddit_account.oauth.paths() == [SUBMIT_PATH] * 3
    assert reddit_account.www.count("POST", TOKEN_PATH) == 1


@pytest.mark.parametrize("subreddit", ["r/test", "/r/test/", "test"])
def test_the_subreddit_may_be_named_with_or_without_r(make: Make, subreddit: str) -> None:
    assert make(subreddit).describe() == "r/test as u/alice"


def test_a_name_that_cannot_be_a_subreddit_is_a_config_error(make: Make) -> None:
    with pytest.raises(ConfigError) as caught:
        make("r/no such")
    assert str(caught.value) == ("'r/no such' is not a subreddit name (2-21 letters, digits or _, like r/AskReddit); "
                                 "check the spelling.")


@pytest.mark.parametrize(("unset", "message"), [
    (("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USERNAME", "REDDIT_PASSWORD"),
     "REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USERNAME and REDDIT_PASSWORD are not set; set them"),
    (("REDDIT_PASSWORD",), "REDDIT_PASSWORD is not set; set it"),
    (("REDDIT_USERNAME", "REDDIT_PASSWORD"), "REDDIT_USERNAME and REDDIT_PASSWORD are not set; set them"),
])
def test_missing_credentials_are_named(make: Make, monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...],
                                       message: str) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError) as caught:
        make()
    assert str(caught.value) == (f"Posting to Reddit needs a script app and its developer's login, but {message} "
                                 "as the README's \"Reddit with a script app\" shows.")


# --- Reddit's refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("wait", "seconds"), [("9 minutes", 540), ("1 minute", 60), ("30 seconds", 30),
                                               ("500 milliseconds", 0.5)])
def test_a_ratelimit_is_rate_limited_until_the_break_ends(reddit_account: FakeReddit, make: Make, wait: str,
                                                          seconds: float) -> None:
    reddit_account.rate_limit_posts(wait=wait)
    publisher = make()
    before = datetime.now(UTC)
    error = publish_error(publisher)
    after = datetime.now(UTC)
    assert error.outcome == Outcome.RATE_LIMITED
    assert error.retry_at is not None
    assert before + timedelta(seconds=seconds + RATELIMIT_MARGIN) <= error.retry_at
    assert error.retry_at <= after + timedelta(seconds=seconds + RATELIMIT_MARGIN)
    assert str(error) == (f"Reddit rate-limited u/alice's posts until {error.retry_at:%H:%M:%S} UTC (\"Looks like "
                          f"you've been doing that a lot. Take a break for {wait} before trying again.\"), so "
                          "nothing was posted; try again after that.")
    assert submits(reddit_account) == 1  # praw did not sleep and re-post, not even after a sub-second break
    assert reddit_account.created == []
    assert publisher.publish("After the break").remote_id == reddit_account.created[0]["id"]


@pytest.mark.parametrize(("headers", "seconds"), [({"x-ratelimit-reset": "120"}, 120), ({"retry-after": "42"}, 42)])
def test_a_429_is_rate_limited_until_reddits_reset(reddit_account: FakeReddit, make: Make, headers: dict[str, str],
                                                   seconds: float) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, status=429, headers=headers,
                              body={"message": "Too Many Requests", "error": 429})
    before = datetime.now(UTC)
    error = publish_error(make())
    assert error.outcome == Outcome.RATE_LIMITED
    assert error.retry_at is not None
    assert timedelta(0) <= error.retry_at - before - timedelta(seconds=seconds + RATELIMIT_MARGIN) < timedelta(
        seconds=5)
    assert str(error) == (f"Reddit rate-limited the post to r/test (HTTP 429) until {error.retry_at:%H:%M:%S} UTC, "
                          "so nothing was posted; try again after that.")
    assert submits(reddit_account) == 1


def test_an_unknown_subreddit_is_permanent_in_reddits_words(reddit_account: FakeReddit, make: Make) -> None:
    error = publish_error(make("r/nosuchplace"))
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == ("Reddit refused the post to r/nosuchplace: that community doesn't exist "
                          "(SUBREDDIT_NOEXIST); check the bot's destination.")
    assert submits(reddit_account) == 1


def test_a_subreddit_that_requires_flair_says_where_to_set_it(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.require_flair("test", "flair-1")
    error = publish_error(make())
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == ("Reddit refused the post to r/test: Your post must contain post flair "
                          "(SUBMIT_VALIDATION_FLAIR_REQUIRED); set flair_id in the bot's [bot.reddit] table.")
    assert make(flair_id="flair-1").publish("With flair").remote_id == reddit_account.created[0]["id"]


def test_a_title_too_long_is_permanent(make: Make) -> None:
    error = publish_error(make(), "x" * 301)
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == ("Reddit refused the post to r/test: this is too long (max: 300) (TOO_LONG); shorten the "
                          "text or lower the bot's sampling.max_tokens.")


def test_a_403_to_the_post_is_the_accounts_fault(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, status=403, body={"message": "Forbidden", "error": 403})
    error = publish_error(make())
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == ("Reddit refused to let u/alice post to r/test (HTTP 403); check that the account may post "
                          f"there and is a developer of the script app at {APPS_PAGE}.")
    assert submits(reddit_account) == 1


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("REDDIT_PASSWORD", "wrong horse",
     (f"Reddit refused the login (invalid_grant); check REDDIT_USERNAME and REDDIT_PASSWORD, and that the account is "
     f"a developer of the script app at {APPS_PAGE}.")),
    ("REDDIT_CLIENT_SECRET", "wrong-secret",
     (f"Reddit refused REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (HTTP 401); copy both again from your script app at "
     f"{APPS_PAGE}.")),
])
def test_refused_credentials_are_the_accounts_fault_and_never_shown(reddit_account: FakeReddit, make: Make,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture, variable: str,
                                                           value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    caplog.set_level(logging.DEBUG)
    publisher = make()
    error = publish_error(publisher)
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == message
    assert submits(reddit_account) == 0
    for secret in (*SECRETS, value):
        assert secret not in str(error) and secret not in repr(error) and secret not in caplog.text
        assert secret not in publisher.describe()


def test_an_access_token_reddit_no_longer_takes_is_transient_and_the_next_post_gets_a_new_one(
        reddit_account: FakeReddit, make: Make) -> None:
    publisher = make()
    publisher.publish("First")
    reddit_account.tokens.clear()  # revoked, or expired early
    error = publish_error(publisher)
    assert (error.outcome, str(error)) == (
        Outcome.TRANSIENT, "Reddit did not accept the access token (HTTP 401); nothing was posted, so try again.")
    publisher.publish("Third")
    assert [p["title"] for p in reddit_account.created] == ["First", "Third"]
    assert submits(reddit_account) == 3 and reddit_account.www.count("POST", TOKEN_PATH) == 2


# --- at most once: no answer, or a bad one -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_to_the_post_is_unknown_and_never_retried(reddit_account: FakeReddit, make: Make,
                                                                 status: int) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, status=status, times=5)
    error = publish_error(make())
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == f"Reddit answered the post to r/test with HTTP {status}, {LOOK_FOR_IT}"
    assert submits(reddit_account) == 1  # prawcore would have sent it three times


def test_a_connection_dropped_after_the_post_was_made_is_unknown(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, hang_up=True, times=5)
    publisher = make()
    error = publish_error(publisher, "Made, but nobody heard")
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == (f"The connection to Reddit failed after the post to r/test was sent (the connection "
                          f"dropped), {LOOK_FOR_IT}")
    assert submits(reddit_account) == 1
    (made,) = reddit_account.created
    (found,) = publisher.recent_posts(limit=10)  # what reconciling will find
    assert (found.remote_id, found.text) == (made["id"], "Made, but nobody heard")


def test_a_connection_dropped_before_the_post_was_made_is_still_unknown(reddit_account: FakeReddit,
                                                                        make: Make) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, hang_up=True, unhandled=True, times=5)
    error = publish_error(make())
    assert error.outcome == Outcome.UNKNOWN  # from outside, the two cannot be told apart
    assert submits(reddit_account) == 1
    assert reddit_account.created == []


def test_an_answer_cut_off_is_unknown(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, drop=True, times=5)
    error = publish_error(make())
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == (f"The connection to Reddit failed after the post to r/test was sent (the answer was cut "
                          f"off), {LOOK_FOR_IT}")
    assert submits(reddit_account) == 1
    assert len(reddit_account.created) == 1


def test_an_answer_that_is_not_json_is_unknown(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.oauth.fail(SUBMIT_PATH, truncate=True)
    error = publish_error(make())
    assert (error.outcome, str(error)) == (
        Outcome.UNKNOWN, f"Reddit's answer to the post to r/test was not valid JSON, {LOOK_FOR_IT}")
    assert submits(reddit_account) == 1


def test_a_refused_connection_is_transient(reddit_account: FakeReddit, make: Make,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_OAUTH_URL", f"http://127.0.0.1:{closed_port()}")
    error = publish_error(make())
    assert (error.outcome, str(error)) == (
        Outcome.TRANSIENT, ("Could not connect to Reddit to post to r/test (could not connect); nothing was posted, "
                           "so check the network and try again."))
    assert reddit_account.www.count("POST", TOKEN_PATH) == 1  # the token came; the post never left
    assert reddit_account.created == []


def test_a_token_endpoint_that_cannot_be_reached_is_transient(reddit_account: FakeReddit, make: Make,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_URL", f"http://127.0.0.1:{closed_port()}")
    error = publish_error(make())
    assert (error.outcome, str(error)) == (
        Outcome.TRANSIENT, ("Could not get an access token from Reddit (could not connect); nothing was posted, so "
                           "check the network and try again."))
    assert reddit_account.oauth.requests == []


@pytest.mark.parametrize("failure", [{"status": 503}, {"hang_up": True}])
def test_any_failure_while_getting_the_token_is_transient(reddit_account: FakeReddit, make: Make,
                                                          failure: dict[str, object]) -> None:
    reddit_account.www.fail(TOKEN_PATH, **failure)  # type: ignore[arg-type]
    error = publish_error(make())
    assert error.outcome == Outcome.TRANSIENT
    assert reddit_account.oauth.requests == []
    assert reddit_account.www.count("POST", TOKEN_PATH) == 1


def test_only_a_failure_to_connect_counts_as_certainly_not_sent(reddit_account: FakeReddit) -> None:
    reddit_account.www.fail("/slow", delay=0.5)
    with pytest.raises(requests.ReadTimeout) as read_timeout:
        requests.post(f"{reddit_account.www.url}/slow", data={"title": "x"}, timeout=0.1)
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(f"http://127.0.0.1:{closed_port()}/api/submit", timeout=1)
    assert not certainly_not_sent(read_timeout.value)
    assert certainly_not_sent(refused.value)
    assert not certainly_not_sent(requests.exceptions.ChunkedEncodingError("cut off"))


# --- the account's recent posts ----------------------------------------------------------------------------


def test_recent_posts_lists_what_was_posted_newest_first(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.allow_posts("Other")
    publisher = make()
    before = datetime.now(UTC).replace(microsecond=0)
    for title in ("One", "Two", "Three"):
        publisher.publish(title)
    make("r/Other").publish("Elsewhere")
    recent = publisher.recent_posts(limit=3)
    ids = [p["id"] for p in reddit_account.created]
    assert [(p.remote_id, p.text, p.destination) for p in recent] == [
        (ids[3], "Elsewhere", "Other"), (ids[2], "Three", "test"), (ids[1], "Two", "test")]
    assert recent[1] == RemotePost(remote_id=ids[2], url=f"{reddit_account.www.url}/r/test/comments/{ids[2]}/three/",
                                   text="Three", created_at=recent[1].created_at, destination="test")
    assert all(p.created_at is not None and p.created_at.tzinfo == UTC and p.created_at >= before for p in recent)
    (listing,) = [r for r in reddit_account.oauth.requests if r.path == "/user/alice/submitted"]
    assert listing.query == {"sort": "new", "limit": "3", "raw_json": "1"}


def test_recent_posts_that_cannot_be_read_are_transient(reddit_account: FakeReddit, make: Make) -> None:
    reddit_account.oauth.fail("/user/alice/submitted", status=503)
    with pytest.raises(PublishError) as caught:
        make().recent_posts(limit=10)
    assert (caught.value.outcome, str(caught.value)) == (
        Outcome.TRANSIENT, ("Could not read u/alice's recent posts on Reddit (HTTP 503); check the network and the "
                           "REDDIT_* settings, then try again."))
