"""The fake Bluesky answers the real atproto SDK as bsky.social does: sessions, records by rkey, limits, feeds."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import httpx
import pytest
from atproto import Client, SessionEvent, models
from atproto_client import exceptions
from atproto_client.request import Request

from tests.fakes import bluesky
from tests.fakes.bluesky import ACCOUNT, ACCOUNT_DID, APP_PASSWORD, CREATE_RECORD_PATH, FakeBluesky

RKEY = "3lbxf2jbbkc2a"  # a TID, as a post's rkey conventionally is
FLAG = "\U0001F1EB\U0001F1F7"  # 🇫🇷: one grapheme, two code points, eight UTF-8 bytes
FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # one grapheme, seven code points, 25 bytes


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        yield fake


def logged_in(fake: FakeBluesky, **request: object) -> Client:
    client = Client(base_url=fake.url, request=Request(**request))
    client.login(ACCOUNT, APP_PASSWORD)
    return client


def post(client: Client, text: str, *, rkey: str | None = RKEY) -> models.AppBskyFeedPost.CreateRecordResponse:
    record = models.AppBskyFeedPost.Record(text=text, created_at=client.get_current_time_iso(), langs=["en"])
    return client.app.bsky.feed.post.create(ACCOUNT_DID, record, rkey=rkey)


def error_of(caught: pytest.ExceptionInfo[exceptions.RequestErrorBase]) -> tuple[int, str, str | None]:
    response = caught.value.response
    assert response is not None
    return response.status_code, response.content.error, response.content.message


# --- sessions


def test_a_login_is_one_create_session_and_a_wrong_password_a_401(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    assert client.me is not None and client.me.did == ACCOUNT_DID
    assert fake.login_requests() == 1
    assert fake.server.paths() == [bluesky.CREATE_SESSION_PATH, bluesky.PROFILE_PATH]  # the SDK reads the profile

    for identifier, password in ((ACCOUNT, "wrong-pass-word-here"), ("@" + ACCOUNT, APP_PASSWORD)):
        with pytest.raises(exceptions.UnauthorizedError) as caught:
            Client(base_url=fake.url).login(identifier, password)
        assert error_of(caught) == (401, "AuthenticationRequired", "Invalid identifier or password")
    Client(base_url=fake.url).login(bluesky.EMAIL, APP_PASSWORD)
    assert fake.login_requests() == 4


def test_an_exported_session_logs_in_again_without_a_new_session(fake: FakeBluesky) -> None:
    saved = logged_in(fake).export_session_string()
    client = Client(base_url="http://127.0.0.1:9")  # the session string carries the PDS's address
    client.login(session_string=saved)
    post(client, "hello again")
    assert fake.login_requests() == 1
    assert [record.value["text"] for record in fake.posts()] == ["hello again"]


def test_too_many_logins_are_rate_limited(fake: FakeBluesky) -> None:
    client = Client(base_url=fake.url)
    for _ in range(bluesky.SESSION_LIMIT):
        client.login(ACCOUNT, APP_PASSWORD, fetch_bsky_profile=False)
    with pytest.raises(exceptions.RateLimitExceededError) as caught:
        client.login(ACCOUNT, APP_PASSWORD)
    assert caught.value.policy == "30;w=300" and caught.value.remaining == 0


def test_the_sdk_refreshes_a_token_near_its_exp_before_the_call_and_keeps_the_session(fake: FakeBluesky) -> None:
    fake.access_lifetime = 60  # under the SDK's 15 minutes: it refreshes before each call
    client = logged_in(fake)
    events: list[SessionEvent] = []
    client.on_session_change(lambda event, session: events.append(event))
    before = client.export_session_string()
    post(client, "after a refresh")
    assert fake.server.paths()[-2:] == [bluesky.REFRESH_SESSION_PATH, CREATE_RECORD_PATH]
    assert events == [SessionEvent.REFRESH] and client.export_session_string() != before
    assert fake.login_requests() == 1


def test_a_token_the_server_expired_is_a_bad_request_the_sdk_does_not_retry(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    fake.expire_access_tokens()
    with pytest.raises(exceptions.BadRequestError) as caught:
        post(client, "too late")
    assert error_of(caught) == (400, "ExpiredToken", "Token has expired")
    assert fake.refresh_requests() == 0 and fake.create_requests() == 1 and fake.posts() == []


def test_a_revoked_refresh_token_stops_the_call_before_it_is_sent(fake: FakeBluesky) -> None:
    fake.access_lifetime = 60
    client = logged_in(fake)
    fake.revoke_refresh_tokens()
    with pytest.raises(exceptions.BadRequestError) as caught:
        post(client, "never sent")
    assert error_of(caught) == (400, "ExpiredToken", "Token has been revoked")
    assert fake.create_requests() == 0


# --- records


def test_a_second_create_at_the_same_rkey_is_refused_with_a_500_and_writes_nothing(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    created = post(client, "once")
    assert created.uri == f"at://{ACCOUNT_DID}/app.bsky.feed.post/{RKEY}"
    with pytest.raises(exceptions.RequestException) as caught:
        post(client, "twice")
    assert error_of(caught) == (500, "InternalServerError", "Internal Server Error")
    assert [record.value["text"] for record in fake.posts()] == ["once"]

    found = client.app.bsky.feed.post.get(ACCOUNT_DID, RKEY)  # what reconcile asks
    assert (found.uri, found.cid, found.value.text) == (created.uri, created.cid, "once")


def test_a_missing_record_is_record_not_found(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    with pytest.raises(exceptions.BadRequestError) as caught:
        client.app.bsky.feed.post.get(ACCOUNT_DID, RKEY)
    assert error_of(caught) == (400, "RecordNotFound", f"Could not locate record: at://{ACCOUNT_DID}/"
                                                       f"app.bsky.feed.post/{RKEY}")


def test_list_records_pages_by_rkey_highest_first_with_the_last_rkey_as_cursor(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    for n, rkey in enumerate(("3lbxf2jbbkc2a", "3lbxf2jbbkc2c", "3lbxf2jbbkc2b")):
        post(client, f"post {n}", rkey=rkey)
    pages, cursor = [], None
    while True:
        page = client.com.atproto.repo.list_records({"repo": ACCOUNT_DID, "collection": bluesky.POST, "limit": 2,
                                                     "cursor": cursor})
        pages.append(([record.value.text for record in page.records], page.cursor))
        if not page.records:
            break
        cursor = page.cursor
    assert pages == [(["post 1", "post 2"], "3lbxf2jbbkc2b"), (["post 0"], "3lbxf2jbbkc2a"), ([], None)]
    oldest = Client(base_url=fake.url).com.atproto.repo.list_records(  # no login needed
        {"repo": ACCOUNT, "collection": bluesky.POST, "reverse": True})
    assert [record.value.text for record in oldest.records] == ["post 0", "post 2", "post 1"]


@pytest.mark.parametrize(("rkey", "message"), [(".", 'record key can not be "." or ".."'),
                                               ("has space", "record key syntax not valid (regex)")])
def test_a_bad_rkey_is_an_invalid_request(fake: FakeBluesky, rkey: str, message: str) -> None:
    with pytest.raises(exceptions.BadRequestError) as caught:
        post(logged_in(fake), "hello", rkey=rkey)
    assert error_of(caught) == (400, "InvalidRequest", message)


def test_any_rkey_of_the_right_syntax_is_taken_and_none_gets_a_tid(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    assert post(client, "named", rkey="nnbot-candidate-17").uri.endswith("/nnbot-candidate-17")
    rkey = post(client, "unnamed", rkey=None).uri.rsplit("/", 1)[1]
    assert len(rkey) == 13 and set(rkey) <= set(bluesky.TID_ALPHABET)


def test_a_post_may_have_300_graphemes_and_3000_bytes(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    post(client, FLAG * 300, rkey=None)
    too_long = "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"
    for text in (FLAG * 301, "a" * 301):
        with pytest.raises(exceptions.BadRequestError) as caught:
            post(client, text, rkey=None)
        assert error_of(caught) == (400, "InvalidRequest", too_long)
    with pytest.raises(exceptions.BadRequestError) as caught:  # 300 graphemes, but 7,500 bytes
        post(client, FAMILY * 300, rkey=None)
    assert error_of(caught)[2] == ("Invalid app.bsky.feed.post record: Record/text must not be longer than 3000 "
                                   "characters")
    assert [len(record.value["text"]) for record in fake.posts()] == [600]


@pytest.mark.parametrize(("text", "count"), [
    ("plain", 5), (FLAG * 2, 2), (FAMILY, 1), ("e\u0301", 1), ("\U0001F44D\U0001F3FD", 1), ("\r\n", 1),
    ("\u2764\ufe0f", 1), ("\u1112\u1161\u11ab", 1), ("한국어", 3), ("\U0001F1EB", 1), ("a\u200db", 2),
])
def test_graphemes_are_counted_as_people_see_them(text: str, count: int) -> None:
    assert bluesky.graphemes(text) == count


# --- failures


def test_a_429_carries_the_rate_limit_headers_and_creates_nothing(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    fake.server.fail(CREATE_RECORD_PATH, **bluesky.rate_limited(reset_in=60))
    with pytest.raises(exceptions.RateLimitExceededError) as caught:
        post(client, "later")
    assert error_of(caught) == (429, "RateLimitExceeded", "Rate Limit Exceeded")
    assert (caught.value.limit, caught.value.remaining, caught.value.policy) == (3000, 0, "3000;w=300")
    assert caught.value.reset_at is not None
    assert fake.posts() == []


def test_every_answer_carries_the_rate_limit_headers(fake: FakeBluesky) -> None:
    logged_in(fake)
    response = httpx.get(fake.url + bluesky.PROFILE_PATH, params={"actor": ACCOUNT})
    assert response.headers["ratelimit-policy"] == "3000;w=300"
    assert int(response.headers["ratelimit-remaining"]) < 3000


def test_a_timeout_after_the_post_was_made_leaves_it_there_and_is_not_retried(fake: FakeBluesky) -> None:
    client = logged_in(fake, timeout=0.2)
    answer = threading.Event()
    fake.server.fail(CREATE_RECORD_PATH, hold=answer)
    try:
        with pytest.raises(exceptions.InvokeTimeoutError) as caught:
            post(client, "made, unanswered")
    finally:
        answer.set()
    assert caught.value.response is None
    assert fake.create_requests() == 1
    assert client.app.bsky.feed.post.get(ACCOUNT_DID, RKEY).value.text == "made, unanswered"


def test_a_hang_up_after_the_post_was_made_is_httpx_s_own_error(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    fake.server.fail(CREATE_RECORD_PATH, hang_up=True)
    with pytest.raises(httpx.RemoteProtocolError):  # not an AtProtocolError: the SDK maps timeouts and network errors
        post(client, "made, hung up")
    assert [record.value["text"] for record in fake.posts()] == ["made, hung up"]


@pytest.mark.parametrize(("status", "raised"), [(500, exceptions.RequestException), (503, exceptions.RequestException),
                                                (502, exceptions.NetworkError)])
def test_server_errors_are_raised_once(fake: FakeBluesky, status: int, raised: type[Exception]) -> None:
    client = logged_in(fake)
    fake.server.fail(CREATE_RECORD_PATH, status=status, body=bluesky.INTERNAL_SERVER_ERROR)
    with pytest.raises(raised):
        post(client, "not made")
    assert fake.create_requests() == 1 and fake.posts() == []


# --- author feeds


@pytest.fixture
def alice(fake: FakeBluesky) -> list[str]:
    """alice's feed, oldest first: three posts, a reply to her first, a reply to someone else, a repost of the bot."""
    fake.add_actor("alice.bsky.social")
    fake.add_actor("bob.bsky.social")
    first = fake.post("alice.bsky.social", "first")
    fake.post("alice.bsky.social", "second")
    fake.post("alice.bsky.social", "third")
    fake.post("alice.bsky.social", "in my own thread", reply_to=first)
    fake.post("alice.bsky.social", "to bob", reply_to=fake.post("bob.bsky.social", "bob's"))
    fake.repost("alice.bsky.social", fake.post(ACCOUNT, "the bot's"))
    return ["first", "second", "third", "in my own thread", "to bob", "the bot's"]


