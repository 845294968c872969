"""Fine-tuning: the base's weights grown to a larger vocabulary, new pieces starting as the average known piece."""

from pathlib import Path

import numpy as np
import pytest

from models.artifact import ModelArtifact, load_model
from models.config import ModelConfig, preset, weight_shapes
from models.errors import ModelError
from models.finetuning import describe_shape, merge_weights, same_shape, with_base_shape
from models.tokenizer import SPECIALS
from models.trainer import train_model

TINY = preset("tiny")
BASE_VOCAB, NEW_VOCAB = 12, 15
NEW_WORDS = ("Zorblat", "quuxifier")  # in no Hacker News title


def random_weights(config: ModelConfig, vocab_size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=shape).astype(np.float32) for k, shape in weight_shapes(config, vocab_size).items()}


@pytest.mark.parametrize("config", [
    TINY,  # tied, embedding as wide as the LSTM
    TINY.replace(embedding_dim=16),  # tied through a projection
    TINY.replace(tied=False),  # an output kernel of its own, (H, V)
], ids=["tied", "projected", "untied"])
def test_base_rows_are_kept_and_new_rows_start_at_the_mean(config: ModelConfig) -> None:
    base = random_weights(config, BASE_VOCAB)
    merged = merge_weights(base, BASE_VOCAB, NEW_VOCAB, config)

    assert {k: v.shape for k, v in merged.items()} == weight_shapes(config, NEW_VOCAB)
    assert all(v.dtype == np.float32 for v in merged.values())
    known = slice(len(SPECIALS), BASE_VOCAB)
    np.testing.assert_array_equal(merged["embedding"][:BASE_VOCAB], base["embedding"])
    np.testing.assert_array_equal(merged["output/bias"][:BASE_VOCAB], base["output/bias"])
    for row in merged["embedding"][BASE_VOCAB:]:
        np.testing.assert_allclose(row, base["embedding"][known].mean(0), rtol=1e-6)
    np.testing.assert_allclose(merged["output/bias"][BASE_VOCAB:], base["output/bias"][known].mean(), rtol=1e-6)
    if not config.tied:
        np.testing.assert_array_equal(merged["output/kernel"][:, :BASE_VOCAB], base["output/kernel"])
        for column in merged["output/kernel"][:, BASE_VOCAB:].T:
            np.testing.assert_allclose(column, base["output/kernel"][:, known].mean(1), rtol=1e-6)
    for key in set(base) - {"embedding", "output/bias", "output/kernel"}:  # LSTMs, projection
        np.testing.assert_array_equal(merged[key], base[key])


def test_an_unchanged_vocabulary_keeps_every_weight() -> None:
    base = random_weights(TINY, BASE_VOCAB)
    merged = merge_weights(base, BASE_VOCAB, BASE_VOCAB, TINY)
    assert all(np.array_equal(merged[k], base[k]) for k in base)


def test_weights_that_do_not_fit_the_base_are_refused() -> None:
    with pytest.raises(ModelError, match="^The base model's weights do not fit its settings"):
        merge_weights(random_weights(TINY, BASE_VOCAB), BASE_VOCAB + 1, NEW_VOCAB, TINY)
    with pytest.raises(ModelError, match=r"^A fine-tuned vocabulary \(11 pieces\) cannot be smaller than its "
                                         r"base's \(12\)\.$"):
        merge_weights(random_weights(TINY, BASE_VOCAB), BASE_VOCAB, BASE_VOCAB - 1, TINY)


def test_the_base_fixes_the_shape_and_the_preset_the_training(tiny_model: ModelArtifact) -> None:
    small = preset("small")
    config = with_base_shape(small, tiny_model)
    assert same_shape(config, TINY) and not same_shape(small, TINY)
    assert (config.learning_rate, config.dropout, config.window) == (small.learning_rate, small.dropout, small.window)
    assert (config.case_markers, config.rare_classes) == (tiny_model.tokenizer.cased,
                                                          tiny_model.tokenizer.rare is not None)
    assert describe_shape(TINY) == "1 × 32 (embedding 32)"
    assert describe_shape(preset("zaremba-small")) == "2 × 200 (embedding 200, untied)"


