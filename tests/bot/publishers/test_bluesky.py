"""The Bluesky publisher against the fake PDS through the real atproto SDK: a record at the candidate's key, every
failure classed, the open ones looked up at that key, and one login shared by every publisher and process."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.platforms import platform
from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost
from bot.publishers.bluesky import BlueskyPublisher, record_key
from tests.bot.publishers.helpers import closed_port
from tests.bot.service.helpers import python
from tests.fakes import bluesky as fake
from tests.fakes.bluesky import ACCOUNT, ACCOUNT_DID, CREATE_RECORD_PATH, GET_RECORD_PATH, FakeBluesky

SAMPLED = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)  # when the test's candidates were sampled
FLAG = "\U0001F1EB\U0001F1F7"  # 🇫🇷: one grapheme, two code points, eight UTF-8 bytes
FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # one grapheme, 25 UTF-8 bytes
POSTS = f"at://{ACCOUNT_DID}/app.bsky.feed.post/"
APP_PASSWORDS = "https://bsky.app/settings/app-passwords"
SESSION_FILE = f"sessions/bluesky-{ACCOUNT}.json"

Make = Callable[..., BlueskyPublisher]


def key(candidate_id: int = 1, text: str = "Hello from the bot", *, sampled: datetime = SAMPLED) -> PostKey:
    return PostKey("bb", candidate_id, text, sampled)


def url(rkey: str) -> str:
    return f"https://bsky.app/profile/{ACCOUNT}/post/{rkey}"


def publish_error(publisher: BlueskyPublisher, text: str = "Hello from the bot", **options: object) -> PublishError:
    with pytest.raises(PublishError) as caught:
        publisher.publish(text, key=key(text=text, **options))  # type: ignore[arg-type]
    return caught.value


@pytest.fixture
def make(bluesky_account: FakeBluesky) -> Iterator[Make]:
    """Build publishers (each as a new process would: its own SDK client) after the test set its environment."""
    made: list[BlueskyPublisher] = []

    def build(**options: object) -> BlueskyPublisher:
        made.append(BlueskyPublisher(load_settings(), **options))  # type: ignore[arg-type]
        return made[-1]

    yield build
    for publisher in made:
        publisher.close()


@pytest.fixture
def publisher(make: Make) -> BlueskyPublisher:
    return make()


def logged_in(make: Make) -> None:
    """Log the account in once (the session lands in BOT_HOME), so that the test's own publisher makes no login."""
    make().recent_posts(limit=1)


# --- posting -----------------------------------------------------------------------------------------------


def test_a_post_is_one_record_at_the_candidates_key_and_its_link_is_bsky_apps(bluesky_account: FakeBluesky,
                                                                             publisher: BlueskyPublisher) -> None:
    assert publisher.describe() == f"@{ACCOUNT} on Bluesky"
    posted = publisher.publish("Fish & chips <3 @alice.bsky.social", key=key())
    rkey = record_key(key())
    assert posted == Posted(remote_id=POSTS + rkey, url=url(rkey))
    (record,) = fake.FakeBluesky.posts(bluesky_account)
    assert record.uri == POSTS + rkey
    assert set(record.value) == {"$type", "text", "createdAt"}  # no facets (the mention stays text), no langs
    assert record.value["text"] == "Fish & chips <3 @alice.bsky.social"
    made = datetime.fromisoformat(record.value["createdAt"])  # when it was posted, not sampled: feeds sort by it
    assert made.tzinfo is not None and abs(datetime.now(UTC) - made) < timedelta(minutes=1)
    assert bluesky_account.server.paths() == [fake.CREATE_SESSION_PATH, CREATE_RECORD_PATH]  # no profile lookup
    (create,) = [r for r in bluesky_account.server.requests if r.path == CREATE_RECORD_PATH]
    assert (create.json()["repo"], create.json()["rkey"]) == (ACCOUNT_DID, rkey)


