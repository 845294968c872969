"""The base corpus's novelty index (bot.novelty.BaseCorpusIndex): a Bloom filter that must never miss what the exact
index (NoveltyIndex) rejects, and the generation path that checks a model's samples against its base's corpus."""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot import queue
from bot.config import load_settings
from bot.corpus import add_documents
from bot.errors import BotError
from bot.filters import FilterConfig
from bot.generation import base_corpus_indexes, filters_for_candidate, generate
from bot.novelty import BASE_CORPUS_FILE, GRAM_WORDS, BaseCorpusIndex, NoveltyIndex, overlap_limit, split_words
from bot.store import open_store
from models.sampler import SamplingSettings
from scrapers.documents import Document

TITLES = [
    "The quick brown fox jumps over the lazy dog near the old river bank and then sleeps all afternoon",
    "Don't count your chickens before they hatch, my grandmother always said.",
    "alpha beta gamma delta",
    "epsilon zeta eta theta iota",
    "TIL",
]


@pytest.fixture(scope="module")
def index() -> BaseCorpusIndex:
    return BaseCorpusIndex.build(TITLES)


def test_a_copy_of_a_title_is_rejected_whatever_its_case_punctuation_or_spacing(index):
    for copy in ("don't COUNT your chickens before they hatch my grandmother always said",
                 "Alpha, beta... gamma  delta!", "til?"):
        assert index.check(copy) == "copies a title of the base corpus"
    assert index.check("beta gamma delta alpha") is None
    assert (index.titles, index.keys) == (5, 5 + 15 + 7 + 1)  # each title, and the 5-grams of 19, 11 and 5 words


def test_a_10_word_candidate_may_share_7_consecutive_words_but_not_8(index):
    assert overlap_limit(10) == 7
    assert index.check("pink purple green fox jumps over the lazy dog near") is None
    assert (index.check("pink purple brown fox jumps over the lazy dog near")
            == "shares about 8 consecutive words with a base-corpus title (limit 7)")


def test_a_5_word_candidate_may_share_4_consecutive_words_but_not_5(index):
    assert index.check("over the lazy dog barked") is None
    assert (index.check("OVER the lazy, dog near")
            == "shares about 5 consecutive words with a base-corpus title (limit 4)")


def test_what_is_not_caught_runs_across_titles_and_short_phrases_inside_a_longer_title(index):
    # "delta" ends one title and "epsilon" starts the next: no 5-gram of the candidate lies inside one title.
    assert index.check("gamma delta epsilon zeta eta") is None
    # 3 of a title's words in a row: the exact rule's limit for 3 words is 2, but 3 words hold no 5-gram.
    assert NoveltyIndex.build(TITLES).check("quick brown fox") is not None
    assert index.check("quick brown fox") is None


def _candidates(rng: random.Random, titles: list[str], vocabulary: list[str], count: int) -> list[str]:
    """Texts made of title pieces: substrings, pieces spanning two titles, random words around them, whole titles;
    some in upper case or with punctuation, which the rule ignores."""
    texts = []
    for _ in range(count):
        first, second = split_words(rng.choice(titles)), split_words(rng.choice(titles))
        start = rng.randrange(len(first))
        piece = first[start : start + rng.randint(1, 20)]
        kind = rng.randrange(4)
        if kind == 1:
            piece = first[-rng.randint(1, 8):] + second[: rng.randint(1, 8)]
        elif kind == 2:
            piece = rng.choices(vocabulary, k=rng.randint(0, 4)) + piece + rng.choices(vocabulary, k=rng.randint(0, 4))
        elif kind == 3:
            piece = first
        text = " ".join(piece)
        texts.append(text.upper() + "!" if rng.random() < 0.2 else text.replace(" ", ", ", 1))
    return texts


@pytest.mark.parametrize("rate", [0.002, 0.3])
def test_every_copy_the_exact_index_rejects_is_rejected_except_short_phrases_inside_a_title(rate):
    rng = random.Random(11)
    vocabulary = [f"w{i}" for i in range(40)]  # few words: runs shared by chance, and chains across titles
    titles = [" ".join(rng.choices(vocabulary, k=rng.randint(1, 25))) for _ in range(300)]
    exact, bloom = NoveltyIndex.build(titles), BaseCorpusIndex.build(titles, false_positive_rate=rate)
    whole_titles = {tuple(split_words(t)) for t in titles}
    checked = extra = 0
    for text in _candidates(rng, titles, vocabulary, 2000):
        words = split_words(text)
        if exact.check(text) is not None and (len(words) >= GRAM_WORDS or tuple(words) in whole_titles):
            checked += 1
            assert bloom.check(text) is not None, text
        extra += exact.check(text) is None and bloom.check(text) is not None
    assert checked > 800  # the comparison is not vacuous
    assert extra < (400 if rate > 0.01 else 60)  # false rejections: chains across titles, and false positives


def test_save_and_load_give_the_same_answers(index, tmp_path):
    path = tmp_path / BASE_CORPUS_FILE
    index.save(path)
    loaded = BaseCorpusIndex.load(path)
    assert not list(tmp_path.glob("*.partial"))
    assert (loaded.titles, loaded.keys, loaded.hashes, loaded.nbytes) == (
        index.titles, index.keys, index.hashes, index.nbytes)
    assert path.stat().st_size < index.nbytes + 2_000  # the bit array, and a few small headers
    for text in ("pink purple brown fox jumps over the lazy dog near", "alpha beta gamma delta", "Hello, world"):
        assert loaded.check(text) == index.check(text)