def test_fine_tuning_keeps_the_base_vocabulary_and_appends_new_words(tiny_model: ModelArtifact, tmp_path: Path,
                                                                     titles: list[str]) -> None:
    base = tiny_model
    assert not any(f" {w.lower()}" in base.tokenizer.pieces for w in NEW_WORDS)
    docs = [f"{' '.join(NEW_WORDS)} {title}" for title in titles[-120:]]
    summary = train_model(docs, tmp_path / "tuned", TINY.replace(epochs=1, hidden_dim=64),
                          init_from=base, info={"corpus": "zorblat"})

    tuned = load_model(tmp_path / "tuned")
    pieces = tuned.tokenizer.pieces
    assert pieces[:base.tokenizer.size] == base.tokenizer.pieces
    assert {" zorblat", " quuxifier"} <= set(pieces[base.tokenizer.size:])
    assert summary.vocab_size == tuned.tokenizer.size > base.tokenizer.size
    assert tuned.config.hidden_dim == base.config.hidden_dim == 32  # the base's shape, not the config's 64
    assert tuned.info["base"] == {"name": base.name, "path": str(base.path.resolve()),
                                  "vocab_size": base.tokenizer.size, "corpus": "titles",
                                  "created_at": base.info.get("created_at")}
    assert tuned.info["corpus"] == "zorblat"


def _one_step(config: ModelConfig, weights: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """The weights before and after one training step of a fresh network on fixed data, with layer scales for
    epoch 1."""
    from models import fitting, network

    model = network.build_network(config, 30, batch_size=2)
    if weights is not None:
        network.set_weights(model, weights)
    before = network.get_weights(model)
    optimizer = fitting.optimizer(config)
    model.compile(optimizer=optimizer, loss=fitting.loss())
    optimizer.build(model.trainable_variables)
    fitting.set_layer_scales(optimizer, config, epoch=1)
    ids = np.random.default_rng(0).integers(4, 30, size=(2, config.window)).astype("int32")
    model.train_on_batch(ids, np.roll(ids, -1, axis=1))
    return before, network.get_weights(model)


def test_each_layer_group_below_the_top_moves_at_its_share_of_the_rate() -> None:
    config = preset("tiny").replace(layers=2, optimizer="sgd", learning_rate=0.5, clip_norm=100.0, dropout=0.0,
                                    embedding_dropout=0.0)
    before, plain = _one_step(config)
    _, layered = _one_step(config.replace(lr_layer_decay=0.5), before)
    shares = {"output/bias": 1.0, "lstm_1/kernel": 0.5, "lstm_0/kernel": 0.25, "embedding": 0.125}
    for name, share in shares.items():
        step_plain, step_layered = plain[name] - before[name], layered[name] - before[name]
        assert np.abs(step_plain).max() > 0
        np.testing.assert_allclose(step_layered, share * step_plain, rtol=1e-4, atol=1e-7)


def test_gradual_unfreezing_trains_the_top_group_first() -> None:
    from models.fitting import layer_scales

    config = preset("tiny").replace(layers=2, optimizer="sgd", learning_rate=0.5, unfreeze_epochs=1, dropout=0.0,
                                    embedding_dropout=0.0)
    before, after = _one_step(config)
    assert np.abs(after["output/bias"] - before["output/bias"]).max() > 0
    for name in ("lstm_1/kernel", "lstm_0/kernel", "embedding"):
        np.testing.assert_array_equal(after[name], before[name])
    assert layer_scales(config, 2) == [1.0, 1.0, 0.0, 0.0]
    assert layer_scales(config.replace(unfreeze_epochs=2, lr_layer_decay=0.5), 5) == [1.0, 0.5, 0.25, 0.0]
    assert layer_scales(config, 9) == [1.0, 1.0, 1.0, 1.0]


def test_layer_levers_are_checked() -> None:
    with pytest.raises(ModelError, match="lr_layer_decay"):
        ModelConfig(lr_layer_decay=0.0)
    with pytest.raises(ModelError, match="unfreeze_epochs"):
        ModelConfig(unfreeze_epochs=-1)
