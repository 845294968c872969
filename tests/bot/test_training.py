"""`bot train --init-from`: a new model fine-tuned from a base model's weights, as a user runs it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.cli import context
from models import network
from models.artifact import load_model
from models.tokenizer import SPECIALS
from models.trainer import Trainer

Bot = Callable[..., Any]  # the `bot` fixture: runs `bot ARGS…` in-process, returns what it printed
TITLES = Path(__file__).resolve().parents[2] / "bot" / "data" / "hacker_news_2000.txt"
NEW_WORDS = "Zorblat quuxifier"  # in no Hacker News title


def import_corpus(bot: Bot, tmp_path: Path, name: str, lines: list[str]) -> None:
    source = tmp_path / f"{name}.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert bot("import", str(source), "--corpus", name).code == 0


@pytest.fixture
def titles_a_b(bot: Bot, tmp_path: Path) -> None:
    """Corpus `a`: 150 titles; corpus `b`: 120 others, each with two words `a` never has."""
    titles = TITLES.read_text(encoding="utf-8").splitlines()
    import_corpus(bot, tmp_path, "a", titles[:150])
    import_corpus(bot, tmp_path, "b", [f"{NEW_WORDS} {t}" for t in titles[-120:]])


def test_fine_tuned_model_starts_from_the_base_and_records_it(bot: Bot, titles_a_b: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert bot("train", "a", "--model", "base", "--preset", "tiny", "--epochs", "1").code == 0
    base = load_model(context.settings().model_dir("base"))

    started: list[dict[str, np.ndarray]] = []  # the network's weights when training starts
    run = Trainer.run

    def spy(self: Trainer, **kwargs: Any) -> Any:
        started.append(network.get_weights(self.model))
        return run(self, **kwargs)

    monkeypatch.setattr(Trainer, "run", spy)
    tuned_run = bot("train", "b", "--model", "tuned", "--init-from", "base", "--preset", "tiny", "--epochs", "1",
                    "--json")
    assert tuned_run.code == 0, tuned_run.err
    assert (tuned_run.json["init_from"], tuned_run.json["preset"]) == ("base", "tiny")

    tuned = load_model(context.settings().model_dir("tuned"))
    size = base.tokenizer.size
    assert tuned.tokenizer.pieces[:size] == base.tokenizer.pieces
    assert {" zorblat", " quuxifier"} <= set(tuned.tokenizer.pieces[size:])
    assert tuned.info["base"] == {"name": "base", "path": str(base.path.resolve()), "vocab_size": size,
                                  "corpus": "a", "created_at": base.info["created_at"]}

    (start,) = started
    np.testing.assert_array_equal(start["embedding"][:size], base.weights["embedding"])
    np.testing.assert_array_equal(start["output/bias"][:size], base.weights["output/bias"])
    mean = base.weights["embedding"][len(SPECIALS):].mean(0)
    np.testing.assert_allclose(start["embedding"][size:], np.broadcast_to(mean, (tuned.tokenizer.size - size,
                                                                                 mean.size)), rtol=1e-6)
    for key in ("lstm_0/kernel", "lstm_0/recurrent_kernel", "lstm_0/bias"):
        np.testing.assert_array_equal(start[key], base.weights[key])

    sampled = bot("generate", "tuned", "--n", "3", "--seed", "1", "--no-filter", "--json")
    assert sampled.code == 0 and sampled.json["sampled"] == 3
    shown = bot("model", "show", "tuned")
    assert f"Fine-tuned from model 'base' ({base.path.resolve()}), trained on corpus 'a', vocabulary {size} " \
           "pieces." in shown.out
    assert bot("model", "show", "tuned", "--json").json["base"]["name"] == "base"


def test_without_a_preset_the_base_gives_the_shape_and_auto_the_training(bot: Bot, titles_a_b: None,
                                                                         tiny_model_dir: Path,
                                                                         tmp_path: Path) -> None:
    base_dir = tmp_path / "elsewhere" / "hn-base"  # a model directory outside BOT_HOME, given by its path
    shutil.copytree(tiny_model_dir, base_dir)
    tuned = bot("train", "b", "--model", "tuned", "--init-from", str(base_dir), "--epochs", "1", "--json")
    assert tuned.code == 0, tuned.err
    assert tuned.json["preset"] == "small"
    config = load_model(context.settings().model_dir("tuned")).config
    assert (config.layers, config.hidden_dim, config.embedding_dim) == (1, 32, 32)  # tiny's shape
    assert (config.window, config.dropout) == (20, 0.4)  # small's training


def test_init_from_refusals_are_one_sentence_and_write_nothing(bot: Bot, titles_a_b: None,
                                                               tiny_model_dir: Path) -> None:
    models = context.settings().models_dir
    shutil.copytree(tiny_model_dir, models / "base")
    damaged = models / "damaged"
    shutil.copytree(tiny_model_dir, damaged)
    (damaged / "weights.npz").write_bytes(b"not weights")

    def refused(*args: str) -> str:
        run = bot("train", "b", *args)
        assert run.code == 1 and not (models / "tuned").exists()
        return run.err

    assert refused("--model", "tuned", "--init-from", "base", "--resume") == (
        "Error: --resume continues a model from its own weights and --init-from starts a new one from a base model, "
        "so pass only one of them.\n")
    assert refused("--model", "tuned", "--init-from", "ghost") == (
        "Error: There is no model named 'ghost' to start from; train it first with `bot train CORPUS --model ghost`, "
        "or give the path of a model directory.\n")
    assert refused("--model", "tuned", "--init-from", "damaged") == (
        f"Error: {damaged / 'weights.npz'} is damaged or is not a model's weights; retrain the model or restore the "
        "file.\n")
    assert refused("--model", "tuned", "--init-from", "base", "--preset", "small") == (
        "Error: Base model 'base' is 1 × 32 (embedding 32), but preset 'small' is 2 × 200 (embedding 200); leave "
        "--preset out to fine-tune with the base's shape, or pass --from-scratch.\n")
    assert refused("--model", "base", "--init-from", "base", "--force") == (
        "Error: Model 'base' cannot start from itself; pass another model to --init-from, or write the fine-tuned "
        "model under a new --model name.\n")
    assert load_model(models / "base").info["corpus"] == "titles"  # the base is as it was


HOLDER = """
import sys, time
from bot.config import load_settings
from bot.training import model_lock
with model_lock(load_settings(), sys.argv[1]):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_model_one_process_trains_is_refused_to_another_until_it_finishes(bot: Bot, titles_a_b: None,
                                                                           bot_home: Path) -> None:
    from bot.config import load_settings
    from bot.training import ModelBusyError, retrain
    from tests.bot.service.helpers import python

    holder = python("-c", HOLDER, "m")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        run = bot("train", "a", "--model", "m", "--preset", "tiny", "--epochs", "1", "--force")
        assert (run.code, run.err) == (1, f"Error: Model 'm' is being trained by another process (pid {holder.pid}); "
                                          "wait until it finishes, or train under another --model name.\n")
        assert not (bot_home / "models" / "m").exists()  # nothing written
        with pytest.raises(ModelBusyError):  # the scheduler's retrain is refused alike, and swaps nothing in
            retrain(context.store(), load_settings(), "a", "m", "tiny", max_minutes=1)
        assert not (bot_home / "models" / ".versions").exists()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert bot("train", "a", "--model", "m", "--preset", "tiny", "--epochs", "1").code == 0  # its turn now


