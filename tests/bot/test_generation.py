"""Generation: sample from a model, filter, and queue the survivors; novelty from a cached corpus index."""

import shutil
from pathlib import Path

import pytest

from bot import queue
from bot.config import load_settings
from bot.corpus import add_documents
from bot.errors import BotError, NotFoundError
from bot.filters import FilterConfig
from bot.generation import EMPTY, UNFINISHED, generate, novelty_index
from bot.novelty import split_words
from bot.store import open_store
from models.sampler import SamplingSettings
from scrapers.documents import Document


@pytest.fixture
def setup(bot_home: Path, tiny_model_dir: Path, titles: list[str]):  # type: ignore[no-untyped-def]
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("tiny"))
    store = open_store(settings.database_url)
    with store.session() as s:
        add_documents(s, "titles", [Document("file", str(i), t) for i, t in enumerate(titles)])
    yield store, settings
    store.close()


def test_samples_are_filtered_counted_and_queued(setup) -> None:  # type: ignore[no-untyped-def]
    store, settings = setup
    report = generate(store, settings, "tiny", n=60, sampling=SamplingSettings(temperature=1.0, max_tokens=12),
                      seed=1, filters=FilterConfig(min_words=4), enqueue_bot="hn")
    assert report.sampled == 60 == len(report.accepted) + len(report.rejected)
    assert list(report.counts) == [UNFINISHED, EMPTY, "controls", "length", "novelty", "duplicate", "blocklist"]
    assert sum(report.counts.values()) == len(report.rejected)
    assert report.counts[UNFINISHED] == sum(1 for s, _ in report.rejected if not s.complete) > 0
    short = [s.text for s, r in report.rejected if r.filter == "length"]
    assert short and all(len(split_words(t)) < 4 for t in short)  # words as the length filter counts them
    assert all(len(split_words(s.text)) >= 4 for s in report.accepted)
    with store.session() as s:
        queued = queue.list_candidates(s, bot="hn")
        assert [c.text for c in queued] == [x.text for x in report.accepted]
        assert {(c.status, c.model, c.temperature, c.seed) for c in queued} == {("pending", "tiny", 1.0, 1)}


def test_a_repeat_of_a_queued_text_is_a_duplicate(setup) -> None:  # type: ignore[no-untyped-def]
    store, settings = setup
    sampling, filters = SamplingSettings(temperature=0.7, max_tokens=30), FilterConfig(min_words=1)
    first = generate(store, settings, "tiny", n=20, sampling=sampling, seed=5, filters=filters, enqueue_bot="hn")
    assert len(first.accepted) > 0
    # The same seed draws the same texts: what was queued the first time is now a duplicate.
    again = generate(store, settings, "tiny", n=20, sampling=sampling, seed=5, filters=filters, enqueue_bot="hn")
    assert again.accepted == []
    assert again.counts["duplicate"] == len(first.accepted) + first.counts["duplicate"]
    other_bot = generate(store, settings, "tiny", n=20, sampling=sampling, seed=5, filters=filters,
                         enqueue_bot="other")
    assert [x.text for x in other_bot.accepted] == [x.text for x in first.accepted]


def test_copies_of_the_corpus_are_rejected_as_not_novel(setup, titles: list[str]) -> None:  # type: ignore[no-untyped-def]
    store, settings = setup
    with store.session() as s:
        index = novelty_index(s, "titles", settings.bot_home / "cache")
    assert index.check(titles[10]) == "copies a corpus document"
    assert index.check("A completely unseen title about zebras in Lisbon") is None
    cached = list((settings.bot_home / "cache").glob("*.npz"))
    assert len(cached) == 1
    with store.session() as s:
        add_documents(s, "titles", [Document("file", "new", "a brand new title")])
        novelty_index(s, "titles", settings.bot_home / "cache")
    assert [p.name for p in (settings.bot_home / "cache").glob("*.npz")] != [p.name for p in cached]


