"""Tests for bot.novelty: markovify's overlap rule, answered exactly from the suffix index."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import BotError
from bot.novelty import (
    SEARCH_DEPTH,
    SEPARATOR,
    TOKEN_DTYPE,
    NoveltyIndex,
    _sorted_positions,
    normalize,
    overlap_limit,
    split_words,
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog near the old river bank, and then it sleeps all afternoon",
    "Don't count your chickens before they hatch, my grandmother always said.",
    "alpha beta gamma delta",
    "epsilon zeta eta theta",
]


def brute_force_longest_run(corpus: list[str], text: str) -> int:
    """The longest run of consecutive words `text` shares with one document, trying every pair of starts."""
    candidate = split_words(text)
    best = 0
    for document in map(split_words, corpus):
        for i in range(len(candidate)):
            for j in range(len(document)):
                run = 0
                while (
                    i + run < len(candidate)
                    and j + run < len(document)
                    and candidate[i + run] == document[j + run]
                ):
                    run += 1
                best = max(best, run)
    return min(best, SEARCH_DEPTH)


@pytest.fixture(scope="module")
def index() -> NoveltyIndex:
    return NoveltyIndex.build(CORPUS)


def test_words_are_casefolded_and_punctuation_is_ignored():
    assert split_words("Don't STOP, l’eau! Hello,world") == ["don't", "stop", "l’eau", "hello", "world"]
    assert normalize("  Hello,\n  World!  ") == "hello, world!"


@pytest.mark.parametrize(
    ("words", "limit"),
    [(0, 0), (1, 1), (2, 1), (4, 3), (5, 4), (10, 7), (15, 10), (21, 15), (100, 15)],
)
def test_overlap_limit_is_min_15_and_python_round_of_70_percent(words, limit):
    # 5 words: round(3.5) == 4; 15 words: round(10.5) == 10 (Python rounds halves to even, as markovify does).
    assert overlap_limit(words) == limit


def test_a_10_word_candidate_may_share_7_consecutive_words_but_not_8(index):
    shares_7 = "pink purple green fox jumps over the lazy dog near"
    shares_8 = "pink purple brown fox jumps over the lazy dog near"
    assert index.longest_shared_run(shares_7) == 7
    assert index.check(shares_7) is None
    assert index.check(shares_8) == "shares 8 consecutive words with the corpus (limit 7)"


def test_a_5_word_candidate_may_share_4_consecutive_words_but_not_5(index):
    assert index.check("over the lazy dog barked") is None
    assert index.check("over the lazy dog near") == "shares 5 consecutive words with the corpus (limit 4)"


def test_a_copy_of_a_document_is_rejected_after_normalising_case_and_whitespace(index):
    assert index.check("ALPHA  beta\tgamma delta") == "copies a corpus document"
    # Punctuation counts for equality, so this is no copy; but it shares all its 4 words.
    assert index.check("alpha beta gamma delta!") == "shares 4 consecutive words with the corpus (limit 3)"


def test_case_and_punctuation_do_not_hide_a_shared_run(index):
    assert index.longest_shared_run("DON'T count... your CHICKENS") == 4
    assert index.longest_shared_run("Hello, world") == 0


def test_runs_do_not_cross_document_boundaries(index):
    # "delta" ends one document and "epsilon" starts the next: the candidate shares 2 words with each, not 4.
    assert index.longest_shared_run("gamma delta epsilon zeta") == 2


def test_a_word_the_corpus_never_uses_breaks_a_run(index):
    assert index.longest_shared_run("the quick brown zebra jumps over the lazy") == 4


def test_long_copies_are_capped_at_the_search_depth_and_say_so(index):
    copy = CORPUS[0] + " and more words after it"
    assert index.longest_shared_run(copy) == SEARCH_DEPTH
    assert index.check(copy) == "shares at least 16 consecutive words with the corpus (limit 15)"


def test_sizes_and_an_empty_corpus():
    index = NoveltyIndex.build(["one two", "", "three"])
    assert (index.documents, index.words) == (3, 3)
    empty = NoveltyIndex.build([])
    assert (empty.documents, empty.words) == (0, 0)
    assert empty.check("anything at all here") is None
    assert empty.check("") is None


def test_save_and_load_give_the_same_answers(index, tmp_path):
    path = tmp_path / "novelty"  # no .npz suffix: the file is written where it is asked to be
    index.save(path)
    loaded = NoveltyIndex.load(path)
    assert path.exists() and not list(tmp_path.glob("*.partial"))
    assert (loaded.documents, loaded.words) == (index.documents, index.words)
    texts = ["pink purple brown fox jumps over the lazy dog near", "alpha beta gamma delta", "Hello, world"]
    for text in texts:
        assert loaded.check(text) == index.check(text)
        assert loaded.longest_shared_run(text) == index.longest_shared_run(text)


def test_loading_a_file_that_is_no_index_names_the_fix(tmp_path):
    path = tmp_path / "novelty.npz"
    path.write_text("not an index")
    with pytest.raises(BotError, match=r"novelty\.npz cannot be read .*; delete it so it is built again\."):
        NoveltyIndex.load(path)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    corpus=st.lists(st.lists(st.sampled_from("abc"), max_size=40).map(" ".join), max_size=6),
    text=st.lists(st.sampled_from("abcz"), max_size=30).map(" ".join),
)
def test_longest_shared_run_equals_brute_force(corpus, text):
    # Three words make long repeats, ties past 16 words, and runs that would continue across documents.
    assert NoveltyIndex.build(corpus).longest_shared_run(text) == brute_force_longest_run(corpus, text)


def test_longest_shared_run_equals_brute_force_on_candidates_cut_from_the_corpus():
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(30)]
    corpus = [" ".join(rng.choices(vocabulary, k=rng.randint(1, 50))) for _ in range(40)]
    index = NoveltyIndex.build(corpus)
    for _ in range(200):
        source = split_words(rng.choice(corpus))
        start = rng.randrange(len(source))
        text = " ".join(rng.choices(vocabulary, k=3) + source[start : start + rng.randint(1, 25)] + ["w0"])
        assert index.longest_shared_run(text) == brute_force_longest_run(corpus, text)


def test_positions_sort_by_their_first_16_tokens_when_codes_are_too_big_to_pack_three():
    # Codes near 2**30 pack two to an int64, so the sort takes three doubling rounds; a vocabulary that big
    # is too slow to build in a unit test, hence the private function.
    rng = np.random.default_rng(3)
    codes = rng.choice([3, 2**30, 2**30 + 1], size=300).astype(np.int64)
    codes[rng.choice(300, size=20, replace=False)] = SEPARATOR
    tokens = np.concatenate([codes, np.full(SEARCH_DEPTH, SEPARATOR)]).astype(TOKEN_DTYPE)
    positions = _sorted_positions(tokens)
    windows = [tuple(tokens[p : p + SEARCH_DEPTH].tolist()) for p in positions]
    assert sorted(positions.tolist()) == list(range(300))
    assert windows == sorted(windows)