def test_new_models_fine_tune_the_base_model_unless_told_from_scratch(bot: Bot, titles_a_b: None, bot_home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert bot("train", "a", "--model", "mybase", "--preset", "tiny", "--epochs", "1").code == 0
    monkeypatch.setenv("BOT_BASE_MODEL", "mybase")  # as the shipped base would be, where no variable is set
    context.settings.cache_clear()
    tuned = bot("train", "b", "--model", "tuned", "--epochs", "1", "--json")
    assert tuned.code == 0, tuned.err
    assert tuned.json["init_from"] == "mybase"
    model = load_model(bot_home / "models" / "tuned")
    assert model.info["base"]["name"] == "mybase" and model.tokenizer.size > load_model(
        bot_home / "models" / "mybase").tokenizer.size  # the base's pieces, and b's new words after them
    scratch = bot("train", "b", "--model", "scratch", "--preset", "tiny", "--epochs", "1", "--from-scratch", "--json")
    assert scratch.code == 0 and scratch.json["init_from"] is None
    assert "base" not in load_model(bot_home / "models" / "scratch").info
    shaped = bot("train", "b", "--model", "other", "--preset", "small", "--epochs", "1")
    assert shaped.err.endswith("leave --preset out to fine-tune with the base's shape, or pass --from-scratch.\n")
    both = bot("train", "b", "--model", "x", "--from-scratch", "--init-from", "mybase")
    assert both.err == "Error: --from-scratch trains a new network, so it goes with neither --init-from nor --resume.\n"
    monkeypatch.setenv("BOT_BASE_MODEL", "none")
    context.settings.cache_clear()
    plain = bot("train", "b", "--model", "plain", "--preset", "tiny", "--epochs", "1", "--json")
    assert plain.json["init_from"] is None
