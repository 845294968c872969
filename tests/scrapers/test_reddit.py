"""The Reddit scraper against the fake Reddit: real praw and requests code, exact documents, one-sentence errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.reddit import RedditAccess, SubredditReader, subreddit_name, user_agent
from scrapers.waiting import Wait, Waiter
from tests.fakes import reddit as fake
from tests.fakes.reddit import FakeReddit, post

AGENT = "python:nnbot:0.1.0 (by /u/alice)"
MODES = ("public", "app-only", "password")


def access(reddit: FakeReddit, mode: str, **changes: str) -> RedditAccess:
    credentials = {
        "public": {},
        "app-only": {"client_id": fake.CLIENT_ID, "client_secret": fake.CLIENT_SECRET, "username": fake.USERNAME},
        "password": {"client_id": fake.CLIENT_ID, "client_secret": fake.CLIENT_SECRET, "username": fake.USERNAME,
                     "password": fake.PASSWORD},
    }[mode]
    return RedditAccess(user_agent=AGENT, reddit_url=reddit.www.url, oauth_url=reddit.oauth.url,
                        **{**credentials, **changes})


def read(reddit: FakeReddit, mode: str = "public", subreddit: str = "test", *, waiter: Waiter | None = None,
         **options: object) -> list[Page]:
    with SubredditReader(access(reddit, mode), waiter=waiter or Waiter(scale=0)) as reader:
        return list(reader.pages(subreddit, **options))  # type: ignore[arg-type]


def read_until_error(reddit: FakeReddit, mode: str = "public", *, changes: dict[str, str] | None = None,
                     **options: object) -> tuple[list[Page], ScrapeError]:
    pages: list[Page] = []
    with (pytest.raises(ScrapeError) as caught,
          SubredditReader(access(reddit, mode, **(changes or {})), waiter=Waiter(scale=0)) as reader):
        pages.extend(reader.pages("test", **options))  # type: ignore[arg-type]
    return pages, caught.value


def listing_server(reddit: FakeReddit, mode: str):  # type: ignore[no-untyped-def]
    return reddit.www if mode == "public" else reddit.oauth


def listing_path(mode: str, subreddit: str = "test", sort: str = "top") -> str:
    return f"/r/{subreddit}/{sort}.json" if mode == "public" else f"/r/{subreddit}/{sort}"


@pytest.fixture
def reddit():  # type: ignore[no-untyped-def]
    with FakeReddit() as server:
        server.add("test", [post(n, f"Post number {n}") for n in range(250)])
        yield server


# --- reading listings --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_pages_through_the_listing_with_after(reddit: FakeReddit, mode: str) -> None:
    pages = read(reddit, mode, time="month")
    assert [page.fetched for page in pages] == [100, 100, 50]
    assert [d.text for page in pages for d in page.documents] == [f"Post number {n}" for n in range(250)]
    assert reddit.listing_requests(listing_server(reddit, mode)) == [
        {"t": "month", "limit": "100", "raw_json": "1"},
        {"t": "month", "limit": "100", "after": "t3_p00099", "raw_json": "1"},
        {"t": "month", "limit": "100", "after": "t3_p00199", "raw_json": "1"},
    ]


def test_stops_at_the_limit_and_at_reddits_1000(reddit: FakeReddit) -> None:
    reddit.add("big", [post(n, f"Big {n}", subreddit="big") for n in range(1200)])
    assert [page.fetched for page in read(reddit, subreddit="big", limit=150)] == [100, 50]
    assert reddit.listing_requests(reddit.www)[-1] == {"t": "week", "limit": "50", "after": "t3_p00099",
                                                       "raw_json": "1"}
    assert [page.fetched for page in read(reddit, subreddit="big", limit=5000)] == [100] * 10


def test_hot_and_new_send_no_time(reddit: FakeReddit) -> None:
    assert sum(page.fetched for page in read(reddit, sort="new", limit=100)) == 100
    (request,) = reddit.www.requests
    assert (request.path, request.query) == ("/r/test/new.json", {"limit": "100", "raw_json": "1"})


@pytest.mark.parametrize("mode", MODES)
def test_a_document_keeps_its_id_author_time_score_and_url(mode: str) -> None:
    with FakeReddit() as reddit:
        reddit.add("Python", [post(7, "Tabs &amp; spaces: a &lt;short&gt; history", subreddit="Python",
                                   author="guido", score=4321)])
        (page,) = read(reddit, mode, "Python")
        assert page.documents == (Document(
            source="reddit", external_id="p00007", text="Tabs & spaces: a <short> history", author="guido",
            created_at=datetime(2023, 11, 14, 22, 20, 20, tzinfo=UTC), score=4321,
            url=f"{reddit.www.url}/r/Python/comments/p00007/tabs_amp_spaces_a_lt_short_gt_history/"),)


def test_leaves_out_stickied_removed_deleted_and_nsfw_posts() -> None:
    with FakeReddit() as reddit:
        reddit.add("test", [
            post(1, "Weekly thread", stickied=True),
            post(2, "Spam", removed_by_category="moderator"),
            post(3, "Gone", selftext="[deleted]", author=None, removed_by_category="deleted"),
            post(4, "[removed]"),
            post(5, "Body removed", selftext="[removed]"),
            post(6, "Spicy", over_18=True),
            post(7, "Kept although its author left", author=None),
            post(8, "Kept"),
        ])
        (page,) = read(reddit)
        assert (page.fetched, page.skipped) == (8, {"stickied": 1, "removed": 4, "nsfw": 1})
        assert [(d.text, d.author) for d in page.documents] == [("Kept although its author left", None),
                                                                ("Kept", "alice")]
        (with_nsfw,) = read(reddit, include_nsfw=True)
        assert [d.text for d in with_nsfw.documents] == ["Spicy", "Kept although its author left", "Kept"]


def test_with_body_adds_a_self_posts_text_to_its_title() -> None:
    with FakeReddit() as reddit:
        reddit.add("test", [post(1, "A question", selftext="  Why is the sky blue?\n\nAsking for a friend.  "),
                            post(2, "A link"), post(3, "An empty self post", is_self=True)])
        (plain,) = read(reddit)
        (bodies,) = read(reddit, with_body=True)
    assert [d.text for d in plain.documents] == ["A question", "A link", "An empty self post"]
    assert [d.text for d in bodies.documents] == ["A question\n\nWhy is the sky blue?\n\nAsking for a friend.",
                                                  "A link", "An empty self post"]


# --- credentials, user agent -------------------------------------------------------------------------------


def test_a_script_app_with_a_login_uses_the_password_grant(reddit: FakeReddit) -> None:
    read(reddit, "password", limit=100)
    (token,) = reddit.www.requests
    assert (token.method, token.path, token.form) == (
        "POST", "/api/v1/access_token",
        {"grant_type": "password", "username": fake.USERNAME, "password": fake.PASSWORD})
    assert token.headers["user-agent"].startswith(AGENT + " PRAW/")
    (listing,) = reddit.oauth.requests
    assert list(reddit.tokens.values()) == ["password"]
    assert listing.headers["authorization"] == f"bearer {next(iter(reddit.tokens))}"
    assert listing.headers["user-agent"].startswith(AGENT + " PRAW/")


def test_an_app_without_a_password_gets_an_app_only_token(reddit: FakeReddit) -> None:
    read(reddit, "app-only", limit=100)
    assert [(r.path, r.form) for r in reddit.www.requests] == [
        ("/api/v1/access_token", {"grant_type": "client_credentials"})]
    assert list(reddit.tokens.values()) == ["client_credentials"] and len(reddit.oauth.requests) == 1


def test_without_credentials_only_the_public_listings_are_read(reddit: FakeReddit) -> None:
    read(reddit, limit=100)
    assert reddit.oauth.requests == [] and reddit.www.paths() == ["/r/test/top.json"]
    assert reddit.www.requests[0].headers["user-agent"] == AGENT
    assert "authorization" not in reddit.www.requests[0].headers


def test_the_user_agent_follows_reddits_format() -> None:
    assert user_agent(version="0.1.0", client_id="Xy12", username="alice") == "python:Xy12:0.1.0 (by /u/alice)"
    assert user_agent(version="0.1.0") == "python:nnbot:0.1.0"


@pytest.mark.parametrize(("changes", "message"), [
    ({"client_id": "id"}, ("REDDIT_CLIENT_SECRET is not set; set both REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET "
                           "from your script app, or neither to read Reddit's public listings.")),
    ({"client_secret": "s"}, ("REDDIT_CLIENT_ID is not set; set both REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET "
                              "from your script app, or neither to read Reddit's public listings.")),
    ({"password": "pw"}, "REDDIT_PASSWORD is set but REDDIT_USERNAME is not; set the account's username too."),
    ({"username": "alice", "password": "pw"}, (
        "REDDIT_PASSWORD is set but REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET are not; a login needs a script app "
        "(see the README), or unset REDDIT_PASSWORD to read the public listings.")),
])
def test_half_set_credentials_are_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ScrapeError) as caught:
        RedditAccess(user_agent=AGENT, **changes)
    assert str(caught.value) == message


def test_a_bad_app_id_or_secret_is_one_sentence(reddit: FakeReddit) -> None:
    _, error = read_until_error(reddit, "password", changes={"client_secret": "wrong"})
    assert str(error) == ("Reddit refused REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (HTTP 401); copy both again "
                          "from your script app at https://www.reddit.com/prefs/apps.")
    assert reddit.oauth.requests == []


def test_a_bad_password_is_one_sentence(reddit: FakeReddit) -> None:
    _, error = read_until_error(reddit, "password", changes={"password": "wrong"})
    assert str(error) == ("Reddit refused the login (invalid_grant); check REDDIT_USERNAME and REDDIT_PASSWORD, "
                          "and that the account is a developer of the script app at "
                          "https://www.reddit.com/prefs/apps.")


@pytest.mark.parametrize(("text", "name"), [("AskReddit", "AskReddit"), ("r/AskReddit", "AskReddit"),
                                            ("/r/Ask_Reddit/", "Ask_Reddit")])
def test_subreddit_names(text: str, name: str) -> None:
    assert subreddit_name(text) == name


def test_a_name_that_cannot_be_a_subreddit_is_refused() -> None:
    with pytest.raises(ScrapeError) as caught:
        subreddit_name("ask reddit")
    assert str(caught.value) == ("'ask reddit' is not a subreddit name (2-21 letters, digits or _, like "
                                 "r/AskReddit); check the spelling.")


# --- subreddits that cannot be read ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["public", "password"])
@pytest.mark.parametrize(("reason", "message"), [
    (None, "r/nope does not exist; check the spelling of the subreddit's name."),
    ("gone", "r/nope does not exist; check the spelling of the subreddit's name."),
    ("private", "r/nope is private; only its approved members can read it, so pick another subreddit."),
    ("quarantined", ("r/nope is quarantined; reading it needs an account that opted in on the website, so pick "
                     "another subreddit.")),
    ("banned", "r/nope is banned by Reddit, so it has no posts to read; pick another."),
])
def test_a_subreddit_that_cannot_be_read_says_why(reddit: FakeReddit, mode: str, reason: str | None,
                                                  message: str) -> None:
    if reason:
        reddit.make_unavailable("nope", reason)
    with pytest.raises(SourceUnavailableError) as caught:
        read(reddit, mode, "nope")
    assert str(caught.value) == message


# --- rate limits, server errors, broken answers ------------------------------------------------------------


@pytest.mark.parametrize(("scale", "expected"), [(1.0, [6.0, 6.0]), (0.5, [3.0, 3.0])])
def test_public_listings_are_paced_to_ten_requests_a_minute_times_the_sleep_scale(
        reddit: FakeReddit, scale: float, expected: list[float]) -> None:
    clock, sleeps = [100.0], []  # a clock that moves only when the scraper sleeps

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    read(reddit, waiter=Waiter(scale=scale, sleep=sleep, monotonic=lambda: clock[0]))
    assert sleeps == expected


@pytest.mark.parametrize("mode", MODES)
def test_a_429_is_waited_out_visibly_then_the_page_is_fetched_again(reddit: FakeReddit, mode: str) -> None:
    # Through praw the 429 carries Retry-After only: with x-ratelimit-* headers prawcore's own limiter would
    # sleep for real before the next request, which is praw's handling, not ours to shorten.
    headers = {"retry-after": "42"} if mode != "public" else {
        "x-ratelimit-used": "100", "x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42"}
    listing_server(reddit, mode).fail(listing_path(mode), status=429, call=2, headers=headers,
                                      body={"message": "Too Many Requests", "error": 429})
    waits: list[Wait] = []
    pages = read(reddit, mode, waiter=Waiter(scale=0, on_wait=waits.append))
    assert sum(page.fetched for page in pages) == 250
    assert [(w.service, w.seconds) for w in waits] == [("Reddit", 42.0)]
    assert [q.get("after") for q in reddit.listing_requests(listing_server(reddit, mode))] == [
        None, "t3_p00099", "t3_p00099", "t3_p00199"]


def test_a_used_up_window_is_waited_out_before_the_next_request(reddit: FakeReddit) -> None:
    reddit.ratelimit = {"x-ratelimit-used": "100", "x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "17"}
    waits: list[Wait] = []
    read(reddit, waiter=Waiter(scale=0, on_wait=waits.append))
    assert [(w.service, w.seconds) for w in waits] == [("Reddit", 17.0), ("Reddit", 17.0)]  # before pages 2, 3


@pytest.mark.parametrize("mode", MODES)
def test_no_wait_turns_a_rate_limit_into_an_error(reddit: FakeReddit, mode: str) -> None:
    listing_server(reddit, mode).fail(listing_path(mode), status=429, call=2, headers={"retry-after": "42"})
    pages: list[Page] = []
    with (pytest.raises(RateLimitError) as caught,
          SubredditReader(access(reddit, mode), waiter=Waiter(scale=0, no_wait=True)) as reader):
        pages.extend(reader.pages("test"))
    assert [page.fetched for page in pages] == [100]
    assert re.fullmatch(r"Reddit rate-limited reading r/test until \d\d:\d\d:\d\d; run the command again then, "
                        r"or leave out --no-wait to wait automatically\.", str(caught.value))


@pytest.mark.parametrize("mode", MODES)
def test_a_server_error_is_retried(reddit: FakeReddit, mode: str) -> None:
    listing_server(reddit, mode).fail(listing_path(mode), status=500, call=2,
                                      body={"message": "Internal Server Error", "error": 500})
    assert sum(page.fetched for page in read(reddit, mode)) == 250
    assert len(reddit.listing_requests(listing_server(reddit, mode))) == 4


def test_server_errors_that_persist_end_with_one_sentence_keeping_earlier_pages(reddit: FakeReddit) -> None:
    reddit.www.fail("/r/test/top.json", status=503, call=2, times=10)
    pages, error = read_until_error(reddit)
    assert [page.fetched for page in pages] == [100]
    assert str(error) == ("Reddit kept failing (HTTP 503) while reading r/test; what was fetched is kept, so run "
                          "the command again later to continue.")
    assert len(reddit.www.requests) == 1 + 1 + 3  # page 1, then page 2 and its three retries


@pytest.mark.parametrize("mode", MODES)
def test_a_page_that_is_not_json_ends_with_one_sentence(reddit: FakeReddit, mode: str) -> None:
    listing_server(reddit, mode).fail(listing_path(mode), call=3, truncate=True)
    pages, error = read_until_error(reddit, mode)
    assert [page.fetched for page in pages] == [100, 100]
    assert str(error) == ("Reddit sent a page of r/test that is not valid JSON; what was fetched is kept, so run "
                          "the command again to continue.")


def test_a_connection_that_drops_mid_page_ends_with_one_sentence(reddit: FakeReddit) -> None:
    reddit.www.fail("/r/test/top.json", call=2, drop=True)
    pages, error = read_until_error(reddit)
    assert [page.fetched for page in pages] == [100]
    assert str(error) == ("The connection to Reddit failed while reading r/test (the answer was cut off); what was "
                          "fetched is kept, so check your network and run the command again to continue.")


def test_an_unreachable_reddit_is_one_sentence() -> None:
    with FakeReddit() as reddit:
        url = reddit.www.url
    with (pytest.raises(ScrapeError) as caught,
          SubredditReader(RedditAccess(user_agent=AGENT, reddit_url=url), waiter=Waiter(scale=0)) as reader):
        list(reader.pages("test"))
    assert str(caught.value) == (
        "The connection to Reddit failed while reading r/test (could not connect, or the connection dropped); "
        "what was fetched is kept, so check your network and run the command again to continue.")
