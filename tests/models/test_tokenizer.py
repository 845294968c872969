"""The tokenizer is word-level and reversible."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import ArtifactError
from models.tokenizer import BOS_ID, EOS_ID, SPECIALS, UNK_ID, Tokenizer, join, split

ORDINARY = [
    "Show HN: I built a thing in 3 days!",
    "Don't fly during Ramadan",
    "“Quoted” text — with a dash… and (parentheses).",
    "Why I'm leaving @github for #rustlang 🚀🔥",
    "See https://example.com/a/b?c=1&d=2. Really",
    "Spaces  twice, a tab\tand\na newline",
    "  leading and trailing  ",
    "UK votes to leave EU",
    "I ❤️ NY 👨‍👩‍👧",
    "C++ vs. C# vs. F#: 1.5x faster?",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_split_join_gives_back_the_text(text: str) -> None:
    assert join(split(text)) == text


@given(st.text(max_size=200))
@settings(max_examples=500, deadline=None)
def test_split_join_is_reversible_for_any_text(text: str) -> None:
    assert join(split(text)) == text


@given(st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=5).map(" ".join))
@settings(max_examples=100, deadline=None)
def test_encode_decode_is_reversible_within_the_vocabulary(text: str) -> None:
    tokenizer = Tokenizer.build(ORDINARY + [text], min_count=1)
    assert tokenizer.decode(tokenizer.encode(text, bos=True, eos=True)) == text


def test_pieces_keep_case_punctuation_urls_hashtags_and_mentions() -> None:
    assert split("Why I'm leaving @github for #rustlang!") == [
        " Why", " I'm", " leaving", " @github", " for", " #rustlang", "!"]
    assert split("See https://example.com/a. Now") == [" See", " https://example.com/a", ".", " Now"]
    assert split("Hello,  world") == [" Hello", ",", " ", " world"]


def test_a_first_word_is_the_same_piece_as_a_later_one() -> None:
    assert split("Apple")[0] == split("I like Apple")[-1] == " Apple"


def test_vocabulary_keeps_frequent_pieces_and_caps_its_size() -> None:
    docs = ["a b c", "a b", "a", "d"]
    tokenizer = Tokenizer.build(docs, max_vocab=6, min_count=1)
    assert tokenizer.pieces == SPECIALS + (" a", " b")
    assert Tokenizer.build(docs, min_count=2).pieces == SPECIALS + (" a", " b")


def test_unknown_pieces_encode_as_unk_and_documents_are_framed() -> None:
    tokenizer = Tokenizer.build(["a b", "a b"], min_count=1)
    assert tokenizer.encode("a zebra b", bos=True, eos=True) == [BOS_ID, 4, UNK_ID, 5, EOS_ID]
    assert tokenizer.unknown_pieces("a zebra b") == [" zebra"]
    assert tokenizer.decode([BOS_ID, 4, 5, EOS_ID]) == "a b"


def test_corpus_stream_frames_every_document() -> None:
    tokenizer = Tokenizer.build(["a b", "b"], min_count=1)  # " b" is the more frequent piece: id 4
    assert tokenizer.encode_corpus(["a b", "b a"]).tolist() == [BOS_ID, 5, 4, EOS_ID, BOS_ID, 4, 5, EOS_ID]


def test_json_round_trip_and_damage() -> None:
    tokenizer = Tokenizer.build(ORDINARY, min_count=1)
    assert Tokenizer.from_json(tokenizer.to_json()) == tokenizer
    with pytest.raises(ArtifactError, match="The tokenizer file is damaged"):
        Tokenizer.from_json("{not json")
    with pytest.raises(ArtifactError, match="does not start with the special tokens"):
        Tokenizer(("a", "b"))