def read_feed(client: Client, actor: str, **options: object) -> list[tuple[list[str], str | None]]:
    """Each page's texts and cursor, until a page comes back empty."""
    pages, cursor = [], None
    while True:
        page = client.get_author_feed(actor, cursor=cursor, **options)
        pages.append(([item.post.record.text for item in page.feed], page.cursor))
        if not page.feed:
            return pages
        cursor = page.cursor


def test_an_author_feed_pages_newest_first_with_a_cursor_on_every_page_that_has_items(
        fake: FakeBluesky, alice: list[str]) -> None:
    pages = read_feed(Client(base_url=fake.url), "alice.bsky.social", limit=4)  # no login: the AppView is public
    assert [texts for texts, _ in pages] == [alice[::-1][:4], alice[::-1][4:], []]
    assert [cursor is not None for _, cursor in pages] == [True, True, False]


def test_an_author_feed_marks_reposts_and_replies_and_filters_replies(fake: FakeBluesky, alice: list[str]) -> None:
    client = logged_in(fake)
    feed = client.get_author_feed("alice.bsky.social").feed
    kinds = {item.post.record.text: (item.reason.py_type if item.reason else None, item.reply is not None)
             for item in feed}
    assert kinds["the bot's"] == ("app.bsky.feed.defs#reasonRepost", False)
    assert feed[0].post.author.handle == ACCOUNT and feed[0].reason.by.handle == "alice.bsky.social"
    assert kinds["to bob"] == (None, True) and kinds["first"] == (None, False)
    assert feed[1].reply.parent.record.text == "bob's" and feed[1].reply.parent.reply_count == 1
    assert feed[0].post.repost_count == 1

    def texts(kind: str) -> list[str]:
        return [item.post.record.text for item in client.get_author_feed("alice.bsky.social", filter=kind).feed]

    assert texts("posts_no_replies") == ["the bot's", "third", "second", "first"]
    assert texts("posts_and_author_threads") == ["the bot's", "in my own thread", "third", "second", "first"]


