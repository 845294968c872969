"""The Bluesky scraper against the fake AppView through the real atproto SDK: exact documents, every page read,
reposts and replies left out, one sentence per failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from scrapers.bluesky import PUBLIC_APPVIEW, BlueskyReader, bluesky_actor, read_url, xrpc_client
from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.waiting import Wait, Waiter
from tests.fakes import bluesky as fake
from tests.fakes.bluesky import AUTHOR_FEED_PATH, FakeBluesky

ALICE = "alice.bsky.social"


def read(server: FakeBluesky, actor: str = ALICE, *, waiter: Waiter | None = None, **options: object) -> list[Page]:
    with BlueskyReader(xrpc_client(server.url), url=server.url, waiter=waiter or Waiter(scale=0)) as reader:
        return list(reader.pages(actor, **options))  # type: ignore[arg-type]


def read_error(server: FakeBluesky, actor: str = ALICE, **options: object) -> ScrapeError:
    with pytest.raises(ScrapeError) as caught:
        read(server, actor, **options)
    return caught.value


def feed_queries(server: FakeBluesky) -> list[dict[str, str]]:
    return [r.query for r in server.server.requests if r.path == AUTHOR_FEED_PATH]


@pytest.fixture
def server() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake_server:
        fake_server.add_actor(ALICE)
        yield fake_server


def texts(pages: list[Page]) -> list[str]:
    return [d.text for page in pages for d in page.documents]


# --- reading posts -----------------------------------------------------------------------------------------


def test_reads_the_author_feed_newest_first_until_a_page_comes_back_empty(server: FakeBluesky) -> None:
    for n in range(250):
        server.post(ALICE, f"Post {n}")
    pages = read(server)
    assert [page.fetched for page in pages] == [100, 100, 50, 0]
    assert texts(pages) == [f"Post {n}" for n in range(249, -1, -1)]
    queries = feed_queries(server)
    assert [(q["actor"], q["filter"], q["limit"], "cursor" in q) for q in queries] == [
        (ALICE, "posts_no_replies", "100", False)] + [(ALICE, "posts_no_replies", "100", True)] * 3
    assert all("authorization" not in r.headers for r in server.server.requests)  # public: no login


def test_a_document_keeps_the_text_uri_author_time_likes_and_link(server: FakeBluesky) -> None:
    uri = server.post(ALICE, "  Fish & chips <3  ", created_at="2024-02-01T10:00:00.000Z")
    (page,) = read(server, limit=1)
    rkey = uri.rsplit("/", 1)[1]
    assert page.documents == (Document(source="bluesky", external_id=uri, text="Fish & chips <3", author=ALICE,
                                       created_at=datetime(2024, 2, 1, 10, 0, tzinfo=UTC), score=0,
                                       url=f"https://bsky.app/profile/{ALICE}/post/{rkey}"),)


def test_reposts_and_replies_are_left_out_unless_asked(server: FakeBluesky) -> None:
    server.add_actor("bob.bsky.social")
    first = server.post(ALICE, "Mine")
    server.post(ALICE, "In my own thread", reply_to=first)
    server.post(ALICE, "To bob", reply_to=server.post("bob.bsky.social", "Bob's"))
    server.repost(ALICE, server.post("bob.bsky.social", "Bob's reposted"))
    server.post(ALICE, "Also mine")
    (page, end) = read(server)
    assert (texts([page]), page.fetched, page.skipped, end.fetched) == (["Also mine", "Mine"], 3, {"repost": 1}, 0)
    everything = read(server, replies=True, reposts=True)
    assert texts(everything) == ["Also mine", "Bob's reposted", "To bob", "In my own thread", "Mine"]
    assert [d.author for d in everything[0].documents][1] == "bob.bsky.social"  # a repost is its author's post
    assert feed_queries(server)[-1]["filter"] == "posts_with_replies"


def test_a_short_page_with_more_after_it_is_read_through(server: FakeBluesky) -> None:
    server.add_actor("bob.bsky.social")
    for n in range(3):
        server.post(ALICE, f"Post {n}")
    server.repost(ALICE, gone := server.post("bob.bsky.social", "Deleted later"))
    server.delete(gone)  # the repost stays in the feed's index and is dropped from the page it falls on
    pages = read(server, limit=100, reposts=True)
    assert texts(pages) == ["Post 2", "Post 1", "Post 0"]
    with BlueskyReader(xrpc_client(server.url), url=server.url, waiter=Waiter(scale=0)) as reader:
        reader_pages = list(reader.pages(ALICE, limit=3))  # limit 3 asks for 3, gets 2 (one dropped): reads on
    assert texts(reader_pages) == ["Post 2", "Post 1", "Post 0"]


def test_stops_at_the_limit(server: FakeBluesky) -> None:
    for n in range(30):
        server.post(ALICE, f"Post {n}")
    pages = read(server, limit=12)
    assert [page.fetched for page in pages] == [12] and texts(pages)[-1] == "Post 18"
    assert feed_queries(server)[0]["limit"] == "12"


def test_an_account_without_posts_gives_one_empty_page(server: FakeBluesky) -> None:
    assert read(server) == [Page(documents=(), fetched=0, skipped={})]


@pytest.mark.parametrize(("text", "actor"), [(ALICE, ALICE), ("@Alice.Bsky.Social", ALICE), (f" @{ALICE} ", ALICE),
                                             (f"https://bsky.app/profile/{ALICE}", ALICE),
                                             ("did:plc:7iza6de2dwap2sbkpav7c6c6", "did:plc:7iza6de2dwap2sbkpav7c6c6")])
def test_actors(text: str, actor: str) -> None:
    assert bluesky_actor(text) == actor


@pytest.mark.parametrize(("text", "message"), [
    ("alice", "'alice' is not a Bluesky handle or DID (a handle looks like alice.bsky.social); check the spelling."),
    ("alice smith", "'alice smith' is not a Bluesky handle or DID; check the spelling.")])
def test_a_name_that_cannot_be_an_actor_is_refused(text: str, message: str) -> None:
    with pytest.raises(ScrapeError) as caught:
        bluesky_actor(text)
    assert str(caught.value) == message


def test_logged_out_reads_from_bluesky_go_to_the_public_appview() -> None:
    assert read_url("https://bsky.social", logged_in=False) == PUBLIC_APPVIEW
    assert read_url("https://bsky.social", logged_in=True) == "https://bsky.social"
    assert read_url("http://127.0.0.1:8080", logged_in=False) == "http://127.0.0.1:8080"


def test_a_did_reads_the_same_feed(server: FakeBluesky) -> None:
    server.post(ALICE, "By did")
    assert texts(read(server, server.did(ALICE))) == ["By did"]


# --- what cannot be read -----------------------------------------------------------------------------------


def test_an_unknown_account_is_one_sentence(server: FakeBluesky) -> None:
    error = read_error(server, "nobody.bsky.social")
    assert isinstance(error, SourceUnavailableError)
    assert str(error) == "Bluesky has no account @nobody.bsky.social; check the handle."


def test_a_server_that_wants_a_login_says_what_to_set(server: FakeBluesky) -> None:
    server.server.fail(AUTHOR_FEED_PATH, status=401, body=fake.AUTH_MISSING)
    host = server.url.removeprefix("http://")
    assert str(read_error(server)) == (f"{host} wants a login to read @{ALICE}'s posts (HTTP 401 Authentication "
                                       "Required); set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD, or leave BLUESKY_URL "
                                       "unset to read through Bluesky's public AppView.")


def test_a_rate_limit_is_waited_out_visibly(server: FakeBluesky) -> None:
    server.post(ALICE, "After the wait")
    server.server.fail(AUTHOR_FEED_PATH, **fake.rate_limited(reset_in=30))
    waits: list[Wait] = []
    pages = read(server, waiter=Waiter(scale=0, on_wait=waits.append))
    assert texts(pages) == ["After the wait"]
    (wait,) = waits
    assert wait.service == "Bluesky" and 29 <= wait.seconds <= 32


def test_no_wait_makes_a_rate_limit_an_error(server: FakeBluesky) -> None:
    server.server.fail(AUTHOR_FEED_PATH, **fake.rate_limited(reset_in=30))
    error = read_error(server, waiter=Waiter(scale=0, no_wait=True))
    assert isinstance(error, RateLimitError)
    assert str(error).startswith(f"Bluesky rate-limited reading @{ALICE}'s posts until ")


def test_server_errors_are_retried_then_one_sentence(server: FakeBluesky) -> None:
    server.post(ALICE, "Read on the second try")
    server.server.fail(AUTHOR_FEED_PATH, status=503, body=fake.INTERNAL_SERVER_ERROR)
    server.server.fail(AUTHOR_FEED_PATH, hang_up=True, call=2)
    assert texts(read(server)) == ["Read on the second try"]
    server.server.fail(AUTHOR_FEED_PATH, status=502, body=fake.INTERNAL_SERVER_ERROR, times=4)
    assert str(read_error(server)) == (f"Bluesky kept failing (HTTP 502) while reading @{ALICE}'s posts; what was "
                                       "fetched is kept, so run the command again later to continue.")
