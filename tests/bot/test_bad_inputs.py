"""Every bad input to training, generation and the queue gets one sentence and stores nothing (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, func, select, update

from bot import queue
from bot.cli import context
from bot.corpus import add_documents
from bot.store import Store
from bot.store.schema import Candidate, StoredDocument
from models.sampler import Sample
from models.tokenizer import EOS_ID, SPECIALS
from scrapers.documents import Document
from tests.bot.service.helpers import file_bot, write_bots

Bot = Callable[..., Any]  # the `bot` fixture: runs `bot ARGS…` in-process, returns what it printed
RECORD = queue.SamplingRecord(model="tiny", temperature=0.8, top_k=0, top_p=1.0, prefix=None, seed=None)


@pytest.fixture
def cli_store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The store the CLI opens, on SQLite and on PostgreSQL."""
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    context.settings.cache_clear()
    context.store.cache_clear()
    yield context.store()
    context.store().close()
    context.store.cache_clear()


@pytest.fixture
def models(bot_home: Path, tiny_model_dir: Path, titles: list[str], cli_store: Store) -> Path:
    """The tiny model as BOT_HOME/models/tiny, and its corpus `titles` in the store."""
    root = context.settings().models_dir
    shutil.copytree(tiny_model_dir, root / "tiny")
    with cli_store.session() as s:
        add_documents(s, "titles", [Document("file", str(i), t) for i, t in enumerate(titles)])
    return root


@pytest.fixture
def bots_toml(tmp_path: Path) -> Path:
    return write_bots(tmp_path / "bots.toml", file_bot("fb"))


