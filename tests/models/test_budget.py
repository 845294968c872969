"""Training planned for a time limit, and the sampled softmax: the learning rate ends at the deadline, dropout fits
the epochs that fit, and a model trained against sampled words is scored exactly."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from models import budget
from models.config import ModelConfig, flops_per_token, preset
from models.data import make_windows
from models.errors import ModelError
from models.network import SampledSoftmax, inclusion
from models.sampler import LSTMStepper
from models.tokenizer import Tokenizer
from models.trainer import Trainer

WORDS = "the cat sat on a mat while dogs ran past every house in town and birds sang".split()


def documents(n: int = 300, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(4, 12))) for _ in range(n)]


def streams(config: ModelConfig) -> tuple[Tokenizer, np.ndarray, np.ndarray]:
    texts = documents()
    tokenizer = Tokenizer.build(texts[:270], max_vocab=config.max_vocab, min_count=1)
    return tokenizer, tokenizer.encode_corpus(texts[:270]), tokenizer.encode_corpus(texts[270:])


def dropout_rate(trainer: Trainer) -> float:
    """The first dropout layer's rate in the network training now."""
    return float(ops.convert_to_numpy(trainer.model.get_layer("dropout_0").rate))


class StepClock:
    """Fake time: one second per training step, as counted by the reporter; nothing else moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Steps:
    """A reporter that advances the clock by a second after each step and records the learning rate used."""

    def __init__(self, clock: StepClock) -> None:
        self.clock, self.rates, self.trainer = clock, [], None

    def on_start(self, **_: int) -> None:
        pass

    def on_batch(self, **_: object) -> None:
        if self.trainer.budget is not None:  # the rate the trainer gave the step just taken
            self.rates.append(self.trainer.budget.learning_rate)
        self.clock.now += 1.0

    def on_epoch(self, *_: object, **__: object) -> None:
        pass

    def on_samples(self, *_: object) -> None:
        pass

    def on_stop(self, reason: str) -> None:
        self.reason = reason


def test_linear_schedule_falls_to_zero_at_the_time_limit_or_the_step_limit_whichever_is_first():
    schedule = budget.LinearToZero(start=2.0, seconds=100.0, steps=1000)
    assert schedule.rate(0, 0) == 2.0
    assert schedule.rate(50, 10) == pytest.approx(1.0)  # time leads
    assert schedule.rate(10, 500) == pytest.approx(1.0)  # steps lead
    assert schedule.rate(100, 10) == 0.0 and schedule.rate(120, 10) == 0.0
    assert schedule.rate(1, 1000) == 0.0


def test_the_held_then_decayed_schedule_ends_at_its_end_share_at_either_limit():
    schedule = budget.HoldThenDecay(start=20.0, seconds=100.0, steps=1000, hold=0.4, end=0.01)
    assert schedule.rate(0, 0) == 20.0 and schedule.rate(40, 10) == 20.0 and schedule.rate(10, 400) == 20.0
    assert schedule.rate(70, 10) == pytest.approx(20.0 * 0.1)  # halfway through the decay: the end's square root
    assert schedule.rate(10, 700) == pytest.approx(20.0 * 0.1)  # steps lead
    assert schedule.rate(100, 10) == pytest.approx(0.2) and schedule.rate(130, 10) == pytest.approx(0.2)
    rates = [schedule.rate(t, 0) for t in range(101)]
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    held = budget.HoldThenDecay(1.0, 17.0, 1000)  # medium's schedule over 17 epochs, as shares of the limit
    assert held.rate(8.0, 0) == 1.0 and held.rate(9.0, 0) == pytest.approx(0.7) and held.rate(17.0, 0) == 0.7**9


def test_the_rate_is_held_only_where_many_epochs_fit():
    linear = budget.LinearToZero(start=20.0, seconds=3600.0, steps=10_000)
    assert budget.schedule_for(linear, budget.HOLD_FROM_EPOCHS - 0.1) is linear
    held = budget.schedule_for(linear, budget.HOLD_FROM_EPOCHS)
    assert isinstance(held, budget.HoldThenDecay)
    assert (held.start, held.seconds, held.steps) == (20.0, 3600.0, 10_000)
    assert (held.hold, held.end) == (budget.HOLD_SHARE, budget.END_SHARE)


def test_dropout_grows_with_the_epochs_that_fit():
    assert budget.dropout_scale(0.5) == 0.0 and budget.dropout_scale(1.0) == 0.0
    assert budget.dropout_scale(budget.FULL_DROPOUT_EPOCHS) == 1.0 and budget.dropout_scale(100) == 1.0
    middle = (1 + budget.FULL_DROPOUT_EPOCHS) / 2
    assert budget.dropout_scale(middle) == pytest.approx(0.5)
    assert budget.epochs_that_fit(60.0, 0.5, 40, done=1.0) == pytest.approx(4.0)


def test_the_learning_rate_reaches_zero_at_the_deadline(tmp_path):
    config = preset("tiny").replace(optimizer="sgd", learning_rate=0.5, epochs=1000, dropout=0.4, patience=1,
                                    window=8, batch_size=4)
    tokenizer, train, valid = streams(config)
    clock = StepClock()
    reporter = Steps(clock)
    trainer = Trainer(config, tokenizer, train, valid, tmp_path / "m", reporter=reporter, clock=clock)
    reporter.trainer = trainer
    limit_steps = 90  # seconds of the fake clock: one per step
    summary = trainer.run(max_minutes=limit_steps / 60)

    assert summary.stop_reason == "reached the 1.5-minute limit"  # not patience, not the epoch limit
    rates = reporter.rates
    assert len(rates) == limit_steps
    expected = [0.5 * (1 - step / limit_steps) for step in range(limit_steps)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    assert rates[-1] == pytest.approx(0.5 / limit_steps, rel=1e-5)  # the last step before the deadline
    assert float(ops.convert_to_numpy(trainer.optimizer.learning_rate)) == pytest.approx(rates[-1], rel=1e-5)
    batches = make_windows(train, batch=4, window=8, pad=False).batches
    plan = summary.budget
    assert plan["minutes"] == 1.5 and plan["learning_rate"] == 0.5
    assert plan["epochs_expected"] == pytest.approx(limit_steps / batches, rel=0.05)
    assert plan["dropout_scale"] == pytest.approx(budget.dropout_scale(plan["epochs_expected"]), abs=1e-3)
    assert dropout_rate(trainer) == pytest.approx(0.4 * plan["dropout_scale"], abs=0.4e-3)  # the plan rounds to 3


def test_where_many_epochs_fit_the_rate_is_held_and_reaches_its_end_at_the_deadline(tmp_path):
    config = preset("tiny").replace(optimizer="sgd", learning_rate=0.5, epochs=1000, dropout=0.4, patience=1,
                                    window=8, batch_size=32)
    tokenizer, train, valid = streams(config)
    batches = make_windows(train, batch=32, window=8, pad=False).batches
    limit_steps = math.ceil(budget.HOLD_FROM_EPOCHS * batches * 1.25)  # 15 epochs
    clock = StepClock()
    reporter = Steps(clock)
    trainer = Trainer(config, tokenizer, train, valid, tmp_path / "m", reporter=reporter, clock=clock)
    reporter.trainer = trainer
    summary = trainer.run(max_minutes=limit_steps / 60)

    assert summary.stop_reason == f"reached the {limit_steps / 60:g}-minute limit"
    rates = reporter.rates
    assert len(rates) == limit_steps
    # linear until the pace is measured (the first step traces, the next ones are timed), then held and decayed
    measured = 1 + min(budget.PROBE_BATCHES, batches - 1)
    held = math.floor(budget.HOLD_SHARE * limit_steps)
    expected = [0.5 * (1 - step / limit_steps) if step < measured else
                0.5 * budget.END_SHARE ** max(0.0, (step / limit_steps - budget.HOLD_SHARE) / (1 - budget.HOLD_SHARE))
                for step in range(limit_steps)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    assert rates[measured:held] == [0.5] * (held - measured) and rates[held + 1] < 0.5
    assert trainer.budget.schedule.rate(limit_steps, 0) == pytest.approx(0.5 * budget.END_SHARE)  # at the deadline
    assert rates[-1] == pytest.approx(0.5 * budget.END_SHARE, rel=0.06)  # the last step, one step before it
    plan = summary.budget
    assert plan["epochs_expected"] == pytest.approx(limit_steps / batches, rel=0.05)
    assert plan["lr_held"] == pytest.approx(budget.HOLD_SHARE, abs=1e-4)
    assert plan["lr_end"] == pytest.approx(0.5 * budget.END_SHARE, abs=1e-4)
    assert plan["dropout_scale"] == 1.0


def test_without_a_time_limit_or_with_the_classic_recipe_the_schedule_is_the_presets(tmp_path):
    config = preset("tiny").replace(optimizer="sgd", learning_rate=0.5, epochs=2, lr_decay_after=1, lr_decay=0.5)
    tokenizer, train, valid = streams(config)
    for name, changes, minutes in (("none", {}, None), ("classic", {"budget_schedule": False}, 60.0)):
        clock = StepClock()
        reporter = Steps(clock)
        trainer = Trainer(config.replace(**changes), tokenizer, train, valid, tmp_path / name, reporter=reporter,
                          clock=clock)
        reporter.trainer = trainer
        summary = trainer.run(max_minutes=minutes)
        assert summary.budget is None
        assert [e.learning_rate for e in summary.epochs] == [0.5, 0.25]


def numpy_nll(config: ModelConfig, weights: dict[str, np.ndarray], stream: np.ndarray, batch: int) -> float:
    """The full softmax's mean NLL per counted token, computed step by step in numpy as the evaluation lays out
    the text (rows of `batch`, state carried across windows)."""
    windows = make_windows(stream, batch=batch, window=config.window)
    stepper = LSTMStepper(config, weights)
    state = stepper.zero_state(batch)
    shape = (windows.batches, batch, config.window)
    inputs, targets, counted = (a.reshape(shape) for a in (windows.inputs, windows.targets, windows.weights))
    total = 0.0
    for k in range(windows.batches):
        for t in range(config.window):
            logits, state = stepper.step(inputs[k, :, t], state)
            logits = logits.astype(np.float64)
            log_z = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
            total += float(((log_z - logits[np.arange(batch), targets[k, :, t]]) * counted[k, :, t]).sum())
    return total / windows.tokens


def zipf_counts(vocab: int) -> np.ndarray:
    return np.round(1e5 / np.arange(1, vocab + 1))  # word counts as text has them


def cross_entropy(logits: np.ndarray, target_logit: np.ndarray) -> np.ndarray:
    top = logits.max(-1, keepdims=True)
    return np.log(np.exp(logits - top).sum(-1)) + top[..., 0] - target_logit


def sampled_layer(counts: np.ndarray, samples: int, hidden: int, *, embedding: keras.layers.Embedding | None = None,
                  seed: int = 0) -> SampledSoftmax:
    layer = SampledSoftmax(counts, samples, embedding=embedding, seed=seed)
    layer.build([(None, None, hidden), (None, None)])
    return layer


def test_the_sampled_softmax_draws_distinct_words_each_as_often_as_its_correction_says():
    counts, samples = zipf_counts(400), 40
    layer = sampled_layer(counts, samples, hidden=4)
    # with a zero kernel and a bias of 1,000 x the word's id, each sampled logit names its word
    layer.kernel.assign(np.zeros((4, 400), "float32"))
    layer.bias.assign(1000.0 * np.arange(400, dtype="float32"))
    x, targets = np.zeros((1, 1, 4), "float32"), np.full((1, 1), 7, "int32")
    drawn = np.zeros(400)
    calls = 600
    for _ in range(calls):
        logits = ops.convert_to_numpy(layer([x, targets]))[0, 0, 1:]
        ids = np.where(logits < -1e8, 7, np.round(logits / 1000.0)).astype(int)  # a draw of the target is masked
        assert len(set(ids)) == samples  # distinct words: none drawn twice in a step
        drawn[ids] += 1
    chances = inclusion((counts + 1.0) / (counts + 1.0).sum(), samples)  # as the layer smooths the counts
    assert chances.sum() == pytest.approx(samples)
    assert np.exp(ops.convert_to_numpy(layer.included)) == pytest.approx(chances, rel=1e-5)
    for band in (slice(0, 10), slice(10, 50), slice(50, 150), slice(150, 400)):  # frequent to rare words
        assert drawn[band].sum() / calls == pytest.approx(chances[band].sum(), rel=0.05)


def test_the_sampled_softmax_cannot_draw_more_distinct_words_than_the_vocabulary_has():
    with pytest.raises(ValueError, match="31 distinct words from a vocabulary of 30"):
        SampledSoftmax(zipf_counts(30), 31)


@pytest.mark.parametrize("tied", [True, False])
def test_drawing_every_word_the_sampled_loss_is_the_full_softmax_loss(tied):
    """Every word drawn has a chance of 1, so no correction, and the target's own draw is masked: the sampled
    cross-entropy against column 0 is then exactly the full softmax's."""
    vocab, hidden = 30, 6
    rng = np.random.default_rng(3)
    embedding = None
    if tied:
        embedding = keras.layers.Embedding(vocab, hidden)
        embedding.build((None,))
        embedding.embeddings.assign(rng.normal(size=(vocab, hidden)).astype("float32"))
    layer = sampled_layer(zipf_counts(vocab), vocab, hidden, embedding=embedding, seed=1)
    if tied:
        kernel = ops.convert_to_numpy(embedding.embeddings).T
    else:
        kernel = rng.normal(size=(hidden, vocab)).astype("float32")
        layer.kernel.assign(kernel)
    bias = rng.normal(size=vocab).astype("float32")
    layer.bias.assign(bias)
    x = rng.normal(size=(2, 5, hidden)).astype("float32")
    targets = rng.integers(0, vocab, size=(2, 5)).astype("int32")
    sampled = ops.convert_to_numpy(layer([x, targets])).astype(np.float64)
    full = x.astype(np.float64) @ kernel + bias
    expected = cross_entropy(full, np.take_along_axis(full, targets[..., None], -1)[..., 0])
    assert cross_entropy(sampled, sampled[..., 0]) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("tied", [True, False])
