"""Tests for bot.filters: each filter's exact rejection, the platform rules, and the batch report."""

import pytest
from pydantic import ValidationError

from bot.errors import ConfigError
from bot.filters import (
    FILTER_NAMES,
    FilterConfig,
    FilterReport,
    FilterSet,
    Rejection,
    platform_length,
)
from bot.novelty import NoveltyIndex

CORPUS = ["the cat sat on the mat all day long", "a stitch in time saves nine"]
URL = "https://example.com/" + "x" * 77  # 97 characters; X counts it as 23


def filters(platform: str = "reddit", **config) -> FilterSet:
    return FilterSet(FilterConfig(**config), platform=platform)


def words(n_chars: int) -> str:
    """A text of exactly `n_chars` characters, many words, nothing any filter objects to."""
    text = ("word " * n_chars)[:n_chars]
    return text[:-1] + "x" if text.endswith(" ") else text


def test_config_defaults_and_typos():
    assert FilterConfig().model_dump() == {
        "min_words": 3,
        "max_chars": None,
        "novelty": True,
        "blocklist": [],
        "default_blocklist": True,
        "allow_mentions": None,
        "allow_links": None,
    }
    with pytest.raises(ValidationError, match="max_char\n  Extra inputs are not permitted"):
        FilterConfig(max_char=100)
    with pytest.raises(ValidationError, match="min_words\n  Input should be greater than or equal to 1"):
        FilterConfig(min_words=0)
    with pytest.raises(ValidationError, match="a blocklist term is empty; remove it"):
        FilterConfig(blocklist=["fine", "  "])


def test_unknown_platform_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^Unknown platform 'myspace'; use one of reddit, x, mastodon, bluesky, "
                                          r"file\.$"):
        filters("myspace")


def test_names_list_the_filters_that_run_in_order():
    index = NoveltyIndex.build(CORPUS)
    assert FilterSet(FilterConfig(), platform="x", novelty=index).names == FILTER_NAMES
    assert filters("reddit").names == ("controls", "length", "duplicate", "blocklist")
    config = FilterConfig(novelty=False, default_blocklist=False)
    assert FilterSet(config, platform="file", novelty=index).names == ("controls", "length", "duplicate")


def test_too_few_words():
    assert filters().check("two words") == Rejection("length", "has 2 words (minimum 3)")
    assert filters().check("One!") == Rejection("length", "has 1 word (minimum 3)")
    assert filters(min_words=1).check("One!") is None


def test_x_counts_every_link_as_23_characters():
    assert platform_length(f"see {URL} and www.example.org/page", platform="x") == 4 + 23 + 5 + 23
    assert platform_length(f"see {URL}", platform="reddit") == 4 + 97
    x = filters("x", allow_links=True)
    assert x.check(words(256) + " " + URL) is None  # 256 + 1 + 23 = 280
    assert x.check(words(257) + " " + URL) == Rejection("length", "is 281 characters long (limit 280)")


def test_reddit_titles_allow_300_characters():
    assert filters("reddit").check(words(300)) is None
    assert filters("reddit").check(words(301)) == Rejection("length", "is 301 characters long (limit 300)")


def test_file_has_no_limit_unless_configured_and_config_never_exceeds_the_platform():
    assert filters("file").check(words(10_000)) is None
    assert filters("file", max_chars=50).check(words(51)) == Rejection(
        "length", "is 51 characters long (limit 50)"
    )
    assert filters("x", max_chars=1000).check(words(281)) == Rejection(
        "length", "is 281 characters long (limit 280)"
    )


def test_novelty_rejects_copies_of_the_corpus_and_can_be_turned_off():
    index = NoveltyIndex.build(CORPUS)
    on = FilterSet(FilterConfig(), platform="reddit", novelty=index)
    assert on.check("A stitch in time saves nine") == Rejection("novelty", "copies a corpus document")
    assert on.check("the cat sat on the mat all day") == Rejection(
        "novelty", "shares 8 consecutive words with the corpus (limit 6)"
    )
    assert on.check("the cat sat on a stitch") is None
    off = FilterSet(FilterConfig(novelty=False), platform="reddit", novelty=index)
    assert off.check("A stitch in time saves nine") is None


def test_duplicates_of_queued_or_posted_texts_after_normalising():
    duplicates = FilterSet(FilterConfig(), platform="reddit", existing=["Hello there, old friend!"])
    assert duplicates.check("  hello THERE,   old friend!") == Rejection(
        "duplicate", "repeats a text already queued or posted"
    )
    assert duplicates.check("hello there old friend") is None  # punctuation makes it a different post


def test_check_does_not_remember_but_accept_does():
    batch = filters()
    assert batch.check("one more time") is None
    assert batch.check("one more time") is None
    assert batch.accept("one more time") is None
    assert batch.accept("One  more time") == Rejection(
        "duplicate", "repeats a text accepted earlier in this batch"
    )


def test_rechecking_an_edit_leaves_the_candidates_own_old_text_out():
    queued = ["the first candidate", "the second candidate"]
    edit_of_second = FilterSet(FilterConfig(), platform="reddit", existing=queued[:1])
    assert edit_of_second.check("the second candidate") is None
    assert edit_of_second.check("the first candidate") == Rejection(
        "duplicate", "repeats a text already queued or posted"
    )


