"""The jobs' work: refill to the queue size, scrape the bot's sources, retrain and swap the model atomically."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import registry
from bot.config import load_bots_file, load_settings
from bot.corpus import add_documents, load_texts
from bot.service import jobs
from bot.store.schema import Candidate, JobRun
from bot.training import TRAINING_PREFIX, VERSIONS, TrainingCancelled, retrain
from scrapers.documents import Document
from tests.bot.service.helpers import file_bot, write_bots
from tests.fakes.reddit import FakeReddit, post


def runtime_for(store, config: Path) -> jobs.Runtime:  # type: ignore[no-untyped-def]
    moved: dict[str, object] = {}
    runtime = jobs.Runtime(store=store, settings=load_settings(), bots=load_bots_file(config), owner="test",
                           reschedule=lambda job, when: moved.__setitem__(job, when))
    runtime.moved = moved  # type: ignore[attr-defined]
    return runtime


def documents(texts: list[str]) -> list[Document]:
    return [Document(source="file", external_id=str(i), text=t) for i, t in enumerate(texts)]


@pytest.fixture
def with_model(store, tiny_model_dir: Path, titles: list[str]) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))
    with store.session() as s:
        for corpus in ("titles", "fb"):
            add_documents(s, corpus, documents(titles))


def test_refill_fills_the_queue_to_its_size_and_no_further(store, tmp_path, with_model) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra="queue_size = 7"))
    runtime = runtime_for(store, config)
    first = jobs.run_job(runtime, "fb", "refill")
    assert first.outcome == "ok" and first.message.startswith("queued 7 of 7 wanted from ")
    assert first.message.endswith("; 7 of 7 ready")
    second = jobs.run_job(runtime, "fb", "refill")
    assert (second.outcome, second.message) == ("nothing", "the queue holds 7 of 7 candidates")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Candidate)) == 7
        assert [(r.job, r.outcome) for r in s.scalars(select(JobRun).order_by(JobRun.id))] == [
            ("refill", "ok"), ("refill", "nothing")]


def test_a_job_error_is_recorded_in_one_sentence(store, tmp_path) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot("fb"))
    result = jobs.run_job(runtime_for(store, config), "fb", "refill")
    assert (result.outcome, result.message) == (
        "error", "model 'fb' does not exist and corpus 'fb' holds no texts to train it on (the bot has no sources); "
                 "import some with `bot import FILE --corpus fb` or give the bot sources in bots.toml")
    with store.session() as s:
        run = s.scalars(select(JobRun)).one()
        assert (run.bot, run.job, run.outcome, run.message) == ("fb", "refill", "error", result.message)
        assert run.finished_at is not None and run.owner == "test"


def test_a_new_bots_first_refill_scrapes_its_sources_then_trains_its_model_then_fills(store, tmp_path,
                                                                                      fake_reddit: FakeReddit) -> None:
    fake_reddit.add("python", [post(n, f"Python title number {n} about packaging and tests", subreddit="python")
                               for n in range(60)])
    extra = ('sources = [{ type = "reddit", subreddits = ["python"] }]\nqueue_size = 3\n'
             '[bot.training]\npreset = "tiny"\nmax_minutes = 0.05\n[bot.filters]\nnovelty = false\nmin_words = 1')
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra=extra))
    runtime = runtime_for(store, config)
    result = jobs.run_job(runtime, "fb", "refill")
    assert result.outcome == "ok", result.message
    assert result.message.startswith("first run: added 60 new documents to corpus 'fb'; model 'fb' retrained: ")
    assert "; then queued 3 of 3 wanted from " in result.message
    assert registry.load(load_settings(), "fb").info["corpus"] == "fb"
    again = jobs.run_job(runtime, "fb", "refill")  # the model exists now: no second first run
    assert (again.outcome, again.message) == ("nothing", "the queue holds 3 of 3 candidates")


def test_scrape_reads_the_bots_sources_into_its_corpus(store, tmp_path, fake_reddit: FakeReddit) -> None:
    fake_reddit.add("python", [post(n, f"Python title number {n}", subreddit="python") for n in range(30)])
    (tmp_path / "more.txt").write_text("A line from a file\nAnother line from it\n")
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra=(
        f'sources = [{{ type = "reddit", subreddits = ["python"] }}, {{ type = "file", path = "{tmp_path}/more.txt" }}]')))
    runtime = runtime_for(store, config)
    result = jobs.run_job(runtime, "fb", "scrape")
    assert (result.outcome, result.message) == ("ok", "added 32 new documents to corpus 'fb'")
    assert jobs.run_job(runtime, "fb", "scrape").message == "added 0 new documents to corpus 'fb'"
    with store.session() as s:
        assert len(load_texts(s, "fb")) == 32


def test_retraining_swaps_the_new_model_in_and_keeps_the_old_one_until_then(store, tmp_path, with_model) -> None:
    settings = load_settings()
    old = registry.load(settings, "fb").weights["embedding"].copy()
    stopping = threading.Event()
    stopping.set()  # a retrain cut off by the service stopping: nothing changes
    with pytest.raises(TrainingCancelled):
        retrain(store, settings, "fb", "fb", "tiny", max_minutes=1, stopping=stopping)
    link = settings.model_dir("fb")
    assert not link.is_symlink() and (registry.load(settings, "fb").weights["embedding"] == old).all()
    assert list((settings.models_dir / VERSIONS).rglob("*.npz")) == []  # the cut-off version was removed
    killed = settings.models_dir / VERSIONS / "fb" / f"{TRAINING_PREFIX}20261206T000000000000"
    killed.mkdir(parents=True)  # what a training whose process was killed leaves
    (killed / "weights.npz").write_bytes(b"half")
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra='[bot.training]\npreset = "tiny"\nmax_minutes = 1'))
    result = jobs.run_job(runtime_for(store, config), "fb", "train")
    assert result.outcome == "ok" and result.message.startswith("model 'fb' retrained: held-out perplexity ")
    assert link.is_symlink() and link.resolve().parent == (settings.models_dir / VERSIONS / "fb").resolve()
    new = registry.load(settings, "fb")
    assert new.metrics["budget"]["minutes"] == 1  # trained to the job's time limit (models.budget)
    assert new.info["corpus"] == "fb" and not (new.weights["embedding"].shape == old.shape
                                               and (new.weights["embedding"] == old).all())
    versions = sorted(p.name for p in (settings.models_dir / VERSIONS / "fb").iterdir())
    # the model `bot train` made, kept as a version; the killed training's folder removed by this one
    assert len(versions) == 2 and versions[1].endswith("-trained") and not killed.exists()
    assert [m.name for m in registry.list_models(settings)] == ["fb"]


@pytest.mark.parametrize("base", [True, False])
def test_the_train_job_fine_tunes_the_base_model_unless_the_bot_says_base_false(store, tmp_path, with_model,
                                                                              tiny_model_dir, monkeypatch,
                                                                              base: bool) -> None:
    monkeypatch.setenv("BOT_BASE_MODEL", str(tiny_model_dir))  # the base, as the shipped one would be
    extra = f'[bot.training]\npreset = "auto"\nmax_minutes = 0.05\nbase = {str(base).lower()}'
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra=extra))
    result = jobs.run_job(runtime_for(store, config), "fb", "train")
    assert result.outcome == "ok", result.message
    model = registry.load(load_settings(), "fb")
    if base:
        assert model.info["base"]["path"] == str(tiny_model_dir.resolve())
        assert model.config.hidden_dim == 32  # the base's shape, whatever the preset's
    else:
        assert "base" not in model.info