def test_a_repost_of_a_deleted_post_leaves_a_short_page_with_more_after_it(fake: FakeBluesky, alice: list[str]) -> None:
    fake.delete(fake.posts(ACCOUNT)[0].uri)
    pages = read_feed(Client(base_url=fake.url), "alice.bsky.social", limit=2)
    assert [texts for texts, _ in pages] == [["to bob"], ["in my own thread", "third"], ["second", "first"], []]


def test_posts_made_through_the_api_show_in_the_feed_once_indexed(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    fake.indexing = False
    post(client, "fresh")
    assert client.get_author_feed(ACCOUNT).feed == []
    fake.index()
    assert [item.post.uri for item in client.get_author_feed(ACCOUNT).feed] == [fake.posts()[0].uri]


def test_an_unknown_actor_is_profile_not_found(fake: FakeBluesky) -> None:
    with pytest.raises(exceptions.BadRequestError) as caught:
        Client(base_url=fake.url).get_author_feed("nobody.bsky.social")
    assert error_of(caught) == (400, "InvalidRequest", "Profile not found")


def test_the_fixtures_point_bluesky_s_settings_at_the_fake(bluesky_account: FakeBluesky) -> None:
    assert (os.environ["BLUESKY_URL"], os.environ["BLUESKY_HANDLE"], os.environ["BLUESKY_APP_PASSWORD"]) == (
        bluesky_account.url, ACCOUNT, APP_PASSWORD)