def test_without_filters_everything_is_kept(setup) -> None:  # type: ignore[no-untyped-def]
    store, settings = setup
    report = generate(store, settings, "tiny", n=10, sampling=SamplingSettings(max_tokens=40), filters=None, seed=3)
    assert list(report.counts) == [UNFINISHED, EMPTY, "controls"]  # never kept, filters or not
    assert len(report.accepted) + report.counts[UNFINISHED] + report.counts[EMPTY] == 10
    assert all(s.complete for s in report.accepted)


def test_a_missing_model_is_named(setup) -> None:  # type: ignore[no-untyped-def]
    store, settings = setup
    with pytest.raises(NotFoundError) as error:
        generate(store, settings, "nope", n=1, sampling=SamplingSettings())
    assert str(error.value) == "There is no model named 'nope'; train one with `bot train CORPUS --model nope`."


def test_a_sample_that_adds_nothing_to_the_prefix_is_rejected(setup) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from models.tokenizer import EOS_ID

    store, settings = setup
    path = settings.model_dir("tiny")
    with np.load(path / "weights.npz") as data:
        weights = {k: data[k] for k in data.files}
    weights["output/bias"][EOS_ID] = 100.0  # every sample ends at once
    np.savez(path / "weights.npz", **weights)
    report = generate(store, settings, "tiny", n=4, sampling=SamplingSettings(), prefix="Show HN:", seed=1,
                      enqueue_bot="hn")
    assert [(s.text, r.filter, r.reason) for s, r in report.rejected] == [
        ("Show HN:", EMPTY, "adds nothing to the prefix")] * 4
    assert report.accepted == [] and report.enqueued == []
    bare = generate(store, settings, "tiny", n=2, sampling=SamplingSettings(), seed=1, filters=None)
    assert [(s.text, r.filter, r.reason) for s, r in bare.rejected] == [("", EMPTY, "is empty")] * 2
    with store.session() as s:
        assert queue.list_candidates(s) == []


@pytest.mark.parametrize("prefix, shown", [("\x1b[31mRed", "\\x1b"), ("Tab\tok but \x00", "\\x00"),
                                           ("C1 \x9b", "\\x9b")])
def test_a_prefix_with_a_control_character_is_refused(setup, prefix: str,  # type: ignore[no-untyped-def]
                                                      shown: str) -> None:
    store, settings = setup
    with pytest.raises(BotError) as error:
        generate(store, settings, "tiny", n=5, sampling=SamplingSettings(), prefix=prefix, enqueue_bot="hn")
    assert str(error.value) == f"The prefix contains the control character {shown}, which no post may hold; remove it."
    with store.session() as s:
        assert queue.list_candidates(s) == []


def test_candidates_carry_the_base_models_score_and_the_most_plausible_are_kept(setup, tiny_model_dir, monkeypatch,
                                                                                 bot) -> None:  # type: ignore
    from models.artifact import load_model
    from models.scoring import Scorer

    store, settings = setup
    plain = generate(store, settings, "tiny", n=30, sampling=SamplingSettings(max_tokens=12), seed=3, filters=None,
                     enqueue_bot="plain")
    assert plain.plausibility == {}  # no base model (the tests' BOT_BASE_MODEL=none): nothing to read with
    with store.session() as s:
        assert {c.plausibility for c in queue.list_candidates(s, bot="plain")} == {None}
    monkeypatch.setenv("BOT_BASE_MODEL", str(tiny_model_dir))
    settings = load_settings()
    report = generate(store, settings, "tiny", n=40, sampling=SamplingSettings(max_tokens=12), seed=2, filters=None,
                      enqueue_bot="hn", enqueue_limit=10)
    base = load_model(tiny_model_dir)
    expected = Scorer(base.config, base.tokenizer, base.weights).score([s.text for s in report.accepted]).mean
    assert sorted(report.plausibility.values()) == pytest.approx(sorted(expected.tolist()))
    best = sorted(report.plausibility.values(), reverse=True)[:10]
    with store.session() as s:
        pending = queue.list_candidates(s, bot="hn", status="pending")
    assert [c.plausibility for c in pending] == pytest.approx(best)  # the ten most plausible, best first
    listed = bot("queue", "list", "--bot", "hn", "--status", "pending", "--json").json
    assert [row["id"] for row in listed] == [c.id for c in pending]
    assert listed[0]["plausibility"] == round(best[0], 4)