def test_the_record_key_is_a_tid_of_when_the_candidate_was_sampled_its_id_and_its_text() -> None:
    first = key(17, "Same text")
    micros = int(SAMPLED.replace(microsecond=123000).timestamp()) * 1_000_000 + 123_000 + 17  # ms, then the id
    assert record_key(first) == fake.tid(micros, int(first.digest, 16) & 0x3FF)  # the fake's own encoder
    assert record_key(first) == record_key(key(17, "Same text")) and len(record_key(first)) == 13
    assert record_key(key(17, "Edited text")) != record_key(first)  # an edited text is another post
    batch = {record_key(key(n, "Same text")) for n in range(1, 1001)}  # one refill: one created_at for all
    assert len(batch) == 1000
    later = record_key(key(5, "x", sampled=SAMPLED + timedelta(seconds=1)))
    assert sorted([later, record_key(key(900, "x"))]) == [record_key(key(900, "x")), later]  # TIDs sort by time


def test_the_same_candidate_sent_again_makes_no_second_post(bluesky_account: FakeBluesky,
                                                            publisher: BlueskyPublisher) -> None:
    first = publisher.publish("Only once", key=key(text="Only once"))
    again = publisher.publish("Only once", key=key(text="Only once"))  # the PDS: 500, nothing written; found at key
    assert again == first
    assert [r.value["text"] for r in bluesky_account.posts()] == ["Only once"]
    assert bluesky_account.create_requests() == 2 and bluesky_account.server.count("GET", GET_RECORD_PATH) == 1


def test_a_timeout_after_the_record_was_made_finds_it_at_its_key(bluesky_account: FakeBluesky, make: Make) -> None:
    logged_in(make)
    publisher = make(timeout=httpx.Timeout(2.0, connect=10.0))
    answer = threading.Event()
    bluesky_account.server.fail(CREATE_RECORD_PATH, hold=answer)
    try:
        posted = publisher.publish("Made, answered late", key=key(text="Made, answered late"))
    finally:
        answer.set()
    (record,) = bluesky_account.posts()
    assert posted == Posted(remote_id=record.uri, url=url(record.uri.rsplit("/", 1)[1]))
    assert bluesky_account.create_requests() == 1  # looked up, not sent again


def test_a_hang_up_after_the_record_was_made_finds_it(bluesky_account: FakeBluesky,
                                                      publisher: BlueskyPublisher) -> None:
    bluesky_account.server.fail(CREATE_RECORD_PATH, hang_up=True)
    posted = publisher.publish("Made, hung up", key=key(text="Made, hung up"))
    assert [(r.uri, r.value["text"]) for r in bluesky_account.posts()] == [(posted.remote_id, "Made, hung up")]
    assert bluesky_account.create_requests() == 1


@pytest.mark.parametrize("failure", [{"status": 503, "body": fake.INTERNAL_SERVER_ERROR},
                                     {"status": 502, "body": fake.INTERNAL_SERVER_ERROR},
                                     {"hang_up": True, "unhandled": True}], ids=["503", "502", "hang-up"])
def test_an_open_answer_with_nothing_at_the_key_is_transient_and_the_retry_posts_once(
        bluesky_account: FakeBluesky, publisher: BlueskyPublisher, failure: dict[str, object]) -> None:
    bluesky_account.server.fail(CREATE_RECORD_PATH, **failure)  # type: ignore[arg-type]
    error = publish_error(publisher)
    why = {503: "HTTP 503 InternalServerError", 502: "HTTP 502 InternalServerError"}.get(
        failure.get("status"), "the connection dropped before an answer")  # type: ignore[call-overload]
    assert error.outcome == Outcome.TRANSIENT
    assert str(error) == (f"Bluesky gave no clear answer to the post ({why}) and holds no post at its record key "
                          f"{record_key(key())}, so it was not posted; it is tried again later at the same key, where "
                          "Bluesky never makes a second post.")
    assert bluesky_account.posts() == []
    publisher.publish("Hello from the bot", key=key())
    assert len(bluesky_account.posts()) == 1 and bluesky_account.create_requests() == 2


def test_when_the_lookup_fails_too_the_post_is_unknown_and_recent_posts_list_it(bluesky_account: FakeBluesky,
                                                                               publisher: BlueskyPublisher) -> None:
    bluesky_account.server.fail(CREATE_RECORD_PATH, hang_up=True)
    bluesky_account.server.fail(GET_RECORD_PATH, status=503, body=fake.INTERNAL_SERVER_ERROR)
    error = publish_error(publisher, "Made, not confirmed")
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == ("Bluesky gave no clear answer to the post (the connection dropped before an answer), and "
                          "looking it up failed too (HTTP 503 InternalServerError), so it may have been posted; look "
                          f"for it among @{ACCOUNT}'s posts (`bot queue reconcile` does) before posting it again.")
    (found,) = publisher.recent_posts(limit=10)
    assert (found.remote_id, found.text) == (bluesky_account.posts()[0].uri, "Made, not confirmed")