def test_hashes_are_the_same_in_another_process(index, tmp_path):
    path = tmp_path / BASE_CORPUS_FILE
    code = f"from bot.novelty import BaseCorpusIndex; BaseCorpusIndex.build({TITLES!r}).save({str(path)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": "123"},
                   cwd=Path(__file__).resolve().parents[2])
    loaded = BaseCorpusIndex.load(path)
    assert loaded.check("Alpha beta gamma delta") == "copies a title of the base corpus"
    assert loaded.check("pink purple brown fox jumps over the lazy dog near") == index.check(
        "pink purple brown fox jumps over the lazy dog near")


@pytest.mark.parametrize("content", [b"not an index", b""])
def test_loading_a_file_that_is_no_index_names_the_fix(tmp_path, content):
    path = tmp_path / BASE_CORPUS_FILE
    path.write_bytes(content)
    with pytest.raises(BotError, match=r"base-corpus\.npz cannot be read .*; rebuild it with `python "
                                       r"bench/base_model\.py build-novelty --out DIR`, or delete it"):
        BaseCorpusIndex.load(path)


def test_an_exact_index_file_is_no_base_corpus_index(tmp_path):
    path = tmp_path / BASE_CORPUS_FILE
    NoveltyIndex.build(TITLES).save(path)
    with pytest.raises(BotError, match="cannot be read"):
        BaseCorpusIndex.load(path)


# ---- the generation path


@pytest.fixture
def setup(bot_home: Path, tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny model, whose own corpus ("titles") here is one title it never recites: the base catches copies."""
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("tiny"))
    store = open_store(settings.database_url)
    with store.session() as s:
        add_documents(s, "titles", [Document("file", "1", "One title about zebras in Lisbon that nobody recites")])
    yield store, settings
    store.close()


def _with_base(tiny_model_dir: Path, folder: Path, titles: list[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore
    """A base model folder (the tiny model) that carries the index of `titles`; BOT_BASE_MODEL points at it."""
    shutil.copytree(tiny_model_dir, folder)
    index = BaseCorpusIndex.build(titles)
    index.save(folder / BASE_CORPUS_FILE)
    monkeypatch.setenv("BOT_BASE_MODEL", str(folder))
    return index, load_settings()


def test_generate_rejects_copies_of_the_base_corpus(setup, tiny_model_dir, tmp_path, monkeypatch) -> None:  # type: ignore
    store, settings = setup
    sampling, filters = SamplingSettings(temperature=0.7, max_tokens=30), FilterConfig(min_words=1)
    plain = generate(store, settings, "tiny", n=30, sampling=sampling, seed=5, filters=filters)
    texts = [s.text for s in plain.accepted]
    assert len(texts) >= 4
    index, settings = _with_base(tiny_model_dir, tmp_path / "base", texts[::2], monkeypatch)  # half are base titles
    report = generate(store, settings, "tiny", n=30, sampling=sampling, seed=5, filters=filters)
    assert [s.text for s in report.accepted] == [t for t in texts if index.check(t) is None]
    assert len(report.accepted) < len(texts)
    reasons = {s.text: (r.filter, r.reason) for s, r in report.rejected}
    assert {reasons[t] for t in texts[::2]} == {("novelty", "copies a title of the base corpus")}
    assert report.counts["novelty"] == sum(1 for _, r in report.rejected if r.filter == "novelty")


def test_an_edit_that_copies_a_base_title_is_refused(setup, tiny_model_dir, tmp_path, monkeypatch) -> None:  # type: ignore
    store, settings = setup
    report = generate(store, settings, "tiny", n=20, sampling=SamplingSettings(temperature=0.7, max_tokens=30),
                      seed=5, filters=FilterConfig(min_words=1), enqueue_bot="hn")
    candidate_id = report.enqueued[0].id
    _, settings = _with_base(tiny_model_dir, tmp_path / "base", [TITLES[0]], monkeypatch)
    with store.session() as session:
        candidate = queue.get_candidate(session, candidate_id)
        filters = filters_for_candidate(session, settings, candidate, None)
        with pytest.raises(BotError) as error:
            queue.edit(session, candidate_id, TITLES[0].upper(), filters)
        assert str(error.value) == ("The edit was not saved: the novelty filter rejects it (copies a title of the base "
                                    "corpus).")
        with pytest.raises(BotError) as error:
            queue.edit(session, candidate_id, "One title about zebras in Lisbon that nobody recites", filters)
        assert "(copies a corpus document)" in str(error.value)  # the model's own corpus is still checked
        queue.edit(session, candidate_id, "A fresh title about zebras and Lisbon", filters)


def test_the_indexes_come_from_the_recorded_base_and_the_default_base_once_each(tmp_path, monkeypatch) -> None:
    for name in ("recorded", "default"):
        (tmp_path / name).mkdir()
        BaseCorpusIndex.build(TITLES[:2] if name == "recorded" else TITLES[2:]).save(tmp_path / name / BASE_CORPUS_FILE)
    recorded = {"base": {"name": "recorded", "path": str(tmp_path / "recorded")}}
    settings = load_settings()  # BOT_BASE_MODEL=none, as in every test
    assert base_corpus_indexes(settings, {}) == []
    (only,) = base_corpus_indexes(settings, recorded)
    assert base_corpus_indexes(settings, recorded) == [only]  # loaded once per process
    assert base_corpus_indexes(settings, {"base": {"path": str(tmp_path / "gone")}}) == []
    monkeypatch.setenv("BOT_BASE_MODEL", str(tmp_path / "default"))
    both = base_corpus_indexes(load_settings(), recorded)
    assert [i.titles for i in both] == [2, 3]
    assert len(base_corpus_indexes(load_settings(), {"base": {"path": str(tmp_path / "default")}})) == 1