def test_a_model_trained_against_sampled_words_is_scored_by_the_full_softmax(tmp_path, tied):
    config = preset("tiny").replace(sampled_softmax=8, tied=tied, epochs=2, window=8, batch_size=4)
    tokenizer, train, valid = streams(config)
    trainer = Trainer(config, tokenizer, train, valid, tmp_path / "m", reporter=Steps(StepClock()))
    assert trainer.model.output.shape[-1] == 1 + 8  # training sees the target and 8 sampled words
    before = trainer.evaluate()
    trainer.reporter.trainer = trainer
    summary = trainer.run()
    weights = trainer.network.get_weights(trainer.model)
    exact = numpy_nll(config, weights, valid, trainer.valid.batch)
    assert trainer.evaluate() == pytest.approx(exact, rel=1e-4)
    assert summary.epochs[-1].valid_loss == pytest.approx(exact, rel=1e-4)
    assert summary.epochs[-1].valid_loss < before  # it learned, from sampled words only
    assert all(e.sampled for e in summary.epochs)  # the training loss is marked as the sampled estimate
    assert math.isfinite(summary.epochs[-1].train_loss)


def test_the_full_softmax_takes_over_from_the_sampled_one_at_its_share_of_the_limit(tmp_path, monkeypatch):
    config = preset("tiny").replace(sampled_softmax=8, sampled_share=0.5, optimizer="sgd", learning_rate=0.5,
                                    dropout=0.4, epochs=1000, window=8, batch_size=4)
    tokenizer, train, valid = streams(config)
    batches = make_windows(train, batch=4, window=8, pad=False).batches
    limit_steps = 4 * batches + batches // 3  # seconds of the fake clock: the share ends at 2.17 epochs
    clock = StepClock()
    reporter = Steps(clock)
    trainer = Trainer(config, tokenizer, train, valid, tmp_path / "m", reporter=reporter, clock=clock)
    reporter.trainer = trainer
    handed_over, expected_before, dropout_across = [], [], []  # at the switch
    switch = trainer._to_full_softmax

    def spy() -> None:  # the weights the sampled network trained, and those the full one starts from
        before = trainer.network.get_weights(trainer.model)
        expected_before.append(trainer.budget.epochs)
        scale = trainer.budget_plan()["dropout_scale"]
        switch()
        handed_over.append((before, trainer.network.get_weights(trainer.model)))
        dropout_across.append((scale, trainer.budget_plan()["dropout_scale"], dropout_rate(trainer)))

    monkeypatch.setattr(trainer, "_to_full_softmax", spy)
    summary = trainer.run(max_minutes=limit_steps / 60)

    assert [e.sampled for e in summary.epochs] == [True, True, False, False, False]  # the boundary nearest 2.17
    (before, after), = handed_over
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    assert trainer.model.output.shape[-1] == tokenizer.size  # it trains the full softmax now
    # one schedule across both: linear to zero at the deadline
    expected = [0.5 * (1 - step / limit_steps) for step in range(limit_steps)]
    np.testing.assert_allclose(reporter.rates, expected, rtol=1e-5)
    plan = summary.budget
    assert plan["full_softmax_from"] == pytest.approx(2 * batches / limit_steps, abs=1e-3)
    assert plan["sampled_softmax"] == 8
    # before the switch, the full softmax's half was expected to run SAMPLED_SPEEDUP times slower
    assert expected_before == [pytest.approx(limit_steps * (0.5 + 0.5 / budget.SAMPLED_SPEEDUP) / batches, rel=1e-3)]
    # until the full softmax's pace is measured, the new network trains, and the plan reports, the sampled one's dropout
    (scale_before, scale_after, rate_after), = dropout_across
    assert scale_before == pytest.approx(budget.dropout_scale(expected_before[0]), abs=1e-3) and scale_before > 0
    assert scale_after == scale_before and rate_after == pytest.approx(0.4 * scale_before, abs=0.4e-3)
    # dropout was measured again on the full softmax's pace: the same fake second per step, so the whole run's
    assert plan["epochs_expected"] == pytest.approx(limit_steps / batches, rel=0.05)
    assert dropout_rate(trainer) == pytest.approx(0.4 * plan["dropout_scale"], abs=0.4e-3)
    assert summary.epochs[-1].valid_loss < summary.epochs[0].valid_loss