def candidates(store: Store) -> list[tuple[str, str, str | None]]:
    with store.session() as s:
        return [(c.text, c.status, c.reason) for c in s.scalars(select(Candidate).order_by(Candidate.id))]


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def changed_weights(models: Path, name: str, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """A copy of the tiny model named `name`, with `change(weights)` applied."""
    shutil.copytree(models / "tiny", models / name)
    with np.load(models / name / "weights.npz") as data:
        weights = {k: data[k] for k in data.files}
    change(weights)
    np.savez(models / name / "weights.npz", **weights)


# ---- 1. resume: the same corpus, its documents unchanged (new ones welcome), the model's own preset


def test_resume_refuses_another_corpus_a_changed_one_and_a_new_preset(bot: Bot, cli_store: Store,
                                                                      titles: list[str]) -> None:
    with cli_store.session() as s:
        add_documents(s, "hn", [Document("file", str(i), t) for i, t in enumerate(titles[:300])])
        add_documents(s, "other", [Document("file", str(i), t) for i, t in enumerate(titles[300:600])])
    trained = bot("train", "hn", "--model", "t", "--preset", "tiny", "--epochs", "1")
    assert trained.code == 0, trained.err
    model_dir = context.settings().model_dir("t")
    before = files(model_dir)

    def refused(*args: str) -> str:
        run = bot("train", *args)
        assert run.code == 1 and files(model_dir) == before  # the model is as it was
        return run.err

    assert refused("other", "--model", "t", "--resume") == (
        "Error: Model 't' was trained on corpus 'hn', not 'other'; resume it on 'hn', or train a new model on "
        "'other'.\n")
    assert refused("hn", "--model", "t", "--resume", "--preset", "small") == (
        "Error: A resumed model keeps the settings it was trained with, so --preset cannot change on --resume; "
        "leave --preset out, or train a new model with --preset small.\n")

    with cli_store.session() as s:
        first = s.scalars(select(StoredDocument).order_by(StoredDocument.id)).first()
        original = first.text
        first.text = "An edited title"
    assert refused("hn", "--model", "t", "--resume") == (
        "Error: Model 't' cannot resume on corpus 'hn' because documents the model was trained on were edited or "
        "removed since; a resume may only add documents, so train it again with --force.\n")
    with cli_store.session() as s:
        s.execute(update(StoredDocument).where(StoredDocument.text == "An edited title").values(text=original))
        add_documents(s, "hn", [Document("file", f"new{i}", t) for i, t in enumerate(titles[600:650])])

    # Documents added since are fine, and so is the model's own preset.
    resumed = bot("train", "hn", "--model", "t", "--resume", "--preset", "tiny", "--epochs", "2", "--json")
    assert resumed.code == 0, resumed.err
    assert (resumed.json["epochs"], resumed.json["preset"]) == (2, "tiny") and "resuming at epoch 2" in resumed.err
    before = files(model_dir)

    with cli_store.session() as s:
        s.execute(delete(StoredDocument).where(StoredDocument.external_id.in_([str(i) for i in range(60)])))
    recorded = json.loads((model_dir / "config.json").read_text())["documents"]  # 350 once epoch 2 was the best
    assert recorded in (300, 350)
    assert refused("hn", "--model", "t", "--resume") == (
        f"Error: Model 't' cannot resume on corpus 'hn' because the corpus has 290 documents, fewer than the "
        f"{recorded} the model was trained on; a resume may only add documents, so train it again with --force.\n")
    assert refused("nope", "--model", "ghost", "--resume") == (
        "Error: There is no model named 'ghost' to resume; train it without --resume first.\n")


# ---- 2. --enqueue names a bot of bots.toml


def test_enqueue_to_a_bot_no_bots_toml_names_is_refused(bot: Bot, models: Path, bots_toml: Path,
        cli_store: Store) -> None:
    run = bot("generate", "tiny", "--n", "5", "--seed", "1", "--enqueue", "ghostbot")
    assert (run.code, run.out, run.err) == (1, "", (
        "Error: There is no bots.toml, so no bot 'ghostbot' would read the queue; add the bot to bots.toml "
        "(in BOT_HOME, or pass it with --config) first.\n"))
    context.bots.cache_clear()  # each `bot` command is a process of its own; here they share one
    run = bot("--config", str(bots_toml), "generate", "tiny", "--n", "5", "--seed", "1", "--enqueue", "ghostbot")
    assert (run.code, run.out, run.err) == (1, "", (
        f"Error: No bot named 'ghostbot' is in {bots_toml}, so nothing would read its queue; check the name, or pass "
        "the file that names it with --config.\n"))
    assert candidates(cli_store) == []
    queued = bot("--config", str(bots_toml), "generate", "tiny", "--n", "20", "--seed", "1", "--enqueue", "fb",
                 "--json")
    assert queued.code == 0, queued.err
    assert len(candidates(cli_store)) == len(queued.json["enqueued"]) > 0


# ---- 3. a sample that is only the prefix


def test_a_sample_that_is_only_the_prefix_is_rejected(bot: Bot, models: Path, bots_toml: Path,
        cli_store: Store) -> None:
    def ends_at_once(weights: dict[str, np.ndarray]) -> None:
        weights["output/bias"][EOS_ID] = 100.0

    changed_weights(models, "terse", ends_at_once)
    run = bot("--config", str(bots_toml), "generate", "terse", "--n", "3", "--seed", "1", "--prefix", "Show HN:",
              "--enqueue", "fb")
    assert (run.code, run.out) == (0, "")
    assert run.err.splitlines()[1:] == ["  rejected (empty: adds nothing to the prefix): Show HN:"] * 3
    assert run.err.startswith("3 sampled in ") and "rejected: empty 3; 0 queued for bot 'fb'." in run.err
    unfiltered = bot("--config", str(bots_toml), "generate", "terse", "--n", "2", "--prefix", "Show HN:",
                     "--no-filter", "--json").json
    assert unfiltered["accepted"] == [] and unfiltered["rejections"] == {"unfinished": 0, "empty": 2, "controls": 0}
    assert candidates(cli_store) == []


# ---- 4. non-finite sampling settings


TEMPERATURE = "Error: Invalid value for '--temperature': use a finite number from 0.01 up (0.5 to 1.0 is usual)\n"
TOP_P = "Error: Invalid value for '--top-p': use a number from 0.01 to 1\n"


@pytest.mark.parametrize("option, value, error", [
    ("--temperature", "inf", TEMPERATURE), ("--temperature", "nan", TEMPERATURE), ("--temperature", "0", TEMPERATURE),
    ("--top-p", "inf", TOP_P), ("--top-p", "nan", TOP_P), ("--top-p", "1.5", TOP_P),
])
def test_non_finite_sampling_settings_are_refused(bot: Bot, models: Path, bots_toml: Path, cli_store: Store,
                                                  option: str, value: str, error: str) -> None:
    run = bot("--config", str(bots_toml), "generate", "tiny", option, value, "--enqueue", "fb")
    assert run.code == 2 and run.err.endswith("\n\n" + error) and "RuntimeWarning" not in run.err
    assert candidates(cli_store) == []


# ---- 5, 6. damaged weights


def test_nan_weights_and_a_damaged_weights_file_are_named(bot: Bot, models: Path, bots_toml: Path,
        cli_store: Store) -> None:
    def poison(weights: dict[str, np.ndarray]) -> None:
        weights["embedding"][5, 0] = np.nan

    changed_weights(models, "nan", poison)
    run = bot("--config", str(bots_toml), "generate", "nan", "--enqueue", "fb")
    assert (run.code, run.err) == (1, (f"Error: {models / 'nan' / 'weights.npz'} holds NaN or infinite values (in "
                                       "embedding), so the model is damaged; retrain it.\n"))
    shutil.copytree(models / "tiny", models / "broken")
    (models / "broken" / "weights.npz").write_bytes(b"this is no zip file")
    run = bot("--config", str(bots_toml), "generate", "broken", "--enqueue", "fb")
    assert (run.code, run.err) == (1, (f"Error: {models / 'broken' / 'weights.npz'} is damaged or is not a model's "
                                       "weights; retrain the model or restore the file.\n"))
    assert candidates(cli_store) == []


# ---- 7. a rejected candidate approved again keeps its rejection on record


def test_approving_a_rejected_candidate_keeps_the_rejection_visible(bot: Bot, cli_store: Store) -> None:
    with cli_store.session() as s:
        [cid] = [c.id for c in queue.enqueue(s, "fb", [Sample("A title to judge", -9.0, 5, True)], RECORD)]
    assert bot("queue", "reject", str(cid), "--reason", "dull").out == f"Rejected candidate {cid}.\n"
    assert bot("queue", "approve", str(cid)).out == f"Approved candidate {cid}.\n"
    assert candidates(cli_store) == [("A title to judge", "approved", "approved again after rejection (was: dull)")]
    (listed,) = bot("queue", "list", "--json").json
    assert (listed["status"], listed["reason"]) == ("approved", "approved again after rejection (was: dull)")
    help_text = " ".join(bot("queue", "reject", "--help").out.split())
    assert "Reject candidates; they are kept, and never posted unless approved again." in help_text


# ---- 9. control characters


def test_a_prefix_with_control_characters_is_refused(bot: Bot, models: Path, bots_toml: Path,
        cli_store: Store) -> None:
    run = bot("--config", str(bots_toml), "generate", "tiny", "--prefix", "\x1b[31mShow HN:", "--enqueue", "fb")
    assert (run.code, run.out, run.err) == (1, "", (
        "Error: The prefix contains the control character \\x1b, which no post may hold; remove it.\n"))
    assert candidates(cli_store) == []


def test_control_characters_are_never_queued_edited_in_or_printed_raw(bot: Bot, models: Path, bots_toml: Path,
                                                                      cli_store: Store) -> None:
    # A model whose every word carries a terminal escape sequence (as one trained on a dirty corpus might).
    shutil.copytree(models / "tiny", models / "dirty")
    pieces = json.loads((models / "dirty" / "tokenizer.json").read_text())["pieces"]
    pieces = pieces[:len(SPECIALS)] + [p + "\x1b[31m" for p in pieces[len(SPECIALS):]]
    (models / "dirty" / "tokenizer.json").write_text(json.dumps({"pieces": pieces}))
    run = bot("--config", str(bots_toml), "generate", "dirty", "--n", "20", "--seed", "2", "--enqueue", "fb")
    assert run.code == 0 and "\x1b" not in run.out + run.err
    assert "(controls: contains the control character \\x1b): " in run.err and "\\x1b[31m" in run.err
    unfiltered = bot("--config", str(bots_toml), "generate", "dirty", "--n", "20", "--seed", "2", "--no-filter",
                     "--json").json
    assert unfiltered["accepted"] == [] and unfiltered["rejections"]["controls"] > 0
    assert candidates(cli_store) == []

    # A row stored before the rule (or by hand) is printed escaped, and an edit cannot bring one in.
    with cli_store.session() as s:
        [cid] = [c.id for c in queue.enqueue(s, "fb", [Sample("Old \x1b]0;owned\x07 title", -9.0, 5, True)], RECORD)]
    listed = bot("--config", str(bots_toml), "queue", "list").out
    assert "\x1b" not in listed and "\x07" not in listed and "Old \\x1b]0;owned\\x07 title" in listed
    edit = bot("--config", str(bots_toml), "queue", "edit", str(cid), "--text", "A clean title \x1b[2J here")
    assert (edit.code, edit.err) == (1, ("Error: The edit was not saved: the controls filter rejects it (contains "
                                         "the control character \\x1b).\n"))
    with cli_store.session() as s:
        assert s.scalar(select(func.count()).select_from(Candidate)) == 1
        assert s.get(Candidate, cid).text == "Old \x1b]0;owned\x07 title"
