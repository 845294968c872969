"""The X scraper against the fake X API: real tweepy code, exact documents, one sentence per failure."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.waiting import Wait, Waiter
from scrapers.x import XAccess, XReader, x_username
from tests.fakes import x as fake
from tests.fakes.x import FakeX, tweet

FIELDS = "created_at,public_metrics,note_tweet,referenced_tweets"
ARCHIVE_HINT = ("import your X archive instead with `bot import path/to/archive.zip --corpus NAME` (x.com: "
                "Settings, Your account, Download an archive of your data)")
LONG = ("A long post, well past the old limit of 280 characters, the kind X keeps whole in note_tweet. It goes on "
        "about how a small word-level LSTM learns the voice of an account from a few thousand posts, how it keeps "
        "case & punctuation, and how a person approves each post before it goes out. It ends here.")
TIMELINE = "/2/users/2244994945/tweets"


def read(x: FakeX, username: str = "jack", *, token: str = fake.BEARER_TOKEN, waiter: Waiter | None = None,
         **options: object) -> list[Page]:
    with XReader(XAccess(bearer_token=token, api_url=x.url), waiter=waiter or Waiter(scale=0)) as reader:
        return list(reader.pages(username, **options))  # type: ignore[arg-type]


def read_until_error(x: FakeX, *, token: str = fake.BEARER_TOKEN,
                     **options: object) -> tuple[list[Page], ScrapeError]:
    pages: list[Page] = []
    with (pytest.raises(ScrapeError) as caught,
          XReader(XAccess(bearer_token=token, api_url=x.url), waiter=Waiter(scale=0)) as reader):
        pages.extend(reader.pages("jack", **options))  # type: ignore[arg-type]
    return pages, caught.value


@pytest.fixture
def x():  # type: ignore[no-untyped-def]
    with FakeX() as server:
        server.add_user("jack", [tweet(n, f"Post {n}") for n in range(250, 0, -1)])  # newest first
        yield server


# --- reading posts -----------------------------------------------------------------------------------------


def test_reads_the_timeline_newest_first_with_next_token(x: FakeX) -> None:
    pages = read(x)
    assert [page.fetched for page in pages] == [100, 100, 50]
    assert [d.text for page in pages for d in page.documents] == [f"Post {n}" for n in range(250, 0, -1)]
    assert x.server.paths()[0] == "/2/users/by/username/jack"
    assert x.timeline_requests() == [
        {"max_results": "100", "tweet.fields": FIELDS, "exclude": "retweets"},
        {"max_results": "100", "tweet.fields": FIELDS, "exclude": "retweets", "pagination_token": "page-100"},
        {"max_results": "100", "tweet.fields": FIELDS, "exclude": "retweets", "pagination_token": "page-200"},
    ]
    assert {r.headers["authorization"] for r in x.server.requests} == {f"Bearer {fake.BEARER_TOKEN}"}


def test_a_document_keeps_the_whole_text_id_likes_time_and_url() -> None:
    with FakeX() as x:
        x.add_user("Jack", [tweet(3, LONG, likes=42), tweet(2, "Fish &amp; chips <3 & >")])
        (page,) = read(x, "@jack")
    assert page.documents == (
        Document(source="x", external_id="1700000000000000003", text=LONG, author="Jack",
                 created_at=datetime(2023, 11, 15, 1, 13, 20, tzinfo=UTC), score=42,
                 url="https://x.com/Jack/status/1700000000000000003"),
        Document(source="x", external_id="1700000000000000002", text="Fish &amp; chips <3 & >", author="Jack",
                 created_at=datetime(2023, 11, 15, 0, 13, 20, tzinfo=UTC), score=5,
                 url="https://x.com/Jack/status/1700000000000000002"),
    )


def test_replies_are_left_out_unless_asked_and_retweets_by_x_itself() -> None:
    with FakeX() as x:
        x.add_user("jack", [tweet(4, "Mine"), tweet(3, "@ann yes", reply_to="9"), tweet(2, "RT @ann: hi",
                                                                                         retweet_of="8"),
                            tweet(1, "Also mine")])
        (page,) = read(x)
        assert (page.fetched, page.skipped, [d.text for d in page.documents]) == (3, {"reply": 1},
                                                                                  ["Mine", "Also mine"])
        (everything,) = read(x, include_replies=True, include_retweets=True)
        assert [d.text for d in everything.documents] == ["Mine", "@ann yes", "RT @ann: hi", "Also mine"]
        assert x.timeline_requests()[-1] == {"max_results": "100", "tweet.fields": FIELDS}


def test_stops_at_the_limit_and_at_xs_3200() -> None:
    with FakeX() as x:
        x.add_user("jack", [tweet(n, f"Post {n}") for n in range(3300, 0, -1)])
        assert [page.fetched for page in read(x, limit=130)] == [100, 30]
        assert x.timeline_requests()[-1]["max_results"] == "30"
        assert [page.fetched for page in read(x, limit=3)] == [3]  # X sends at least 5; the rest is not kept
        assert x.timeline_requests()[-1]["max_results"] == "5"
        assert sum(page.fetched for page in read(x, limit=10_000)) == 3200


def test_an_account_without_posts_gives_one_empty_page() -> None:
    with FakeX() as x:
        x.add_user("quiet", [])
        assert read(x, "quiet") == [Page(documents=(), fetched=0, skipped={})]


@pytest.mark.parametrize(("text", "name"), [("jack", "jack"), ("@Jack_1", "Jack_1"), (" @jack ", "jack")])
def test_usernames(text: str, name: str) -> None:
    assert x_username(text) == name


def test_a_name_that_cannot_be_an_x_username_is_refused() -> None:
    with pytest.raises(ScrapeError) as caught:
        x_username("jack dorsey")
    assert str(caught.value) == ("'jack dorsey' is not an X username (1-15 letters, digits or _); check the "
                                 "spelling.")


# --- accounts and access that cannot read ------------------------------------------------------------------


def test_an_unknown_account_is_one_sentence(x: FakeX) -> None:
    with pytest.raises(SourceUnavailableError) as caught:
        read(x, "nobody")
    assert str(caught.value) == "X has no account @nobody; check the spelling."


def test_a_protected_account_is_one_sentence() -> None:
    with FakeX() as x:
        user_id = x.add_user("locked", [tweet(1, "Secret")], protected=True)
        with pytest.raises(SourceUnavailableError) as caught:
            read(x, "locked")
    assert str(caught.value) == (f"X will not show @locked's posts (Sorry, you are not authorized to see the user "
                                 f"with id: [{user_id}].); pick another account.")


def test_a_bad_bearer_token_points_to_the_archive(x: FakeX) -> None:
    _, error = read_until_error(x, token="wrong")
    assert str(error) == ("X refused X_BEARER_TOKEN (HTTP 401 Unauthorized); copy the bearer token again from your "
                          f"app in the X developer portal, or {ARCHIVE_HINT}.")


def test_access_that_cannot_read_posts_points_to_the_archive(x: FakeX) -> None:
    x.server.fail(TIMELINE, status=403, body=fake.CLIENT_NOT_ENROLLED)
    _, error = read_until_error(x)
    assert str(error) == ("X_BEARER_TOKEN's API access cannot read posts (HTTP 403 client-not-enrolled); use an "
                          f"app whose plan includes reading posts, or {ARCHIVE_HINT}.")


def test_no_bearer_token_points_to_the_archive(x: FakeX) -> None:
    _, error = read_until_error(x, token="")
    assert str(error) == ("Reading posts from X needs X_BEARER_TOKEN from an app whose plan can read posts; set "
                          f"it, or {ARCHIVE_HINT}.")
    assert x.server.requests == []


# --- rate limits, server errors, broken answers ------------------------------------------------------------


def test_a_429_waits_until_x_rate_limit_reset_then_goes_on(x: FakeX) -> None:
    x.server.fail(TIMELINE, call=2, **fake.rate_limited(reset_in=120))
    waits: list[Wait] = []
    pages = read(x, waiter=Waiter(scale=0, on_wait=waits.append))
    assert sum(page.fetched for page in pages) == 250
    ((service, seconds),) = [(w.service, w.seconds) for w in waits]
    assert service == "X" and 119 <= seconds <= 121  # the reset is a Unix time in whole seconds, plus a second
    assert [q.get("pagination_token") for q in x.timeline_requests()] == [None, "page-100", "page-100", "page-200"]


def test_no_wait_turns_a_rate_limit_into_an_error(x: FakeX) -> None:
    x.server.fail(TIMELINE, call=2, **fake.rate_limited(reset_in=120))
    pages: list[Page] = []
    access = XAccess(bearer_token=fake.BEARER_TOKEN, api_url=x.url)
    with (pytest.raises(RateLimitError) as caught,
          XReader(access, waiter=Waiter(scale=0, no_wait=True)) as reader):
        pages.extend(reader.pages("jack"))
    assert [page.fetched for page in pages] == [100]
    assert re.fullmatch(r"X rate-limited reading @jack's posts until \d\d:\d\d:\d\d; run the command again then, "
                        r"or leave out --no-wait to wait automatically\.", str(caught.value))


def test_a_server_error_is_retried(x: FakeX) -> None:
    x.server.fail(TIMELINE, status=503, body=fake.SERVICE_UNAVAILABLE, call=2)
    assert sum(page.fetched for page in read(x)) == 250
    assert len(x.timeline_requests()) == 4


def test_server_errors_that_persist_end_with_one_sentence_keeping_earlier_pages(x: FakeX) -> None:
    x.server.fail(TIMELINE, status=503, body=fake.SERVICE_UNAVAILABLE, call=2, times=10)
    pages, error = read_until_error(x)
    assert [page.fetched for page in pages] == [100]
    assert str(error) == ("X kept failing (HTTP 503) while reading @jack's posts; what was fetched is kept, so run "
                          "the command again later to continue.")
    assert len(x.timeline_requests()) == 1 + 1 + 3


def test_a_page_that_is_not_json_ends_with_one_sentence(x: FakeX) -> None:
    x.server.fail(TIMELINE, call=3, truncate=True)
    pages, error = read_until_error(x)
    assert [page.fetched for page in pages] == [100, 100]
    assert str(error) == ("X sent an answer for @jack's posts that is not valid JSON; what was fetched is kept, so "
                          "run the command again to continue.")


def test_a_connection_that_drops_mid_page_ends_with_one_sentence(x: FakeX) -> None:
    x.server.fail(TIMELINE, call=2, drop=True)
    pages, error = read_until_error(x)
    assert [page.fetched for page in pages] == [100]
    assert str(error) == ("The connection to X failed while reading @jack's posts (the answer was cut off); what "
                          "was fetched is kept, so check your network and run the command again.")