@pytest.mark.parametrize("past", ["validation", "switch"])
def test_a_validation_or_switch_that_ends_past_the_limit_ends_the_run_there(tmp_path, monkeypatch, past):
    # one epoch takes most of the limit, and its validation the rest, or all but a second of it and building the
    # full-softmax network the rest: no further epoch, no step after the deadline
    config = preset("tiny").replace(sampled_softmax=8, sampled_share=0.5, optimizer="sgd", learning_rate=0.5,
                                    epochs=1000, window=8, batch_size=4)
    tokenizer, train, valid = streams(config)
    batches = make_windows(train, batch=4, window=8, pad=False).batches
    clock = StepClock()
    reporter = Steps(clock)
    trainer = Trainer(config, tokenizer, train, valid, tmp_path / "m", reporter=reporter, clock=clock)
    reporter.trainer = trainer
    evaluate, switch = trainer.evaluate, trainer._to_full_softmax

    def slow_evaluate(*args: object) -> float:
        clock.now += batches if past == "validation" else batches / 2 - 1  # as long as an epoch, or a second short
        return evaluate(*args)

    def slow_switch() -> None:
        switch()
        clock.now += 2

    monkeypatch.setattr(trainer, "evaluate", slow_evaluate)
    monkeypatch.setattr(trainer, "_to_full_softmax", slow_switch)
    summary = trainer.run(max_minutes=1.5 * batches / 60)

    assert [(e.epoch, e.partial, e.sampled) for e in summary.epochs] == [(1, False, True)]
    assert summary.stop_reason == f"reached the {1.5 * batches / 60:g}-minute limit"
    assert len(reporter.rates) == batches  # no step after the deadline
    if past == "validation":
        assert "full_softmax_from" not in summary.budget and trainer.sampling
    else:
        assert not trainer.sampling  # it did switch, a second before the limit


