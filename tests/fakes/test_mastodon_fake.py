"""The fake Mastodon, through the real Mastodon.py client: what the publisher and the scraper will rely on."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonUnauthorizedError,
)

from tests.fakes import mastodon as fake_api
from tests.fakes.mastodon import STATUSES_PATH, FakeMastodon, countable_length, rate_limited

CLIENT_TIMEOUT = 0.3  # seconds: long enough for the fake, short enough for the timeout tests


def client(fake: FakeMastodon, token: str | None = fake_api.TOKEN, **options: object) -> Mastodon:
    return Mastodon(access_token=token, api_base_url=fake.url, request_timeout=CLIENT_TIMEOUT, **options)


def test_verify_credentials_shows_the_account_and_its_bot_flag(mastodon_account: FakeMastodon) -> None:
    me = client(mastodon_account).account_verify_credentials()
    assert (me.id, me.username, me.acct, me.bot) == (fake_api.ACCOUNT_ID, "nnbot", "nnbot", True)
    assert me.source.privacy == "public"

    mastodon_account.account["bot"] = False
    assert client(mastodon_account).account_verify_credentials().bot is False


def test_the_instance_gives_its_length_limit_and_a_version_mastodon_py_accepts(fake_mastodon: FakeMastodon) -> None:
    fake_mastodon.max_characters = 1000
    api = client(fake_mastodon, version_check_mode="created")  # checks each method against the instance's version

    instance = api.instance()

    assert instance.configuration.statuses.max_characters == 1000
    assert instance.configuration.statuses.characters_reserved_per_url == 23
    assert (api.mastodon_major, api.mastodon_minor, api.mastodon_api_version) == (4, 5, fake_api.API_VERSION)
    assert fake_mastodon.server.paths()[:2] == [fake_api.INSTANCE_V1_PATH, fake_api.INSTANCE_V2_PATH]
    api.status_post("Fits the version check")
    assert api.account_statuses(api.account_lookup("nnbot"))[0].content == "<p>Fits the version check</p>"


def test_a_post_answers_the_whole_status_with_its_text_as_escaped_html(mastodon_account: FakeMastodon) -> None:
    status = client(mastodon_account).status_post("Tom & Jerry's <3\n\nsecond line", visibility="unlisted",
                                                  spoiler_text="cw")

    assert status.content == "<p>Tom &amp; Jerry&#39;s &lt;3</p><p>second line</p>"
    assert (status.visibility, status.spoiler_text, status.language) == ("unlisted", "cw", "en")
    assert (status.reblog, status.in_reply_to_id, status.account.bot) == (None, None, True)
    assert status.url == f"{mastodon_account.url}/@nnbot/{status.id}"
    assert status.application.name == fake_api.APP_NAME
    assert [s["id"] for s in mastodon_account.posted] == [status.id]
    assert mastodon_account.post_requests()[0].form["status"] == "Tom & Jerry's <3\n\nsecond line"


def test_the_same_idempotency_key_answers_the_first_status_and_creates_nothing(mastodon_account: FakeMastodon) -> None:
    api = client(mastodon_account)

    first = api.status_post("Once only", idempotency_key="candidate-7")
    again = api.status_post("Once only, edited", idempotency_key="candidate-7")

    assert again.id == first.id and again.content == "<p>Once only</p>"
    assert len(mastodon_account.posted) == 1
    assert mastodon_account.idempotency_keys() == ["candidate-7", "candidate-7"]
    assert api.status_post("Once only", idempotency_key="candidate-8").id != first.id
    mastodon_account.forget_idempotency_keys()  # an hour later the key is new again
    assert api.status_post("Once only", idempotency_key="candidate-7").id != first.id
    assert len(mastodon_account.posted) == 3


def test_a_retry_after_a_read_timeout_with_the_same_key_gets_the_post_the_timeout_hid(
        mastodon_account: FakeMastodon) -> None:
    api = client(mastodon_account)
    answer = threading.Event()
    mastodon_account.server.fail(STATUSES_PATH, hold=answer)  # the status is made; its answer waits

    with pytest.raises(MastodonNetworkError, match="Read timed out"):
        api.status_post("Made while you waited", idempotency_key="candidate-9")
    retried = api.status_post("Made while you waited", idempotency_key="candidate-9")
    answer.set()

    assert [s["id"] for s in mastodon_account.posted] == [retried.id]
    assert mastodon_account.idempotency_keys() == ["candidate-9", "candidate-9"]


def test_a_connection_closed_after_the_post_is_not_retried_by_the_client(mastodon_account: FakeMastodon) -> None:
    mastodon_account.server.fail(STATUSES_PATH, hang_up=True)

    with pytest.raises(MastodonNetworkError, match="Remote end closed connection without response"):
        client(mastodon_account).status_post("Posted, but no one heard")

    assert mastodon_account.server.count("POST", STATUSES_PATH) == 1
    assert [s["content"] for s in mastodon_account.timeline()] == ["<p>Posted, but no one heard</p>"]


def test_a_5xx_is_an_error_mastodon_py_names_by_status(mastodon_account: FakeMastodon) -> None:
    mastodon_account.server.fail(STATUSES_PATH, status=503, body=fake_api.SERVICE_UNAVAILABLE)

    with pytest.raises(MastodonAPIError) as caught:
        client(mastodon_account).status_post("Unlucky")

    assert type(caught.value).__name__ == "MastodonServiceUnavailableError"
    assert mastodon_account.server.count("POST", STATUSES_PATH) == 1 and not mastodon_account.posted


def test_the_length_limit_counts_graphemes_and_a_url_as_23(mastodon_account: FakeMastodon) -> None:
    api = client(mastodon_account)
    url = "https://example.com/" + "x" * 80

    assert api.status_post("a" * 476 + " " + url).content.startswith("<p>aaa")  # 476 + 1 + 23 = 500
    with pytest.raises(MastodonAPIError) as caught:
        api.status_post("a" * 477 + " " + url)

    assert caught.value.args[1:] == (422, "Unprocessable Entity",
                                     "Validation failed: Text character limit of 500 exceeded")
    assert len(mastodon_account.posted) == 1
    assert countable_length("hi @alice@other.example", spoiler_text="cw") == len("cwhi @alice")
    assert countable_length("👨‍👩‍👧 é ") == 3  # a family emoji, an e with a combining accent, a space


def test_wrong_revoked_read_only_and_app_tokens_are_refused(mastodon_account: FakeMastodon) -> None:
    with pytest.raises(MastodonUnauthorizedError) as unauthorized:
        client(mastodon_account, token="not-a-token").account_verify_credentials()
    with pytest.raises(MastodonAPIError) as forbidden:
        client(mastodon_account, token=fake_api.READ_TOKEN).status_post("Not allowed")

    mastodon_account.revoke(fake_api.TOKEN)
    with pytest.raises(MastodonUnauthorizedError, match="The access token was revoked"):
        client(mastodon_account).status_post("Not any more")
    with pytest.raises(MastodonAPIError) as no_user:
        client(mastodon_account, token=fake_api.APP_TOKEN).account_verify_credentials()

    assert unauthorized.value.args[1:] == (401, "Unauthorized", "The access token is invalid")
    assert forbidden.value.args[1:] == (403, "Forbidden", "This action is outside the authorized scopes")
    assert no_user.value.args[1:] == (422, "Unprocessable Entity", "This method requires an authenticated user")
    assert not mastodon_account.posted


def test_every_answer_carries_mastodons_rate_limit_headers(mastodon_account: FakeMastodon) -> None:
    answer = requests.get(f"{mastodon_account.url}{fake_api.VERIFY_PATH}", timeout=CLIENT_TIMEOUT,
                          headers={"Authorization": f"Bearer {fake_api.TOKEN}"})
    api = client(mastodon_account)
    api.account_verify_credentials()

    assert (answer.headers["X-RateLimit-Limit"], answer.headers["X-RateLimit-Remaining"]) == ("300", "299")
    assert answer.headers["X-RateLimit-Reset"].endswith("Z") and "." in answer.headers["X-RateLimit-Reset"]
    assert (api.ratelimit_limit, api.ratelimit_remaining) == (300, 298)
    assert 0 < api.ratelimit_reset - time.time() <= fake_api.API_PERIOD + 1


def test_past_the_status_limit_mastodon_answers_429(mastodon_account: FakeMastodon) -> None:
    mastodon_account.statuses_limit = 1
    api = client(mastodon_account, ratelimit_method="throw")
    api.status_post("The one allowed")

    with pytest.raises(MastodonRatelimitError):
        api.status_post("One too many")

    assert len(mastodon_account.posted) == 1


def test_a_scripted_429_is_waited_out_and_the_post_sent_again_in_wait_mode(mastodon_account: FakeMastodon) -> None:
    mastodon_account.server.fail(STATUSES_PATH, **rate_limited(reset_in=0.2))

    status = client(mastodon_account, ratelimit_method="wait").status_post("After the wait")

    assert mastodon_account.server.count("POST", STATUSES_PATH) == 2  # Mastodon.py re-sent it by itself
    assert [s["id"] for s in mastodon_account.posted] == [status.id]


def test_an_accounts_statuses_page_with_link_headers_that_fetch_next_follows(fake_mastodon: FakeMastodon) -> None:
    ids = [fake_mastodon.add_status("alice", f"Toot number {n}") for n in range(45)]
    fake_mastodon.add_boost("alice", ids[0])
    fake_mastodon.add_status("alice", "@nnbot not mine", in_reply_to=fake_mastodon.add_status("nnbot", "hello"))
    api = client(fake_mastodon, token=None)  # public statuses need no token

    page = api.account_statuses(api.account_lookup("alice"), exclude_reblogs=True, exclude_replies=True, limit=20)
    pages = [page]
    while (page := api.fetch_next(page)) is not None:
        pages.append(page)

    assert [len(p) for p in pages] == [20, 20, 5]  # the last page is short, so it has no next link
    assert [s.id for p in pages for s in p] == ids[::-1]
    assert fake_mastodon.server.requests[-1].query == {"exclude_reblogs": "1", "exclude_replies": "1",
                                                       "limit": "20", "max_id": ids[5]}
    raw = requests.get(f"{fake_mastodon.url}/api/v1/accounts/{pages[0][0].account.id}/statuses?limit=2",
                       timeout=CLIENT_TIMEOUT)
    base = f"{fake_mastodon.url}/api/v1/accounts/{pages[0][0].account.id}/statuses"
    newest = [s["id"] for s in raw.json()]
    assert raw.headers["Link"] == (f'<{base}?limit=2&max_id={newest[1]}>; rel="next", '
                                   f'<{base}?limit=2&min_id={newest[0]}>; rel="prev"')


def test_boosts_carry_the_original_and_replies_their_parent(fake_mastodon: FakeMastodon) -> None:
    original = fake_mastodon.add_status("bob", "Worth a boost")
    fake_mastodon.add_boost("alice", original)
    thread = fake_mastodon.add_status("alice", "A thread")
    fake_mastodon.add_status("alice", "continued", in_reply_to=thread)
    fake_mastodon.add_status("alice", "@bob nice", in_reply_to=original)
    api = client(fake_mastodon, token=None)
    alice = api.account_lookup("alice")

    newest_first = api.account_statuses(alice)
    without_replies = api.account_statuses(alice, exclude_replies=True)

    reply_to_bob, _self_reply, _thread, boost = newest_first
    assert (boost.content, boost.reblog.id, boost.reblog.content) == ("", original, "<p>Worth a boost</p>")
    assert reply_to_bob.in_reply_to_id == original
    assert reply_to_bob.in_reply_to_account_id == api.account_lookup("bob").id
    assert reply_to_bob.content.startswith('<p><span class="h-card" translate="no"><a href="')
    assert [m.acct for m in reply_to_bob.mentions] == ["bob"]
    assert [s.content for s in without_replies] == ["<p>continued</p>", "<p>A thread</p>", ""]  # threads stay


def test_lookup_finds_local_and_remote_accounts(fake_mastodon: FakeMastodon) -> None:
    fake_mastodon.add_account("Carol", bot=True)
    fake_mastodon.add_account("dave", domain="other.example")
    api = client(fake_mastodon, token=None)

    assert api.account_lookup("carol").acct == "Carol"
    assert api.account_lookup(f"@carol@{fake_mastodon.domain}").bot is True
    assert api.account_lookup("dave@other.example").url == "https://other.example/@dave"
    with pytest.raises(MastodonNotFoundError):
        api.account_lookup("dave")


def test_private_statuses_show_only_to_their_author(mastodon_account: FakeMastodon) -> None:
    mastodon_account.add_status("nnbot", "for followers", visibility="private")
    mastodon_account.add_status("nnbot", "for all")
    nnbot = fake_api.ACCOUNT_ID

    mine = client(mastodon_account).account_statuses(nnbot)
    public = client(mastodon_account, token=None).account_statuses(nnbot)

    assert [s.content for s in mine] == ["<p>for all</p>", "<p>for followers</p>"]
    assert [s.content for s in public] == ["<p>for all</p>"]