def test_blocklist_matches_whole_words_case_insensitively():
    blocked = filters(blocklist=["ass", "bad  idea"])
    assert blocked.check("a classy glass of water") is None
    assert blocked.check("You ASS, honestly") == Rejection("blocklist", "contains the blocked term 'ass'")
    assert blocked.check("that was a Bad\nIdea indeed") == Rejection(
        "blocklist", "contains the blocked term 'bad idea'"
    )
    assert blocked.check("what the fuck happened") == Rejection(
        "blocklist", "contains the blocked term 'fuck'"
    )


def test_default_blocklist_can_be_turned_off():
    assert filters(default_blocklist=False).check("what the fuck happened") is None
    assert "blocklist" not in filters(default_blocklist=False).names


def test_x_rejects_mentions_but_not_email_addresses():
    x = filters("x")
    assert x.check("thanks @alice for the tip") == Rejection("mentions", "mentions @alice")
    assert x.check("write to bob@example.com today") is None
    assert filters("reddit").check("thanks @alice for the tip") is None
    assert filters("reddit", allow_mentions=False).check("thanks @alice for the tip") == Rejection(
        "mentions", "mentions @alice"
    )
    assert filters("x", allow_mentions=True).check("thanks @alice for the tip") is None


def test_x_rejects_links_and_reddit_allows_them():
    link = "read https://example.com/a now"
    assert filters("x").check(link) == Rejection("links", "contains the link https://example.com/a")
    assert filters("reddit").check(link) is None
    assert filters("file", allow_links=False).check("go to www.example.com now") == Rejection(
        "links", "contains the link www.example.com"
    )


def test_the_first_filter_that_rejects_is_the_one_reported():
    assert filters("x").check("@bob fuck") == Rejection("length", "has 2 words (minimum 3)")
    assert filters("x").check("@bob fuck you") == Rejection("blocklist", "contains the blocked term 'fuck'")


def test_apply_keeps_order_and_counts_rejections_per_filter():
    index = NoveltyIndex.build(CORPUS)
    batch = FilterSet(FilterConfig(), platform="x", novelty=index, existing=["already posted this"])
    report = batch.apply(
        [
            "a fresh new thought",
            "too short",
            "a stitch in time saves nine",
            "Already posted this",
            "a fresh  new thought",
            "fuck this mess",
            "hi @carol how are you",
            "see https://example.com please",
            "another fresh thought",
        ]
    )
    assert report == FilterReport(
        accepted=["a fresh new thought", "another fresh thought"],
        rejected=[
            ("too short", Rejection("length", "has 2 words (minimum 3)")),
            ("a stitch in time saves nine", Rejection("novelty", "copies a corpus document")),
            ("Already posted this", Rejection("duplicate", "repeats a text already queued or posted")),
            ("a fresh  new thought", Rejection("duplicate", "repeats a text accepted earlier in this batch")),
            ("fuck this mess", Rejection("blocklist", "contains the blocked term 'fuck'")),
            ("hi @carol how are you", Rejection("mentions", "mentions @carol")),
            ("see https://example.com please", Rejection("links", "contains the link https://example.com")),
        ],
        counts={"controls": 0, "length": 1, "novelty": 1, "duplicate": 2, "blocklist": 1, "mentions": 1, "links": 1},
    )


def test_counts_name_every_filter_even_when_none_rejects():
    report = filters("reddit").apply(["all is well here"])
    assert report.counts == {"controls": 0, "length": 0, "duplicate": 0, "blocklist": 0}


@pytest.mark.parametrize("text, shown", [
    ("a \x1b[31mred\x1b[0m title", "\\x1b"),  # a terminal escape sequence
    ("a title\x00 with NUL", "\\x00"),
    ("a carriage\rreturn title", "\\r"),
    ("delete \x7f this title", "\\x7f"),
    ("a C1 \x9b31m title", "\\x9b"),
    ("evil \u202egnp.exe title", "\\u202e"),  # right-to-left override: shows "exe.png"
    ("an isolate \u2066here\u2069 title", "\\u2066"),
    ("zero\u200bwidth space title", "\\u200b"),
    ("a byte order \ufeffmark title", "\\ufeff"),
])
def test_control_characters_are_rejected_first_whatever_the_config(text: str, shown: str) -> None:
    expected = Rejection("controls", f"contains the control character {shown}")
    assert filters().check(text) == expected
    assert filters("file", novelty=False, default_blocklist=False, min_words=1).check(text) == expected
    assert filters("x").check(text + " @bob") == expected  # the first filter to reject is the one reported


def test_joiners_are_text_for_emoji_and_scripts() -> None:
    assert filters("file", novelty=False, default_blocklist=False, min_words=1).check(
        "A family \U0001F468\u200d\U0001F469\u200d\U0001F467 and "
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 here") is None


def test_tabs_and_newlines_are_text():
    assert filters().check("a title\twith a tab\nand a second line") is None