def test_sampled_share_must_be_a_share():
    for share in (0.0, 1.5):
        with pytest.raises(ModelError, match="sampled_share"):
            ModelConfig(sampled_share=share)


def test_sampled_softmax_must_not_be_negative():
    with pytest.raises(ModelError, match="sampled_softmax"):
        ModelConfig(sampled_softmax=-1)


# ---- which output layer a time limit trains


def never() -> float:
    raise AssertionError("the machine was measured where the choice does not depend on it")


def test_a_limit_that_fits_few_epochs_narrows_the_network_and_samples_its_softmax_for_a_share_of_it():
    config = preset("medium")  # samples 1,024 words; 2 x 300 units, tied 300-wide embeddings
    tokens, vocab = 929_589, 10_002  # Penn Treebank
    full = config.replace(sampled_softmax=0)
    narrow = full.replace(hidden_dim=200, embedding_dim=200)
    line, switched = budget.FULL_WIDTH_FROM_EPOCHS, budget.SWITCHED_SOFTMAX_UNTIL_EPOCHS
    flops = line * flops_per_token(full, vocab) * tokens / 600 / budget.TRAINING_SHARE  # `line` epochs in 10 minutes

    def sampled_first(network: ModelConfig) -> ModelConfig:
        return network.replace(sampled_softmax=1024, sampled_share=budget.SAMPLED_SHARE)

    assert budget.full_softmax_epochs(full, vocab, tokens, 10, flops) == pytest.approx(line)
    assert budget.plan_network(config, vocab, tokens, 10.5, lambda: flops) == sampled_first(full)  # 300 wide
    assert budget.plan_network(config, vocab, tokens, 9.5, lambda: flops) == sampled_first(narrow)
    # where as many epochs fit as SWITCHED_SOFTMAX_UNTIL_EPOCHS, the preset's network and the full softmax throughout
    at_switch_line = 10 * switched / line
    assert budget.plan_network(config, vocab, tokens, at_switch_line * 1.01, lambda: flops) == full
    assert budget.plan_network(config, vocab, tokens, at_switch_line * 0.99, lambda: flops) == sampled_first(full)
    # the same limit on a machine three times slower fits a third of the epochs
    assert budget.plan_network(config, vocab, tokens, 20, lambda: flops / 3) == sampled_first(narrow)
    # a network whose weights exist already (resumed, fine-tuned) keeps its size
    assert budget.plan_network(config, vocab, tokens, 9.5, lambda: flops, resizable=False) == sampled_first(full)
    # a network no wider than the short-budget width keeps its size, even where it samples
    small = config.replace(hidden_dim=128, embedding_dim=64, tied=False)
    assert budget.plan_network(small, vocab, tokens, 9.5, lambda: flops / 100) == sampled_first(small)


