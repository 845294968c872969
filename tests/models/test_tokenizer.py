"""The tokenizer is word-level and reversible."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import ArtifactError
from models.tokenizer import BOS_ID, EOS_ID, MAJ, SPECIALS, UNK_ID, UP, Tokenizer, fold_case, join, rare_class, split

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


# ---- case markers and rare-word classes (the options `bot train` turns on)

def _cased(documents: list[str], **options: object) -> Tokenizer:
    return Tokenizer.build(documents, case_markers=True, rare_classes=True, **options)


@given(st.text(max_size=200), st.lists(st.text(max_size=40), max_size=5))
@settings(max_examples=500, deadline=None)
def test_case_markers_decode_back_to_exactly_the_text(text: str, others: list[str]) -> None:
    tokenizer = Tokenizer.build([text, *others], min_count=1, case_markers=True)
    assert tokenizer.decode(tokenizer.encode(text, bos=True, eos=True)) == text


@given(st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=4).map(" ".join))
@settings(max_examples=100, deadline=None)
def test_rare_classes_and_markers_are_reversible_within_the_vocabulary(text: str) -> None:
    tokenizer = _cased(ORDINARY + [text], min_count=1)
    ids = tokenizer.encode(text, bos=True, eos=True)
    assert not any(tokenizer.is_rare_class(i) for i in ids)
    assert tokenizer.decode(ids) == text


def test_a_word_shares_one_piece_however_it_is_cased() -> None:
    tokenizer = _cased(["Google buys google", "GOOGLE"], min_count=1)
    maj, up, google = (tokenizer.piece_id(p) for p in (MAJ, UP, " google"))
    assert google not in (UNK_ID,) and not tokenizer.is_rare_class(google)
    assert tokenizer.encode("Google google GOOGLE") == [maj, google, google, up, google]
    assert " Google" not in tokenizer.pieces and " GOOGLE" not in tokenizer.pieces


def test_mixed_case_and_untrippable_case_stay_one_piece() -> None:
    assert fold_case(" iPhone") == (None, " iPhone")
    assert fold_case(" McDonald") == (None, " McDonald")
    assert fold_case(" Straße") == (MAJ, " straße")
    assert fold_case(" STRASSE") == (UP, " strasse")
    assert fold_case(" İstanbul") == (None, " İstanbul")  # "İ".lower() is two characters; no marker gives it back
    assert fold_case(" A") == (MAJ, " a") and fold_case(" HN") == (UP, " hn") and fold_case("!") == (None, "!")


@pytest.mark.parametrize(("piece", "name"), [
    (" Lavabit", "<unk:word>"), ("lavabit", "<unk:^word>"), (" 2048", "<unk:number>"), (" x86", "<unk:alnum>"),
    (" https://a.example/b", "<unk:link>"), (" #rustlang", "<unk:link>"), (" @dang", "<unk:link>"),
    (" —", "<unk:other>"), ("…", "<unk:^other>"), ("\n\n", "<unk:^other>"), (" don't", "<unk:word>"),
])
def test_rare_pieces_are_classed_by_shape(piece: str, name: str) -> None:
    assert rare_class(piece) == name


def test_rare_words_encode_as_their_class_and_are_filled_from_the_training_text_by_frequency() -> None:
    docs = ["the cat sat", "the cat ran", "the Zebra sat", "the zebra ran", "the yak sat", "the 1984 ran"]
    tokenizer = _cased(docs, min_count=3)
    word = tokenizer.piece_id("<unk:word>")
    assert tokenizer.rare["<unk:word>"] == ((" cat", 2), (" zebra", 2), (" yak", 1))  # case folded, then counted
    assert tokenizer.rare["<unk:number>"] == ((" 1984", 1),)
    maj = tokenizer.piece_id(MAJ)
    assert tokenizer.encode("the Quokka sat") == [tokenizer.piece_id(" the"), maj, word, tokenizer.piece_id(" sat")]
    assert tokenizer.unknown_pieces("the Quokka sat 7") == [" Quokka", " 7"]
    rng = np.random.default_rng(0)
    fills = Counter(tokenizer.fill(word, rng) for _ in range(3000))
    assert set(fills) == {" cat", " zebra", " yak"}
    assert 0.33 < fills[" zebra"] / 3000 < 0.47 and 0.13 < fills[" yak"] / 3000 < 0.27  # 2 : 2 : 1
    assert tokenizer.decode([maj, word], np.random.default_rng(1)) in ("Cat", "Zebra", "Yak")
    assert tokenizer.decode([maj, word]) == ""  # without a random generator a class writes nothing
    assert tokenizer.fill(tokenizer.piece_id("<unk:link>"), rng) == "" == tokenizer.decode(
        [tokenizer.piece_id("<unk:link>")], rng)


def test_options_round_trip_through_json_and_old_files_still_load() -> None:
    tokenizer = _cased(ORDINARY, min_count=2)
    loaded = Tokenizer.from_json(tokenizer.to_json())
    assert loaded == tokenizer and loaded.cased and loaded.rare == tokenizer.rare
    legacy = Tokenizer.from_json('{"pieces": ["<pad>", "<unk>", "<bos>", "<eos>", " a"]}')
    assert not legacy.cased and legacy.rare is None and legacy.encode("a A") == [4, UNK_ID]
    with pytest.raises(ArtifactError, match="does not start with the special tokens"):
        Tokenizer(SPECIALS + (" a",), cased=True)
    with pytest.raises(ArtifactError, match="damaged"):
        Tokenizer.from_json('{"pieces": ["<pad>"], "rare": {"<unk:word>": [[" a"]]}}')


def test_a_base_vocabulary_is_kept_id_for_id_and_new_pieces_follow() -> None:
    base = _cased(["the cat sat", "the cat ran", "a dog"], min_count=1)
    grown = Tokenizer.build(["the Llama sat", "a llama ran", "the emu"], min_count=2, base=base)
    assert grown.pieces[:base.size] == base.pieces
    assert grown.pieces[base.size:] == (" llama",)
    assert grown.cased and grown.rare is not None
    assert (" emu", 1) in grown.rare["<unk:word>"]
    legacy = Tokenizer.build(["a b", "a b"], min_count=1)
    assert Tokenizer.build(["c c"], min_count=1, case_markers=True, base=legacy).pieces == legacy.pieces + (" c",)
