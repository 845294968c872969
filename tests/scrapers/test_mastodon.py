"""The Mastodon scraper against the fake Mastodon: real Mastodon.py code, exact documents, one sentence per failure."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.mastodon import (
    AccountName,
    MastodonAccess,
    MastodonReader,
    home_instance,
    mastodon_account,
    reset_at,
    status_text,
)
from scrapers.waiting import Wait, Waiter
from tests.fakes import mastodon as fake_api
from tests.fakes.mastodon import LOOKUP_PATH, FakeMastodon, rate_limited


def read(fake: FakeMastodon, account: str = "alice", *, token: str | None = None, waiter: Waiter | None = None,
         **options: object) -> list[Page]:
    with MastodonReader(MastodonAccess(api_base_url=fake.url, access_token=token),
                        waiter=waiter or Waiter(scale=0)) as reader:
        return list(reader.pages(account, **options))  # type: ignore[arg-type]


def read_until_error(fake: FakeMastodon, account: str = "alice", *, token: str | None = None,
                     **options: object) -> tuple[list[Page], ScrapeError]:
    pages: list[Page] = []
    with (pytest.raises(ScrapeError) as caught,
          MastodonReader(MastodonAccess(api_base_url=fake.url, access_token=token), waiter=Waiter(scale=0)) as reader):
        pages.extend(reader.pages(account, **options))  # type: ignore[arg-type]
    return pages, caught.value


def statuses_path(account_id: str) -> str:
    return f"/api/v1/accounts/{account_id}/statuses"


@pytest.fixture
def fake() -> FakeMastodon:  # type: ignore[misc]
    with FakeMastodon() as server:
        yield server


@pytest.fixture
def alice(fake: FakeMastodon) -> str:
    """alice, with 90 statuses ("Toot 1" the oldest); her account id."""
    account_id = fake.add_account("alice", display_name="Alice")
    for n in range(1, 91):
        fake.add_status("alice", f"Toot {n}")
    return account_id


# --- reading statuses --------------------------------------------------------------------------------------


def test_reads_the_statuses_newest_first_forty_a_page_by_link_headers(fake: FakeMastodon, alice: str) -> None:
    pages = read(fake)
    assert [page.fetched for page in pages] == [40, 40, 10]
    assert [d.text for page in pages for d in page.documents] == [f"Toot {n}" for n in range(90, 0, -1)]
    assert fake.server.paths()[0] == LOOKUP_PATH and fake.server.requests[0].query == {"acct": "alice"}
    queries = [r.query for r in fake.server.requests[1:]]
    assert queries[0] == {"exclude_reblogs": "1", "exclude_replies": "1", "limit": "40"}
    assert [q.get("max_id") for q in queries] == [None, pages[0].documents[-1].url.rsplit("/", 1)[1],
                                                  pages[1].documents[-1].url.rsplit("/", 1)[1]]
    assert all("authorization" not in r.headers for r in fake.server.requests)  # public statuses need no token
    assert {r.headers["user-agent"] for r in fake.server.requests} == {"mastodonpy"}


def test_a_document_is_the_text_as_posted_with_its_uri_author_time_favourites_and_url(fake: FakeMastodon) -> None:
    fake.add_account("bob")
    status_id = fake.add_status("alice", "Tom & Jerry's <3 @bob #Cats\nsecond line\n\nhttps://example.com/"
                                         "a/very/long/path/that/mastodon/shortens", favourites=7)
    (page,) = read(fake)
    assert page.documents == (Document(
        source="mastodon", external_id=f"{fake.url}/users/alice/statuses/{status_id}",
        text="Tom & Jerry's <3 @bob #Cats\nsecond line\n\nhttps://example.com/a/very/long/path/that/mastodon/shortens",
        author=f"alice@{fake.domain}", created_at=datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC), score=7,
        url=f"{fake.url}/@alice/{status_id}"),)


def test_boosts_and_replies_to_others_are_left_out_unless_asked_and_threads_stay(fake: FakeMastodon) -> None:
    original = fake.add_status("bob", "Worth a boost")
    fake.add_status("alice", "Mine")
    fake.add_boost("alice", original)
    thread = fake.add_status("alice", "A thread, 1/2")
    fake.add_status("alice", "2/2", in_reply_to=thread)
    fake.add_status("alice", "@bob I agree", in_reply_to=original)

    (page,) = read(fake)
    assert (page.fetched, page.skipped) == (3, {})  # Mastodon left out the boost and the reply itself
    assert [d.text for d in page.documents] == ["2/2", "A thread, 1/2", "Mine"]

    (everything,) = read(fake, replies=True, boosts=True)
    assert [d.text for d in everything.documents] == ["@bob I agree", "2/2", "A thread, 1/2", "Worth a boost", "Mine"]
    boosted = everything.documents[3]  # the original's id, author and link: the same document as bob's own
    assert (boosted.external_id, boosted.author) == (f"{fake.url}/users/bob/statuses/{original}", f"bob@{fake.domain}")
    assert fake.server.requests[-1].query == {"limit": "40"}  # Mastodon.py sends a false flag as nothing


def test_followers_only_content_warned_and_empty_statuses_are_counted_not_kept(mastodon_account: FakeMastodon) -> None:
    fake = mastodon_account
    fake.add_status("nnbot", "For my followers", visibility="private")
    fake.add_status("nnbot", "Spoilers inside", spoiler_text="Film ending")
    fake.add_status("nnbot", "")
    fake.add_status("nnbot", "Public")
    fake.add_status("nnbot", "Quiet", visibility="unlisted")
    (page,) = read(fake, "nnbot", token=fake_api.TOKEN)  # the owner's token sees its private statuses too
    assert [d.text for d in page.documents] == ["Quiet", "Public"]
    assert (page.fetched, page.skipped) == (5, {"no_text": 1, "content_warning": 1, "private": 1})
    assert {r.headers["authorization"] for r in fake.server.requests} == {f"Bearer {fake_api.TOKEN}"}


def test_stops_at_the_limit(fake: FakeMastodon, alice: str) -> None:
    assert [page.fetched for page in read(fake, limit=45)] == [40, 5]
    assert [page.fetched for page in read(fake, limit=3)] == [3]
    assert fake.server.requests[-1].query["limit"] == "3"


def test_an_account_without_statuses_gives_one_empty_page(fake: FakeMastodon) -> None:
    fake.add_account("quiet")
    assert read(fake, "quiet") == [Page(documents=(), fetched=0, skipped={})]


# --- naming accounts, and which instance is asked ----------------------------------------------------------


@pytest.mark.parametrize(("text", "name"), [
    ("alice", AccountName("alice", None)), ("@alice", AccountName("alice", None)),
    ("Gargron@mastodon.social", AccountName("Gargron", "mastodon.social")),
    (" @Gargron@Mastodon.Social ", AccountName("Gargron", "mastodon.social")),
    ("https://botsin.space/@some.bot", AccountName("some.bot", "botsin.space")),
    ("alice@127.0.0.1:8080", AccountName("alice", "127.0.0.1:8080"))])
def test_account_names(text: str, name: AccountName) -> None:
    assert mastodon_account(text) == name


def test_a_name_that_cannot_be_a_mastodon_account_is_refused() -> None:
    with pytest.raises(ScrapeError) as caught:
        mastodon_account("alice smith")
    assert str(caught.value) == ("'alice smith' is not a Mastodon account; write it as name@instance, like "
                                 "Gargron@mastodon.social.")


def test_an_account_is_read_on_its_own_instance_and_the_token_goes_only_to_its_own() -> None:
    mine = MastodonAccess(api_base_url="https://botsin.space/", access_token="secret")
    assert home_instance(mastodon_account("alice"), mine) == ("https://botsin.space/", "secret")
    assert home_instance(mastodon_account("alice@BotsIn.Space"), mine) == ("https://botsin.space/", "secret")
    assert home_instance(mastodon_account("Gargron@mastodon.social"), mine) == ("https://mastodon.social", None)
    assert home_instance(mastodon_account("Gargron@mastodon.social"), MastodonAccess()) == (
        "https://mastodon.social", None)
    with pytest.raises(ScrapeError) as caught:
        home_instance(mastodon_account("alice"), MastodonAccess())
    assert str(caught.value) == ("Say which instance @alice is on, like alice@mastodon.social, or set "
                                 "MASTODON_API_BASE_URL to it.")


def test_an_unknown_account_is_one_sentence(fake: FakeMastodon) -> None:
    _, error = read_until_error(fake, "nobody")
    assert isinstance(error, SourceUnavailableError)
    assert str(error) == (f"{fake.domain} has no @nobody@{fake.domain} (HTTP 404: Record not found); check the "
                          "spelling, and that the account is on that instance.")


def test_a_refused_token_says_how_to_make_one(fake: FakeMastodon, alice: str) -> None:
    _, error = read_until_error(fake, token="not-a-token")
    assert str(error) == (f"{fake.domain} refused MASTODON_ACCESS_TOKEN while reading @alice@{fake.domain} (HTTP 401: "
                          "The access token is invalid); make a new token with the read scope (Preferences, "
                          "Development).")


def test_an_instance_that_shows_nothing_without_signing_in_says_what_to_set(fake: FakeMastodon, alice: str) -> None:
    fake.server.fail(LOOKUP_PATH, status=401, body={"error": "This API requires an authenticated user"})
    _, error = read_until_error(fake)
    assert str(error) == (f"{fake.domain} shows @alice@{fake.domain} only to signed-in accounts (HTTP 401: This API "
                          "requires an authenticated user); set MASTODON_API_BASE_URL to that instance and "
                          "MASTODON_ACCESS_TOKEN to a token of an account there.")


# --- rate limits, server errors, broken answers ------------------------------------------------------------


def test_a_429_waits_until_x_ratelimit_reset_then_goes_on(fake: FakeMastodon, alice: str) -> None:
    fake.server.fail(statuses_path(alice), call=2, **rate_limited(reset_in=120))
    waits: list[Wait] = []
    pages = read(fake, waiter=Waiter(scale=0, on_wait=waits.append))
    assert sum(page.fetched for page in pages) == 90
    ((service, seconds),) = [(w.service, w.seconds) for w in waits]
    assert service == fake.domain and 119 <= seconds <= 121  # the reset time, plus a second's margin
    assert [r.query.get("max_id") is not None for r in fake.server.requests[1:]] == [False, True, True, True]


def test_no_wait_turns_a_rate_limit_into_an_error_keeping_what_was_read(fake: FakeMastodon, alice: str) -> None:
    fake.server.fail(statuses_path(alice), call=2, **rate_limited(reset_in=120))
    pages: list[Page] = []
    with (pytest.raises(RateLimitError) as caught,
          MastodonReader(MastodonAccess(api_base_url=fake.url), waiter=Waiter(scale=0, no_wait=True)) as reader):
        pages.extend(reader.pages("alice"))
    assert [page.fetched for page in pages] == [40]
    assert re.fullmatch(rf"{re.escape(fake.domain)} rate-limited reading @alice@{re.escape(fake.domain)}'s statuses "
                        r"until \d\d:\d\d:\d\d; run the command again then, or leave out --no-wait to wait "
                        r"automatically\.", str(caught.value))


def test_a_server_error_is_retried(fake: FakeMastodon, alice: str) -> None:
    fake.server.fail(statuses_path(alice), status=503, body=fake_api.SERVICE_UNAVAILABLE, call=2)
    assert sum(page.fetched for page in read(fake)) == 90
    assert fake.server.count("GET", statuses_path(alice)) == 4


def test_server_errors_that_persist_end_with_one_sentence_keeping_earlier_pages(fake: FakeMastodon,
                                                                                alice: str) -> None:
    fake.server.fail(statuses_path(alice), status=503, body=fake_api.SERVICE_UNAVAILABLE, call=2, times=10)
    pages, error = read_until_error(fake)
    assert [page.fetched for page in pages] == [40]
    assert str(error) == (f"{fake.domain} kept failing (HTTP 503) while reading @alice@{fake.domain}'s statuses; what "
                          "was fetched is kept, so run the command again later to continue.")
    assert fake.server.count("GET", statuses_path(alice)) == 1 + 1 + 3


def test_a_page_that_is_not_json_ends_with_one_sentence(fake: FakeMastodon, alice: str) -> None:
    fake.server.fail(statuses_path(alice), call=3, truncate=True)
    pages, error = read_until_error(fake)
    assert [page.fetched for page in pages] == [40, 40]
    assert str(error) == (f"{fake.domain} sent an answer for @alice@{fake.domain}'s statuses that is not valid JSON; "
                          "what was fetched is kept, so run the command again to continue.")


def test_a_connection_that_drops_mid_page_ends_with_one_sentence(fake: FakeMastodon, alice: str) -> None:
    fake.server.fail(statuses_path(alice), call=2, drop=True)
    pages, error = read_until_error(fake)
    assert [page.fetched for page in pages] == [40]
    assert str(error) == (f"The connection to {fake.domain} failed while reading @alice@{fake.domain}'s statuses (the "
                          "answer was cut off); what was fetched is kept, so check your network and run the command "
                          "again.")


# --- HTML to text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "text"), [
    ("<p>Tom &amp; Jerry&#39;s &lt;3</p><p>second<br />line</p>", "Tom & Jerry's <3\n\nsecond\nline"),
    ('<p>see <a href="https://example.com/a/long/path" rel="nofollow noopener" target="_blank"><span class="invisible">'
     'https://</span><span class="ellipsis">example.com/a/lo</span><span class="invisible">ng/path</span></a></p>',
     "see https://example.com/a/long/path"),
    ('<p>hi <span class="h-card"><a href="https://x.example/@bob" class="u-url mention">@<span>bob</span></a></span> '
     '<a href="https://x.example/tags/cats" class="mention hashtag" rel="tag">#<span>Cats</span></a></p>',
     "hi @bob #Cats"),
    ('<p class="quote-inline">RE: <a href="https://x.example/@bob/1">x.example/@bob/1</a><br/></p><p>Quoted!</p>',
     "Quoted!"),
    ("<p>A list:</p><ul><li>one</li><li>two</li></ul><p>end</p>", "A list:\n\none\ntwo\n\nend"),
    ("", ""), ("plain, no tags", "plain, no tags")])
def test_status_text_is_the_text_that_was_posted(content: str, text: str) -> None:
    assert status_text(content) == text


@pytest.mark.parametrize(("value", "when"), [
    ("2026-12-06T08:15:00.000000Z", datetime(2026, 12, 6, 8, 15, tzinfo=UTC)),
    ("1796544900", datetime(2026, 12, 6, 8, 15, tzinfo=UTC)), ("soon", None), ("", None)])
def test_x_ratelimit_reset_is_read_as_iso_8601_or_a_unix_time(value: str, when: datetime | None) -> None:
    assert reset_at({"X-RateLimit-Reset": value} if value else {}) == when