@pytest.mark.parametrize("gflops, minutes, units, sampled_share", [
    (380, 5, 200, 0.5),  # the AVX-512 machine at 5 minutes (2.5 epochs of 300 wide; 4.3 of 200 wide): not measured
    (380, 30, 300, None),  # ... at 30 minutes (15.2 epochs): full, not measured against the switch
    # the same kind of machine on a slower day, the rates its probes read in these runs:
    (198.6, 2, 200, 0.5),  # 0.5 epochs (0.9 of 200 wide): 166.5 against 169.9 sampled throughout
    (200.8, 5, 200, 0.5),  # 1.3 (2.3): 124.0 against 142.2 sampled throughout
    (201.2, 10, 200, 0.5),  # 2.7 (4.5): 110.4 against 115.2 with the full softmax
    (179.6, 30, 300, 0.5),  # 7.2: 96.0 against 98.0 with the full softmax
    (100.8, 30, 300, 0.5),  # the AVX2 machine at 30 minutes (4.0 epochs): full 108.1 against sampled 110.8
    (86.3, 60, 300, 0.5),  # ... at 60 minutes (6.9 epochs): full 94.6 against sampled 105.9
])
def test_the_network_chosen_for_the_measured_machines(gflops, minutes, units, sampled_share):
    # The choices measured on Penn Treebank (bench/RESULTS.md), at the rates the probes read in those runs (near the
    # AVX-512 machine's best matrix product where its probe was not taken).
    config = budget.plan_network(preset("medium"), 10_002, 929_589, minutes, lambda: gflops * 1e9)
    assert config.hidden_dim == units
    assert (config.sampled_share if config.sampled_softmax else None) == sampled_share