def test_a_key_taken_by_another_post_is_refused_and_posts_nothing(bluesky_account: FakeBluesky,
                                                                   publisher: BlueskyPublisher) -> None:
    publisher.publish("The first text", key=key(text="The first text"))
    taken = bluesky_account.posts()[0]
    bluesky_account.record(taken.uri).value["text"] = "Changed behind our back"  # the key holds another text
    error = publish_error(publisher, "The first text")
    assert error.outcome == Outcome.PERMANENT
    rkey = record_key(key(text="The first text"))
    assert str(error) == (f"Bluesky holds another post at this post's record key {rkey} (@{ACCOUNT}'s {taken.uri}), "
                          "so this one was not posted; edit its text or reject it.")


def test_a_429_is_rate_limited_until_ratelimit_reset(bluesky_account: FakeBluesky,
                                                      publisher: BlueskyPublisher) -> None:
    limited = fake.rate_limited(reset_in=120)
    bluesky_account.server.fail(CREATE_RECORD_PATH, **limited)
    error = publish_error(publisher)
    retry_at = datetime.fromtimestamp(int(limited["headers"]["RateLimit-Reset"]) + 1, UTC)  # a second's margin
    assert error.outcome == Outcome.RATE_LIMITED and error.retry_at is not None
    assert abs(error.retry_at - retry_at) < timedelta(seconds=2)
    assert str(error) == f"Bluesky rate-limited the post until {error.retry_at:%H:%M:%S} UTC; try again after that."
    assert bluesky_account.posts() == [] and bluesky_account.create_requests() == 1


def test_a_refused_app_password_is_the_accounts_fault_and_names_the_fix_but_no_secret(
        bluesky_account: FakeBluesky, make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "wrong-pass-word-here")
    error = publish_error(make())
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == (f"Bluesky refused the login of {ACCOUNT} with its app password (Invalid identifier or "
                          f"password); check BLUESKY_HANDLE, and make a new app password at {APP_PASSWORDS} for "
                          "BLUESKY_APP_PASSWORD.")
    assert "wrong-pass-word-here" not in str(error)
    assert bluesky_account.create_requests() == 0


def test_too_many_logins_are_rate_limited(bluesky_account: FakeBluesky, make: Make) -> None:
    bluesky_account.server.fail(fake.CREATE_SESSION_PATH, **fake.rate_limited(reset_in=300, limit=30))
    error = publish_error(make())
    assert error.outcome == Outcome.RATE_LIMITED and error.retry_at is not None
    assert str(error).startswith(f"Bluesky rate-limited logins of {ACCOUNT} until ")
    assert bluesky_account.create_requests() == 0


@pytest.mark.parametrize(("unset", "named"), [(("BLUESKY_APP_PASSWORD",), "BLUESKY_APP_PASSWORD"),
                                              (("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"),
                                               "BLUESKY_HANDLE and BLUESKY_APP_PASSWORD")])
def test_missing_credentials_are_a_config_error_naming_them(bluesky_account: FakeBluesky,
                                                            monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...],
                                                            named: str) -> None:
    for variable in unset:
        monkeypatch.delenv(variable)
    with pytest.raises(ConfigError) as caught:
        BlueskyPublisher(load_settings())
    assert str(caught.value) == (f"Posting to Bluesky needs {named}: the account's handle, and an app password made "
                                 f"for nnbot at {APP_PASSWORDS} (Settings, Privacy and security, App passwords).")
    assert bluesky_account.server.requests == []


