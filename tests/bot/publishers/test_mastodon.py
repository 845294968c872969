"""The Mastodon publisher against the fake Mastodon through the real Mastodon.py: one POST per post, an
Idempotency-Key per candidate, the instance's length limit, every failure classed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost
from bot.publishers.mastodon import MastodonPublisher
from tests.bot.publishers.helpers import closed_port
from tests.fakes import mastodon as fake_api
from tests.fakes.mastodon import (
    ACCOUNT,
    ACCOUNT_ID,
    INSTANCE_V1_PATH,
    INSTANCE_V2_PATH,
    STATUSES_PATH,
    VERIFY_PATH,
    FakeMastodon,
    rate_limited,
)

SHORT = (5.0, 0.3)  # seconds to connect and to answer: an answer held longer is a timeout after the post was sent
NEW_TOKEN = ("make a new application under the instance's Preferences, Development with the scopes write:statuses "
             "and read, and set MASTODON_ACCESS_TOKEN to its access token")
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def key(text: str, candidate_id: int = 1, bot: str = "mb") -> PostKey:
    return PostKey(bot=bot, candidate_id=candidate_id, text=text, created_at=CREATED)


def publish(publisher: MastodonPublisher, text: str = "Hello from the bot", candidate_id: int = 1) -> Posted:
    return publisher.publish(text, key=key(text, candidate_id))


def publish_error(publisher: MastodonPublisher, text: str = "Hello from the bot",
                  candidate_id: int = 1) -> PublishError:
    with pytest.raises(PublishError) as caught:
        publish(publisher, text, candidate_id)
    return caught.value


def look_for_it(fake: FakeMastodon) -> str:
    return f"so it may have been posted; look for it among @{ACCOUNT}@{fake.domain}'s statuses before posting it again."


@pytest.fixture
def publisher(mastodon_account: FakeMastodon) -> Iterator[MastodonPublisher]:
    mastodon = MastodonPublisher(load_settings(), timeout=SHORT)
    yield mastodon
    mastodon.close()


# --- posting -----------------------------------------------------------------------------------------------


def test_a_post_arrives_with_its_text_and_key_and_the_id_and_url_are_mastodons(mastodon_account: FakeMastodon,
                                                                               publisher: MastodonPublisher) -> None:
    assert publisher.describe() == f"the Mastodon account of MASTODON_ACCESS_TOKEN on {mastodon_account.domain}"
    posted = publisher.publish("Fish & chips <3", key=key("Fish & chips <3", candidate_id=7))
    (stored,) = mastodon_account.posted
    assert posted == Posted(remote_id=stored["id"], url=f"{mastodon_account.url}/@{ACCOUNT}/{stored['id']}")
    assert publisher.describe() == f"@{ACCOUNT}@{mastodon_account.domain} on Mastodon"
    (post,) = mastodon_account.post_requests()
    # unlisted, the bot's default: on its profile and its followers' timelines, as instances ask of bots
    assert post.form == {"status": "Fish & chips <3", "visibility": "unlisted", "sensitive": "0"}
    assert post.headers["idempotency-key"] == key("Fish & chips <3", candidate_id=7).digest
    assert post.headers["authorization"] == f"Bearer {fake_api.TOKEN}"
    assert post.headers["user-agent"].startswith("nnbot/")
    assert mastodon_account.status(stored["id"])["content"] == "<p>Fish &amp; chips &lt;3</p>"


def test_the_bots_visibility_content_warning_and_language_go_with_every_status(
        mastodon_account: FakeMastodon) -> None:
    publisher = MastodonPublisher(load_settings(), visibility="public", spoiler_text="Written by a neural network",
                                  language="de")
    publish(publisher, "Guten Morgen")
    (post,) = mastodon_account.post_requests()
    assert post.form == {"status": "Guten Morgen", "visibility": "public", "sensitive": "0",
                         "spoiler_text": "Written by a neural network", "language": "de"}
    (stored,) = mastodon_account.posted
    assert (stored["visibility"], stored["spoiler_text"], stored["language"]) == (
        "public", "Written by a neural network", "de")


def test_the_same_candidate_sends_the_same_key_and_gets_the_first_status_back(mastodon_account: FakeMastodon,
                                                                              publisher: MastodonPublisher) -> None:
    first = publish(publisher, "Once only", candidate_id=3)
    again = publish(publisher, "Once only", candidate_id=3)
    other = publish(publisher, "Once only", candidate_id=4)  # another candidate with the same text is another post
    edited = publish(publisher, "Once only, edited", candidate_id=3)  # an edited text is another post
    assert again == first and len({first.remote_id, other.remote_id, edited.remote_id}) == 3
    keys = mastodon_account.idempotency_keys()
    assert keys[0] == keys[1] != keys[2] != keys[3] and len(keys[0] or "") == 32
    assert [s["text"] for s in mastodon_account.posted] == ["Once only", "Once only", "Once only, edited"]


def test_each_publish_is_one_post_and_the_instance_and_account_are_read_once(mastodon_account: FakeMastodon,
                                                                             publisher: MastodonPublisher) -> None:
    publish(publisher, "First", candidate_id=1)
    publish(publisher, "Second", candidate_id=2)
    assert mastodon_account.server.paths() == [INSTANCE_V2_PATH, VERIFY_PATH, STATUSES_PATH, STATUSES_PATH]


def test_an_instance_before_mastodon_4_gives_its_limit_through_v1(mastodon_account: FakeMastodon,
                                                                   publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(INSTANCE_V2_PATH, status=404, body=fake_api.ROUTE_NOT_FOUND)
    mastodon_account.max_characters = 50
    assert publish_error(publisher, "x" * 51).outcome == Outcome.PERMANENT
    assert mastodon_account.server.paths() == [INSTANCE_V2_PATH, INSTANCE_V1_PATH, VERIFY_PATH]


# --- the instance's length limit, checked before anything is sent -----------------------------------------


def test_exactly_the_limit_passes_and_one_more_is_refused_before_sending(mastodon_account: FakeMastodon,
                                                                         publisher: MastodonPublisher) -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, five code points
    publish(publisher, family * 2 + "a" * 498, candidate_id=1)  # 500 as Mastodon counts
    error = publish_error(publisher, family + "a" * 500, candidate_id=2)
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == (f"The post is 501 characters long as {mastodon_account.domain} counts them, more than its "
                          "limit of 500; shorten it or reject it.")
    assert len(mastodon_account.post_requests()) == 1 and len(mastodon_account.posted) == 1


def test_a_link_counts_23_whatever_its_length(mastodon_account: FakeMastodon, publisher: MastodonPublisher) -> None:
    url = "https://example.com/" + "x" * 80
    publish(publisher, "a" * 476 + " " + url, candidate_id=1)  # 476 + 1 + 23 = 500
    assert "501 characters" in str(publish_error(publisher, "a" * 477 + " " + url, candidate_id=2))
    assert len(mastodon_account.post_requests()) == 1


def test_a_smaller_instance_limit_is_honoured_and_the_content_warning_counts(mastodon_account: FakeMastodon) -> None:
    mastodon_account.max_characters = 100
    plain = MastodonPublisher(load_settings())
    publish(plain, "a" * 100)
    assert str(publish_error(plain, "a" * 101, candidate_id=2)) == (
        f"The post is 101 characters long as {mastodon_account.domain} counts them, more than its limit of 100; "
        "shorten it or reject it.")
    warned = MastodonPublisher(load_settings(), spoiler_text="CW")
    error = publish_error(warned, "a" * 99, candidate_id=3)
    assert str(error) == (f"The post is 101 characters long with its content warning as {mastodon_account.domain} "
                          "counts them, more than its limit of 100; shorten it or reject it.")
    assert len(mastodon_account.post_requests()) == 1


def test_a_text_the_instance_refuses_is_permanent_in_its_words(mastodon_account: FakeMastodon,
                                                               publisher: MastodonPublisher) -> None:
    error = publish_error(publisher, "   ")
    assert error.outcome == Outcome.PERMANENT
    assert str(error) == (f"{mastodon_account.domain} refused the post (HTTP 422: Validation failed: Text can't be "
                          "blank); edit its text or reject it.")


# --- rate limits ---------------------------------------------------------------------------------------------


def test_a_429_is_rate_limited_until_x_ratelimit_reset_and_nothing_is_sent_again(
        mastodon_account: FakeMastodon, publisher: MastodonPublisher) -> None:
    limited = rate_limited(reset_in=120)
    mastodon_account.server.fail(STATUSES_PATH, **limited)
    error = publish_error(publisher)
    reset = datetime.fromisoformat(limited["headers"]["X-RateLimit-Reset"])
    assert (error.outcome, error.retry_at) == (Outcome.RATE_LIMITED, reset + timedelta(seconds=1))
    assert str(error) == (f"{mastodon_account.domain} rate-limited the post until {error.retry_at:%H:%M:%S} UTC; try "
                          "again after that.")
    assert (len(mastodon_account.post_requests()), mastodon_account.posted) == (1, [])  # Mastodon.py sent it once


def test_a_429_that_does_not_say_until_when_waits_five_minutes(mastodon_account: FakeMastodon,
                                                               publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(STATUSES_PATH, **rate_limited(reset_in=None))
    before = datetime.now(UTC)
    error = publish_error(publisher)
    assert error.outcome == Outcome.RATE_LIMITED and error.retry_at is not None
    assert before + timedelta(minutes=5) <= error.retry_at <= datetime.now(UTC) + timedelta(minutes=5)
    assert len(mastodon_account.post_requests()) == 1


def test_past_the_accounts_status_limit_posting_waits_for_its_window(mastodon_account: FakeMastodon,
                                                                      publisher: MastodonPublisher) -> None:
    mastodon_account.statuses_limit = 1  # Mastodon's 300 statuses per 3 hours, lowered
    publish(publisher, "The one allowed", candidate_id=1)
    error = publish_error(publisher, "One too many", candidate_id=2)
    assert error.outcome == Outcome.RATE_LIMITED and error.retry_at is not None
    assert datetime.now(UTC) < error.retry_at <= datetime.now(UTC) + timedelta(hours=3, seconds=1)
    assert len(mastodon_account.posted) == 1


def test_an_answer_whose_rate_limit_header_mastodon_py_cannot_read_leaves_the_post_open(
        mastodon_account: FakeMastodon, publisher: MastodonPublisher) -> None:
    status = {"id": "1", "url": f"{mastodon_account.url}/@{ACCOUNT}/1"}
    mastodon_account.server.fail(STATUSES_PATH, status=200, body=status, headers={"X-RateLimit-Reset": "soon"})
    error = publish_error(publisher)  # Mastodon.py raises its rate-limit error for an answer it could not time
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == (f"{mastodon_account.domain} answered the post with rate-limit headers Mastodon.py could not "
                          f"read, {look_for_it(mastodon_account)}")


# --- the token and the settings ----------------------------------------------------------------------------


def test_a_wrong_token_is_the_accounts_fault_names_the_fix_and_posts_nothing(mastodon_account: FakeMastodon,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", "not-the-token")
    error = publish_error(MastodonPublisher(load_settings()))
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == (f"{mastodon_account.domain} refused MASTODON_ACCESS_TOKEN (HTTP 401: The access token is "
                          f"invalid); {NEW_TOKEN}.")
    assert "not-the-token" not in str(error) and mastodon_account.post_requests() == []


def test_a_token_revoked_after_the_lookup_is_the_accounts_fault(mastodon_account: FakeMastodon,
                                                                publisher: MastodonPublisher) -> None:
    publish(publisher, "Before", candidate_id=1)
    mastodon_account.revoke(fake_api.TOKEN)
    error = publish_error(publisher, "After", candidate_id=2)
    assert error.outcome == Outcome.ACCOUNT
    assert str(error).startswith(f"{mastodon_account.domain} refused MASTODON_ACCESS_TOKEN (HTTP 401: The access "
                                 "token was revoked); ")


def test_a_token_without_write_statuses_is_the_accounts_fault(mastodon_account: FakeMastodon,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", fake_api.READ_TOKEN)
    error = publish_error(MastodonPublisher(load_settings()))
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == (f"{mastodon_account.domain} refused the post for MASTODON_ACCESS_TOKEN (HTTP 403: This "
                          f"action is outside the authorized scopes); the token lacks a scope: {NEW_TOKEN}.")
    assert len(mastodon_account.post_requests()) == 1 and mastodon_account.posted == []


def test_an_applications_own_token_is_the_accounts_fault(mastodon_account: FakeMastodon,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", fake_api.APP_TOKEN)
    error = publish_error(MastodonPublisher(load_settings()))
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == ("MASTODON_ACCESS_TOKEN is an application's own token, not an account's (HTTP 422: This "
                          "method requires an authenticated user); copy \"Your access token\" from the application's "
                          "page under the instance's Preferences, Development.")
    assert mastodon_account.post_requests() == []


@pytest.mark.parametrize(("unset", "message"), [
    (("MASTODON_ACCESS_TOKEN",), f"Posting to Mastodon needs MASTODON_ACCESS_TOKEN; {NEW_TOKEN}."),
    (("MASTODON_API_BASE_URL",), "Posting to Mastodon needs MASTODON_API_BASE_URL; set MASTODON_API_BASE_URL to the "
                                 "account's instance, like https://botsin.space."),
    (("MASTODON_API_BASE_URL", "MASTODON_ACCESS_TOKEN"),
     "Posting to Mastodon needs MASTODON_API_BASE_URL and MASTODON_ACCESS_TOKEN; set MASTODON_API_BASE_URL to the "
     f"account's instance, like https://botsin.space and {NEW_TOKEN}."),
])
def test_missing_settings_are_a_config_error_naming_them(mastodon_account: FakeMastodon,
                                                         monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...],
                                                         message: str) -> None:
    for variable in unset:
        monkeypatch.delenv(variable)
    with pytest.raises(ConfigError) as caught:
        MastodonPublisher(load_settings())
    assert str(caught.value) == message
    assert mastodon_account.server.requests == []


def test_a_base_url_without_a_mastodon_api_is_the_accounts_fault(mastodon_account: FakeMastodon,
                                                                  publisher: MastodonPublisher) -> None:
    for path in (INSTANCE_V2_PATH, INSTANCE_V1_PATH):
        mastodon_account.server.fail(path, status=404, body=fake_api.ROUTE_NOT_FOUND)
    error = publish_error(publisher)
    assert error.outcome == Outcome.ACCOUNT
    assert str(error) == (f"{mastodon_account.domain} has no Mastodon API where MASTODON_API_BASE_URL points (HTTP 404 "
                          f"for the settings of {mastodon_account.domain}: Not Found); set it to the instance's "
                          "address, like https://botsin.space.")
    assert mastodon_account.post_requests() == []


def test_the_base_url_may_be_a_bare_domain_but_not_another_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", "t")
    monkeypatch.setenv("MASTODON_API_BASE_URL", "botsin.space/")
    publisher = MastodonPublisher(load_settings())
    assert (publisher.base_url, publisher.describe()) == (
        "https://botsin.space", "the Mastodon account of MASTODON_ACCESS_TOKEN on botsin.space")
    monkeypatch.setenv("MASTODON_API_BASE_URL", "ftp://botsin.space")
    with pytest.raises(ConfigError, match=r"^MASTODON_API_BASE_URL 'ftp://botsin.space' is not an http\(s\) address; "):
        MastodonPublisher(load_settings())


# --- failures that leave the outcome open, and those that certainly posted nothing ----------------------------


def test_a_503_to_the_post_is_unknown_and_not_retried(mastodon_account: FakeMastodon,
                                                      publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(STATUSES_PATH, status=503, body=fake_api.SERVICE_UNAVAILABLE)
    error = publish_error(publisher)
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == (f"{mastodon_account.domain} answered the post with HTTP 503 Service Unavailable, "
                          f"{look_for_it(mastodon_account)}")
    assert len(mastodon_account.post_requests()) == 1


def test_a_hang_up_after_the_post_was_made_is_unknown_and_the_post_is_found_later(
        mastodon_account: FakeMastodon, publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(STATUSES_PATH, hang_up=True)
    error = publish_error(publisher, "Made but never confirmed")
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == (f"The connection to {mastodon_account.domain} failed after the post was sent (the "
                          f"connection dropped before an answer), {look_for_it(mastodon_account)}")
    (found,) = publisher.recent_posts(limit=5)
    assert (found.remote_id, found.text) == (mastodon_account.posted[0]["id"], "Made but never confirmed")


def test_no_answer_in_time_is_unknown_and_sending_it_again_gets_the_status_the_timeout_hid(
        mastodon_account: FakeMastodon, publisher: MastodonPublisher) -> None:
    answer = threading.Event()
    mastodon_account.server.fail(STATUSES_PATH, hold=answer)  # the status is made; its answer waits
    try:
        error = publish_error(publisher, "Made while we waited")
        again = publish(publisher, "Made while we waited")  # the same candidate, approved again
    finally:
        answer.set()
    assert error.outcome == Outcome.UNKNOWN
    assert str(error) == (f"The connection to {mastodon_account.domain} failed after the post was sent (no answer in "
                          f"time), {look_for_it(mastodon_account)}")
    assert [s["id"] for s in mastodon_account.posted] == [again.remote_id]  # one status, not two
    assert len(set(mastodon_account.idempotency_keys())) == 1 and len(mastodon_account.post_requests()) == 2


def test_an_answer_cut_off_is_unknown(mastodon_account: FakeMastodon, publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(STATUSES_PATH, drop=True)
    error = publish_error(publisher)
    assert error.outcome == Outcome.UNKNOWN
    assert str(error).startswith(f"The connection to {mastodon_account.domain} failed after the post was sent (")
    assert (len(mastodon_account.post_requests()), len(mastodon_account.posted)) == (1, 1)


def test_a_failed_read_before_the_post_posts_nothing_and_is_transient(mastodon_account: FakeMastodon,
                                                                      publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(VERIFY_PATH, status=503, body=fake_api.SERVICE_UNAVAILABLE)
    error = publish_error(publisher)
    assert error.outcome == Outcome.TRANSIENT
    assert str(error) == (f"{mastodon_account.domain} answered the lookup of MASTODON_ACCESS_TOKEN's account with HTTP "
                          "503 Service Unavailable; try again later.")
    assert mastodon_account.post_requests() == []


@pytest.mark.parametrize(("url", "why"), [(f"http://127.0.0.1:{closed_port()}", "the connection was refused"),
                                          ("http://nnbot-test.invalid", "its host name was not found")])
def test_no_connection_is_transient(monkeypatch: pytest.MonkeyPatch, url: str, why: str) -> None:
    monkeypatch.setenv("MASTODON_API_BASE_URL", url)
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", fake_api.TOKEN)
    error = publish_error(MastodonPublisher(load_settings()))
    assert error.outcome == Outcome.TRANSIENT
    host = url.removeprefix("http://")
    assert str(error) == (f"Could not connect to {host} ({why}), so nothing was posted; check the network and "
                          "MASTODON_API_BASE_URL.")


# --- the account's recent statuses, and its bot flag ----------------------------------------------------------


def test_recent_posts_are_the_accounts_own_statuses_as_plain_text_newest_first(mastodon_account: FakeMastodon,
                                                                               publisher: MastodonPublisher) -> None:
    older = mastodon_account.add_status(ACCOUNT, "Older & wiser\n\nsecond paragraph")
    mastodon_account.add_boost(ACCOUNT, mastodon_account.add_status("alice", "Not mine"))  # a boost is not its post
    first, second = publish(publisher, "Newer", 1), publish(publisher, "Newest <3", 2)
    posts = publisher.recent_posts(limit=5)
    assert [(p.remote_id, p.url, p.text) for p in posts] == [
        (second.remote_id, second.url, "Newest <3"), (first.remote_id, first.url, "Newer"),
        (older, f"{mastodon_account.url}/@{ACCOUNT}/{older}", "Older & wiser\n\nsecond paragraph")]
    assert posts[2] == RemotePost(remote_id=older, url=posts[2].url, text=posts[2].text,
                                  created_at=datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC), destination=None)
    assert mastodon_account.server.requests[-1].query == {"exclude_reblogs": "1", "limit": "5"}


def test_recent_posts_reads_pages_until_the_limit(mastodon_account: FakeMastodon,
                                                  publisher: MastodonPublisher) -> None:
    for n in range(1, 101):
        mastodon_account.add_status(ACCOUNT, f"Status {n}")
    posts = publisher.recent_posts(limit=90)
    assert [p.text for p in posts] == [f"Status {n}" for n in range(100, 10, -1)]
    assert mastodon_account.server.count("GET", f"/api/v1/accounts/{ACCOUNT_ID}/statuses") == 3


def test_recent_posts_that_cannot_be_read_are_transient(mastodon_account: FakeMastodon,
                                                        publisher: MastodonPublisher) -> None:
    mastodon_account.server.fail(f"/api/v1/accounts/{ACCOUNT_ID}/statuses", **rate_limited(reset_in=60))
    with pytest.raises(PublishError) as caught:
        publisher.recent_posts(limit=10)
    assert (caught.value.outcome, caught.value.retry_at) == (Outcome.TRANSIENT, None)
    assert str(caught.value).startswith(f"{mastodon_account.domain} rate-limited the list of @{ACCOUNT}@"
                                        f"{mastodon_account.domain}'s recent statuses until ")


def test_an_account_not_marked_as_a_bot_is_named_and_a_post_from_it_is_logged(
        mastodon_account: FakeMastodon, publisher: MastodonPublisher, caplog: pytest.LogCaptureFixture) -> None:
    assert publisher.account_problem() is None
    mastodon_account.account["bot"] = False
    unflagged = MastodonPublisher(load_settings())
    assert unflagged.account_problem() == (
        f"the account @{ACCOUNT}@{mastodon_account.domain} is not marked as a bot; tick 'This is an automated "
        "account' in its profile (Preferences, Profile), as Mastodon's rules for bot accounts ask")
    with caplog.at_level(logging.WARNING, logger="bot.publishers.mastodon"):
        publish(unflagged)
    assert caplog.messages == [f"@{ACCOUNT}@{mastodon_account.domain} is not marked as a bot; tick 'This is an "
                               "automated account' in its profile, as Mastodon's rules for bots ask"]
    assert [r.method for r in mastodon_account.server.requests].count("POST") == 1


def test_bot_check_notes_an_account_not_marked_as_a_bot(bot, mastodon_account: FakeMastodon,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    config = tmp_path / "bots.toml"
    config.write_text('[[bot]]\nname = "mb"\ncorpus = "mb"\nplatform = "mastodon"\n')
    mastodon_account.account["bot"] = False
    found = [f for f in bot("--config", str(config), "check", "--json").json["bots"][0]["findings"]
             if f["what"] == "posting"]
    assert found == [
        {"what": "posting", "level": "ok", "detail": f"posts to @{ACCOUNT}@{mastodon_account.domain} on Mastodon; "
                                                     "keys and destination are set (nothing was sent)", "next": None},
        {"what": "posting", "level": "note", "detail": f"the account @{ACCOUNT}@{mastodon_account.domain} is not "
         "marked as a bot; tick 'This is an automated account' in its profile (Preferences, Profile), as Mastodon's "
         "rules for bot accounts ask", "next": None}]
    assert mastodon_account.post_requests() == []