def test_a_short_limit_narrows_a_new_network_but_not_one_whose_weights_fix_its_shape(tmp_path, monkeypatch):
    from models import trainer
    from models.artifact import load_model

    monkeypatch.setattr(trainer, "_matmul_rate", lambda: 1.0)  # a machine on which no epoch of anything fits
    texts = documents()
    wide = preset("tiny").replace(embedding_dim=208, hidden_dim=208, sampled_softmax=4, epochs=1)

    fresh = trainer.train_model(texts, tmp_path / "fresh", wide, max_minutes=5)
    assert (load_model(tmp_path / "fresh").config.hidden_dim, fresh.budget["hidden_dim"]) == (200, 200)
    assert fresh.budget["sampled_softmax"] == 4
    assert load_model(tmp_path / "fresh").config.sampled_share == budget.SAMPLED_SHARE  # then the full softmax

    trainer.train_model(texts, tmp_path / "kept", wide)  # no limit: the full softmax, 208 wide
    resumed = trainer.train_model(texts, tmp_path / "kept", wide.replace(epochs=2), resume=True, max_minutes=5)
    assert (load_model(tmp_path / "kept").config.hidden_dim, resumed.budget["hidden_dim"]) == (208, 208)
    assert resumed.budget["sampled_softmax"] == 4
    assert [e.sampled for e in resumed.epochs] == [False, True]  # its second epoch sampled, from its own weights