def test_a_bluesky_url_that_is_not_http_is_a_config_error(bluesky_account: FakeBluesky,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUESKY_URL", "bsky.social")
    with pytest.raises(ConfigError, match=r"^BLUESKY_URL 'bsky.social' is not an http\(s\) URL; set it to the "):
        BlueskyPublisher(load_settings())


def test_no_connection_to_log_in_is_transient(bluesky_account: FakeBluesky, make: Make,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUESKY_URL", f"http://127.0.0.1:{closed_port()}")
    error = publish_error(make())
    assert error.outcome == Outcome.TRANSIENT
    assert str(error) == (f"Logging in to Bluesky as {ACCOUNT} failed (no connection could be made); check the "
                          "network and BLUESKY_URL, and try again later.")


def test_no_connection_for_the_post_is_transient_and_nothing_is_looked_up(bluesky_account: FakeBluesky,
                                                                          make: Make, bot_home) -> None:  # type: ignore[no-untyped-def]
    logged_in(make)
    saved = bot_home / SESSION_FILE  # the session names the account's server (its DID document's): move it
    content = json.loads(saved.read_text())
    content["session"] = content["session"].replace(bluesky_account.url, f"http://127.0.0.1:{closed_port()}")
    saved.write_text(json.dumps(content))
    error = publish_error(make())
    assert error.outcome == Outcome.TRANSIENT
    assert str(error) == ("Could not connect to Bluesky (no connection could be made), so nothing was posted; check "
                          "the network and BLUESKY_URL.")
    assert bluesky_account.create_requests() == 0


# --- length, in graphemes ----------------------------------------------------------------------------------


def test_300_graphemes_pass_and_301_are_refused_before_sending(bluesky_account: FakeBluesky,
                                                              publisher: BlueskyPublisher) -> None:
    assert platform("bluesky").length(FLAG * 300) == 300  # what the filters count: the same
    publisher.publish(FLAG * 300, key=key(text=FLAG * 300))
    error = publish_error(publisher, FLAG * 301)
    assert (error.outcome, str(error)) == (Outcome.PERMANENT, "The post is 301 graphemes long, over Bluesky's 300; "
                                                              "shorten it or reject it.")
    assert bluesky_account.create_requests() == 1 and len(bluesky_account.posts()) == 1


def test_300_graphemes_over_3000_bytes_are_refused_in_the_pds_words(bluesky_account: FakeBluesky,
                                                                    publisher: BlueskyPublisher) -> None:
    error = publish_error(publisher, FAMILY * 300)  # 300 graphemes, 7,500 bytes
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == ("Bluesky refused the post (Invalid app.bsky.feed.post record: Record/text must not be "
                          "longer than 3000 characters); edit its text or reject it.")
    assert bluesky_account.posts() == []


# --- one login, kept and renewed ---------------------------------------------------------------------------


def test_many_posts_publishers_and_another_process_share_one_login(bluesky_account: FakeBluesky, make: Make,
                                                                  bot_home) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        make().publish(f"Post number {n}", key=key(n, f"Post number {n}"))
    other = python("-c", "from datetime import datetime, UTC\n"
                         "from bot.config import load_settings\n"
                         "from bot.publishers.base import PostKey\n"
                         "from bot.publishers.bluesky import BlueskyPublisher\n"
                         "p = BlueskyPublisher(load_settings())\n"
                         "print(p.publish('From another process', key=PostKey('bb', 9, 'From another process', "
                         "datetime.now(UTC))).url)\n")
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert out.startswith(f"https://bsky.app/profile/{ACCOUNT}/post/")
    assert bluesky_account.login_requests() == 1 and len(bluesky_account.posts()) == 4
    saved = bot_home / SESSION_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    content = json.loads(saved.read_text())
    assert (content["url"], content["identifier"]) == (bluesky_account.url, ACCOUNT)
    assert fake.APP_PASSWORD not in saved.read_text()


def test_publishers_starting_together_log_in_once(bluesky_account: FakeBluesky, make: Make) -> None:
    publishers = [make() for _ in range(4)]
    threads = [threading.Thread(target=p.publish, args=(f"Together {n}",), kwargs={"key": key(n, f"Together {n}")})
               for n, p in enumerate(publishers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert bluesky_account.login_requests() == 1 and len(bluesky_account.posts()) == 4


def test_an_access_token_refused_early_is_refreshed_and_the_post_sent_once(bluesky_account: FakeBluesky,
                                                                           make: Make, bot_home) -> None:  # type: ignore[no-untyped-def]
    logged_in(make)
    before = (bot_home / SESSION_FILE).read_text()
    bluesky_account.expire_access_tokens()
    make().publish("After a refresh", key=key(text="After a refresh"))
    assert (bluesky_account.login_requests(), bluesky_account.refresh_requests()) == (1, 1)
    assert bluesky_account.create_requests() == 2  # the first was refused unread (400 ExpiredToken)
    assert [r.value["text"] for r in bluesky_account.posts()] == ["After a refresh"]
    assert (bot_home / SESSION_FILE).read_text() != before  # the rotated refresh token is saved at once


def test_a_token_near_its_end_is_refreshed_before_the_post(bluesky_account: FakeBluesky, make: Make) -> None:
    bluesky_account.access_lifetime = 17 * 60  # under REFRESH_AHEAD (20 min), over the SDK's own 15: ours renews it
    logged_in(make)
    bluesky_account.server.requests.clear()
    make().publish("Fresh token", key=key(text="Fresh token"))
    assert bluesky_account.server.paths() == [fake.REFRESH_SESSION_PATH, CREATE_RECORD_PATH]


def test_a_revoked_session_means_exactly_one_new_login(bluesky_account: FakeBluesky, make: Make) -> None:
    logged_in(make)
    bluesky_account.revoke_refresh_tokens()  # a new app password, say: the old session is refused
    bluesky_account.expire_access_tokens()
    make().publish("After a new login", key=key(text="After a new login"))
    make().publish("And no other", key=key(2, "And no other"))
    assert bluesky_account.login_requests() == 2
    assert [r.value["text"] for r in bluesky_account.posts()] == ["After a new login", "And no other"]


def test_a_session_made_for_another_server_is_not_used(bluesky_account: FakeBluesky, make: Make,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    logged_in(make)
    monkeypatch.setenv("BLUESKY_URL", bluesky_account.url.replace("127.0.0.1", "localhost"))
    make().publish("Logged in anew", key=key(text="Logged in anew"))
    assert bluesky_account.login_requests() == 2


# --- the account's recent posts ----------------------------------------------------------------------------


def test_recent_posts_are_the_accounts_records_newest_key_first(bluesky_account: FakeBluesky,
                                                                 publisher: BlueskyPublisher) -> None:
    older = bluesky_account.post(ACCOUNT, "Posted by hand, long ago")
    first = publisher.publish("Sampled first", key=key(1, "Sampled first"))
    second = publisher.publish("Sampled second", key=key(2, "Sampled second"))
    posts = publisher.recent_posts(limit=10)
    assert [(p.remote_id, p.url, p.text) for p in posts] == [
        (second.remote_id, second.url, "Sampled second"), (first.remote_id, first.url, "Sampled first"),
        (older, url(older.rsplit("/", 1)[1]), "Posted by hand, long ago")]
    assert posts[2] == RemotePost(remote_id=older, url=posts[2].url, text="Posted by hand, long ago",
                                  created_at=datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC))
    assert posts[0].created_at is not None and abs(datetime.now(UTC) - posts[0].created_at) < timedelta(minutes=1)


def test_recent_posts_read_pages_until_the_limit(bluesky_account: FakeBluesky, publisher: BlueskyPublisher) -> None:
    for n in range(150):
        bluesky_account.post(ACCOUNT, f"Post {n}")
    posts = publisher.recent_posts(limit=120)
    assert [p.text for p in posts] == [f"Post {n}" for n in range(149, 29, -1)]
    pages = [r.query for r in bluesky_account.server.requests if r.path == fake.LIST_RECORDS_PATH]
    assert [(q["limit"], "cursor" in q) for q in pages] == [("100", False), ("20", True)]


def test_recent_posts_that_cannot_be_read_are_transient(bluesky_account: FakeBluesky,
                                                        publisher: BlueskyPublisher) -> None:
    bluesky_account.server.fail(fake.LIST_RECORDS_PATH, status=503, body=fake.INTERNAL_SERVER_ERROR)
    with pytest.raises(PublishError) as caught:
        publisher.recent_posts(limit=10)
    assert (caught.value.outcome, str(caught.value)) == (
        Outcome.TRANSIENT, f"Bluesky did not list @{ACCOUNT}'s recent posts (HTTP 503 InternalServerError); try "
                           "again later.")


def test_the_session_is_kept_in_bot_home_and_nowhere_else(bluesky_account: FakeBluesky, make: Make,
                                                          bot_home) -> None:  # type: ignore[no-untyped-def]
    logged_in(make)
    assert sorted(p.name for p in (bot_home / "sessions").iterdir()) == [f"bluesky-{ACCOUNT}.json",
                                                                         f"bluesky-{ACCOUNT}.lock"]
    assert not any(name.endswith(".tmp") for name in os.listdir(bot_home / "sessions"))
