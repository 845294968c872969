"""The X publisher against the fake X API through the real tweepy client: one POST per post, every failure classed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, Posted, PublishError, RemotePost
from bot.publishers.x import XPublisher
from tests.bot.publishers.helpers import closed_port, publish_error
from tests.fakes import x as fake
from tests.fakes.x import ACCOUNT, ACCOUNT_ID, POST_PATH, FakeX, tweet

TIMELINE = f"/2/users/{ACCOUNT_ID}/tweets"
SECRETS = (fake.API_KEY, fake.API_SECRET, fake.ACCESS_TOKEN, fake.ACCESS_TOKEN_SECRET)
KEYS_PAGE = 'the "Keys and tokens" page of your app in the X developer portal'
LOOK_FOR_IT = f"so it may have been posted; look for it among @{ACCOUNT}'s posts before posting it again."


@pytest.fixture
def publisher(x_account: FakeX) -> Iterator[XPublisher]:
    x = XPublisher(load_settings())
    yield x
    x.close()


# --- posting -----------------------------------------------------------------------------------------------


def test_a_post_arrives_with_its_text_and_the_id_and_url_are_xs(x_account: FakeX, publisher: XPublisher) -> None:
    assert publisher.describe() == "the X account of X_ACCESS_TOKEN"
    posted = publisher.publish("Fish & chips <3")
    (stored,) = x_account.posted
    assert stored["text"] == "Fish &amp; chips &lt;3"  # as X stores it
    assert posted == Posted(remote_id=stored["id"], url=f"https://x.com/{ACCOUNT}/status/{stored['id']}")
    assert publisher.describe() == f"@{ACCOUNT} on X"
    (post,) = [r for r in x_account.server.requests if r.path == POST_PATH]
    assert post.json() == {"text": "Fish & chips <3"}
    assert post.headers["authorization"].startswith("OAuth ")  # signed by the account's token; the fake checks it
    assert f'oauth_consumer_key="{fake.API_KEY}"' in post.headers["authorization"]


def test_each_publish_is_exactly_one_post_and_the_account_is_looked_up_once(x_account: FakeX,
                                                                             publisher: XPublisher) -> None:
    publisher.publish("First")
    publisher.publish("Second")
    assert x_account.server.paths() == ["/2/users/me", POST_PATH, POST_PATH]
    assert [p["text"] for p in x_account.account_posts] == ["Second", "First"]


def test_a_429_is_rate_limited_until_x_rate_limit_reset(x_account: FakeX, publisher: XPublisher) -> None:
    limited = fake.rate_limited(reset_in=120)
    x_account.server.fail(POST_PATH, **limited)
    error = publish_error(publisher)
    retry_at = datetime.fromtimestamp(int(limited["headers"]["x-rate-limit-reset"]) + 1, UTC)  # a second's margin
    assert (error.outcome, error.retry_at) == (Outcome.RATE_LIMITED, retry_at)
    assert str(error) == f"X rate-limited the post until {retry_at:%H:%M:%S} UTC; try again after that."
    assert (x_account.post_requests(), x_account.posted) == (1, [])


def test_a_429_that_does_not_say_until_when_waits_15_minutes(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail(POST_PATH, **fake.rate_limited(reset_in=None))
    before = datetime.now(UTC)
    error = publish_error(publisher)
    assert error.outcome == Outcome.RATE_LIMITED and error.retry_at is not None
    assert before + timedelta(minutes=15) <= error.retry_at <= datetime.now(UTC) + timedelta(minutes=15)


def test_a_duplicate_is_permanent_in_xs_words(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.add_user(ACCOUNT, [tweet(1, "Fish & chips")])
    error = publish_error(publisher, "Fish & chips")
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == ("X refused the post (You are not allowed to create a Tweet with duplicate content); edit "
                          "its text or reject it.")
    assert (x_account.post_requests(), x_account.posted) == (1, [])


def test_a_text_x_finds_too_long_is_permanent_in_xs_words(publisher: XPublisher) -> None:
    error = publish_error(publisher, "word " * 60)
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == ("X refused the post as invalid (Your Tweet text is too long. For more information on how "
                          "Twitter determines text length see https://github.com/twitter/twitter-text); edit its "
                          "text or reject it.")


@pytest.mark.parametrize(("variable", "wrong"), [("X_ACCESS_TOKEN", "1600000000000000000-wrongtoken"),
                                                 ("X_API_KEY", "wrong-api-key"),
                                                 ("X_API_SECRET", "wrong-api-secret"),  # a bad signature
                                                 ("X_ACCESS_TOKEN_SECRET", "wrong-token-secret")])
def test_bad_tokens_are_the_accounts_fault_and_name_the_fix_but_no_secret(x_account: FakeX,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          variable: str, wrong: str) -> None:
    monkeypatch.setenv(variable, wrong)
    error = publish_error(XPublisher(load_settings()))
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == ("X refused the app's keys or the account's access token (HTTP 401 Unauthorized); copy "
                          f"X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET again from {KEYS_PAGE}.")
    assert not any(secret in str(error) for secret in (*SECRETS, wrong))
    assert x_account.post_requests() == 0  # the account lookup failed first: certainly nothing posted


def test_an_app_without_write_permission_is_the_accounts_fault_and_says_what_to_change(
        x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail(POST_PATH, status=403, body=fake.NO_WRITE_PERMISSION)
    error = publish_error(publisher)
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == ("X refused the post for this app (HTTP 403: Your client app is not configured with the "
                          "appropriate oauth1 app permissions for this endpoint); in the X developer portal, give "
                          "the app (in a Project) Read and Write permission under User authentication settings, "
                          "then regenerate X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET.")


@pytest.mark.parametrize(("unset", "named"), [
    (("X_API_SECRET", "X_ACCESS_TOKEN_SECRET"), "X_API_SECRET and X_ACCESS_TOKEN_SECRET; copy them"),
    (("X_ACCESS_TOKEN",), "X_ACCESS_TOKEN; copy it"),
    (("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"),
     "X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET; copy them"),
])
def test_missing_credentials_are_a_config_error_naming_them(x_account: FakeX, monkeypatch: pytest.MonkeyPatch,
                                                            unset: tuple[str, ...], named: str) -> None:
    for variable in unset:
        monkeypatch.delenv(variable)
    with pytest.raises(ConfigError) as caught:
        XPublisher(load_settings())
    assert str(caught.value) == (f"Posting to X needs {named} from {KEYS_PAGE}, with an access token that has Read "
                                 "and Write permission.")
    assert x_account.server.requests == []


# --- failures that leave the outcome open, and those that certainly posted nothing ----------------------------


def test_a_503_to_the_post_is_unknown_and_not_retried(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail(POST_PATH, status=503, body=fake.SERVICE_UNAVAILABLE)
    error = publish_error(publisher)
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == f"X answered the post with HTTP 503 Service Unavailable, {LOOK_FOR_IT}"
    assert x_account.post_requests() == 1


def test_a_hang_up_after_the_post_was_made_is_unknown_and_the_post_is_found_later(x_account: FakeX,
                                                                                   publisher: XPublisher) -> None:
    x_account.server.fail(POST_PATH, hang_up=True)
    error = publish_error(publisher, "Made but never confirmed")
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == ("The connection to X failed after the post was sent (the connection dropped before an "
                          f"answer), {LOOK_FOR_IT}")
    assert x_account.post_requests() == 1
    (found,) = publisher.recent_posts(limit=5)
    assert (found.remote_id, found.text) == (x_account.posted[0]["id"], "Made but never confirmed")


def test_a_hang_up_before_anything_was_made_is_still_unknown(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail(POST_PATH, hang_up=True, unhandled=True)
    assert publish_error(publisher).outcome == Outcome.UNKNOWN  # the client cannot tell the two apart
    assert (x_account.post_requests(), publisher.recent_posts(limit=5)) == (1, [])


def test_an_answer_cut_off_is_unknown(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail(POST_PATH, drop=True)
    error = publish_error(publisher)
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == f"The connection to X failed after the post was sent (the answer was cut off), {LOOK_FOR_IT}"
    assert (x_account.post_requests(), len(x_account.posted)) == (1, 1)


def test_no_answer_in_time_is_unknown(x_account: FakeX) -> None:
    x_account.server.fail(POST_PATH, delay=1.0)
    publisher = XPublisher(load_settings(), timeout=(5.0, 0.2))
    error = publish_error(publisher)
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == f"The connection to X failed after the post was sent (no answer in time), {LOOK_FOR_IT}"
    assert (x_account.post_requests(), len(x_account.posted)) == (1, 1)


def test_a_failed_account_lookup_posts_nothing_and_is_transient(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail("/2/users/me", status=503, body=fake.SERVICE_UNAVAILABLE)
    error = publish_error(publisher)
    assert error.outcome == Outcome.TRANSIENT
    assert str(error) == ("X answered the lookup of X_ACCESS_TOKEN's account with HTTP 503 Service Unavailable; "
                          "try again later.")
    assert x_account.post_requests() == 0


@pytest.mark.parametrize(("url", "why"), [(f"http://127.0.0.1:{closed_port()}", "the connection was refused"),
                                          ("http://nnbot-test.invalid", "its host name was not found")])
def test_no_connection_is_transient(x_account: FakeX, monkeypatch: pytest.MonkeyPatch, url: str, why: str) -> None:
    monkeypatch.setenv("X_API_URL", url)
    error = publish_error(XPublisher(load_settings()))
    assert error.outcome == Outcome.TRANSIENT
    assert str(error) == f"Could not connect to X ({why}), so nothing was posted; check the network and X_API_URL."


# --- the account's recent posts ----------------------------------------------------------------------------


def test_recent_posts_lists_the_accounts_posts_newest_first(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.add_user(ACCOUNT, [tweet(2, "Older & wiser"), tweet(1, "Oldest")])
    first, second = publisher.publish("Newer"), publisher.publish("Newest")
    posts = publisher.recent_posts(limit=3)
    assert [(p.remote_id, p.url, p.text) for p in posts] == [
        (second.remote_id, second.url, "Newest"), (first.remote_id, first.url, "Newer"),
        ("1700000000000000002", f"https://x.com/{ACCOUNT}/status/1700000000000000002", "Older & wiser")]
    assert posts[2] == RemotePost(remote_id="1700000000000000002", url=posts[2].url, text="Older & wiser",
                                  created_at=datetime(2023, 11, 15, 0, 13, 20, tzinfo=UTC), destination=None)
    assert posts[0].created_at is not None and posts[0].created_at.tzinfo == UTC
    assert x_account.timeline_requests() == [{"max_results": "5", "tweet.fields": "created_at,note_tweet"}]


def test_recent_posts_reads_pages_until_the_limit(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.add_user(ACCOUNT, [tweet(n, f"Post {n}") for n in range(200, 0, -1)])
    posts = publisher.recent_posts(limit=150)
    assert [p.text for p in posts] == [f"Post {n}" for n in range(200, 50, -1)]
    assert [q["max_results"] for q in x_account.timeline_requests()] == ["100", "50"]


def test_recent_posts_that_cannot_be_read_are_transient(x_account: FakeX, publisher: XPublisher) -> None:
    x_account.server.fail(TIMELINE, **fake.rate_limited(reset_in=60))
    with pytest.raises(PublishError) as caught:
        publisher.recent_posts(limit=10)
    assert (caught.value.outcome, caught.value.retry_at) == (Outcome.TRANSIENT, None)
    assert str(caught.value).startswith(f"X rate-limited the list of @{ACCOUNT}'s recent posts until ")


def test_an_app_that_may_not_read_timelines_cannot_list_recent_posts(x_account: FakeX,
                                                                      publisher: XPublisher) -> None:
    x_account.server.fail(TIMELINE, status=403, body=fake.CLIENT_NOT_ENROLLED)
    with pytest.raises(PublishError) as caught:
        publisher.recent_posts(limit=10)
    assert caught.value.outcome == Outcome.TRANSIENT
    assert str(caught.value) == (f"X refused the list of @{ACCOUNT}'s recent posts for this app (HTTP 403: "
                                 f"{fake.CLIENT_NOT_ENROLLED['detail'].rstrip('.')}); check the app's API plan and "
                                 "permissions in the X developer portal.")