@pytest.mark.parametrize("minutes, changes, vocab", [
    (None, {}, 10_002),  # no limit: the full softmax, as always
    (5, {"budget_schedule": False}, 10_002),  # a recipe that keeps its own schedule
    (5, {}, 4 * 1024 - 1),  # a vocabulary too small to gain
])
def test_the_full_softmax_trains_without_measuring_the_machine_where_it_does_not_matter(minutes, changes, vocab):
    config = preset("medium").replace(**changes)
    assert budget.plan_network(config, vocab, 929_589, minutes, never).sampled_softmax == 0
    assert budget.plan_network(config.replace(sampled_softmax=0), vocab, 929_589, 5, never).sampled_softmax == 0


def test_the_machine_is_measured_by_a_matrix_product():
    from models.fitting import matmul_rate

    rate = matmul_rate(seconds=0.05, side=256)
    assert math.isfinite(rate) and 1e8 < rate < 1e15  # FLOP/s of anything from a slow CPU core to a GPU


@pytest.mark.parametrize("weighted", [False, True])
def test_a_pass_goes_through_the_arrays_in_order_and_on_tensorflow_without_autotuning(weighted):
    """Keras's own pipeline for arrays autotunes, and its end of pass can wait for the autotuner's next round: up
    to a minute with nothing training (bench/epoch_pause.py). The trainer's pipeline turns autotuning off."""
    from models.fitting import in_order

    x = {"ids": np.arange(20).reshape(10, 2), "targets": np.arange(20, 40).reshape(10, 2)}
    y = np.arange(40, 60).reshape(10, 2)
    w = np.linspace(0, 1, 20, dtype=np.float32).reshape(10, 2) if weighted else None
    data = in_order(x, y, 4, w)
    if keras.backend.backend() != "tensorflow":  # read as arrays, by Keras, with no pipeline to wait for
        assert data["x"] is x and data["y"] is y and data["sample_weight"] is w and data["batch_size"] == 4
        return
    assert data["x"].options().autotune.enabled is False
    batches = list(data["x"].as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    for key in ("ids", "targets"):
        np.testing.assert_array_equal(np.concatenate([b[0][key] for b in batches]), x[key])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    if weighted:
        np.testing.assert_array_equal(np.concatenate([b[2] for b in batches]), w)
    else:
        assert all(len(b) == 2 for b in batches)
