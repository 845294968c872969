"""Training planned for a time limit: the learning rate reaches its end at the deadline, dropout fits the epochs it
allows.

Budgeted training (Li, Yumer & Ramanan, "Budgeted Training: Rethinking Deep Neural Network Training Under Resource
Constraints", ICLR 2020): with a fixed budget, a schedule that decays the learning rate linearly to zero exactly at
the budget's end beats schedules tuned for a number of epochs that will never be reached. Progress is the larger of
the time spent and the steps taken over the epoch limit, so whichever limit comes first ends the decay. Where many
epochs fit, the rate is held and then decayed instead (`HoldThenDecay`, chosen by `schedule_for` once the pace is
measured).

When few epochs fit, the network trains fewer units, and a cheaper output layer for the first half (`plan_network`).

Dropout fights overfitting, which needs several passes over the text to happen: within one epoch every window is
new. Few epochs fit a short budget, so the preset's dropout (tuned for the epochs of a long run) is scaled down in
proportion, to none at one epoch.

No Keras here: the trainer asks this module for numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.config import ModelConfig, flops_per_token

PROBE_BATCHES = 20  # batches timed (after the first, which includes tracing) to estimate the epochs that fit
FULL_DROPOUT_EPOCHS = 10.0  # at this many epochs and more, the preset's dropout is used in full


@dataclass(frozen=True)
class LinearToZero:
    """The learning rate `start` x (1 - progress), progress being the share of the time or of the steps used."""

    start: float
    seconds: float  # the time limit, from the start of the run
    steps: int  # the steps the epoch limit allows in this run

    def progress(self, elapsed: float, step: int) -> float:
        return min(1.0, max(elapsed / self.seconds, step / max(self.steps, 1)))

    def rate(self, elapsed: float, step: int) -> float:
        return self.start * (1.0 - self.progress(elapsed, step))


# Where at least this many epochs fit the limit, the rate is held and then decayed (HoldThenDecay) rather than
# decayed linearly from the first step. On PTB with `medium` (bench/RESULTS.md): in an hour that fitted 9 epochs,
# linear decay beat the preset's hold-then-x0.7 schedule by 2.2 % (94.6 against 96.8); in one that fitted 17, it lost
# by 0.35 % (88.85 against 88.54), having led through epoch 10 and trailed from epoch 11, where the held-then-decayed
# rate was lower. The line lies between the two; no run between them was measured.
HOLD_FROM_EPOCHS = 12.0
# `medium`'s own schedule over the 17 epochs of the hour that measured it (held for 8, then x0.7 an epoch for 9), as
# shares of the limit: held for the first 47 %, then falling exponentially to 0.7 ** 9 (4 %) of the start at the
# deadline: 88.51 in an hour that fitted 17.x epochs, against 88.85 with linear decay and 88.54 for `medium` itself.
# Its shape over the 20 epochs it was fitted to (held for 40 %, down to 0.7 ** 12) decayed too soon and too far for
# the 17.x: 89.89 in such an hour (bench/RESULTS.md, "Penn Treebank, an hour, with the rate held and then decayed").
# On an Intel Xeon machine whose hour fitted 18.x epochs: 88.07 (test 83.78), against 88.74 for `medium` in the
# hour after (bench/RESULTS.md, "Penn Treebank, an hour, against the old recipe on an Intel Xeon machine").
HOLD_SHARE = 8 / 17
END_SHARE = 0.7**9
# the held schedule in words, for `auto`'s reason and `bot train --help`
HELD = (f"where {HOLD_FROM_EPOCHS:g} epochs or more fit, is held for the first {HOLD_SHARE:.0%} and then decays to "
        f"{END_SHARE:.0%} of it")


@dataclass(frozen=True)
class HoldThenDecay(LinearToZero):
    """The learning rate `start` for the first `hold` share of the progress (time or steps, as LinearToZero), then
    falling exponentially to `start` x `end` at the limit."""

    hold: float = HOLD_SHARE
    end: float = END_SHARE

    def rate(self, elapsed: float, step: int) -> float:
        decayed = max(0.0, self.progress(elapsed, step) - self.hold) / (1.0 - self.hold)
        return self.start * self.end**decayed


def schedule_for(schedule: LinearToZero, epochs: float) -> LinearToZero:
    """The schedule for a run expected to make `epochs` epochs by its limit: `schedule` (linear to zero) where fewer
    than HOLD_FROM_EPOCHS fit, the rate held and then decayed where more do. Chosen after the first few dozen steps,
    while either schedule is still within a fraction of a percent of its start."""
    if epochs < HOLD_FROM_EPOCHS:
        return schedule
    return HoldThenDecay(schedule.start, schedule.seconds, schedule.steps)


def epochs_that_fit(seconds_left: float, seconds_per_batch: float, batches_per_epoch: int, done: float = 0.0) -> float:
    """Epochs the run will have made by the deadline, at the measured pace."""
    return done + seconds_left / max(seconds_per_batch, 1e-9) / max(batches_per_epoch, 1)


def dropout_scale(epochs: float) -> float:
    """The share of the preset's dropout to train with when `epochs` epochs fit: 0 at one epoch or fewer, rising
    linearly to 1 at FULL_DROPOUT_EPOCHS."""
    return min(1.0, max(0.0, (epochs - 1.0) / (FULL_DROPOUT_EPOCHS - 1.0)))


# ---- the preset `auto` stands for

MEDIUM_FROM_WORDS = 200_000  # corpora this large train the "medium" recipe; smaller ones (titles, tweets) "small"
MEDIUM_TIMED_FROM_WORDS = 10_000  # ... and under a time limit, corpora this large
# Where fewer than this many epochs of the preset's network with the full softmax fit, its layers narrow to
# SHORT_BUDGET_WIDTH units (the embeddings to as many channels, at most): a smaller network fits the few passes better
# and takes more of them. On PTB on one machine in one session, `medium` 300 wide reached 143.6 at 5 minutes and
# 120.1 at 10 (sampled throughout); 200 wide, 142.2 and 115.2 (sampled throughout at 5, the full softmax at 10), in
# the same 4 epochs; 200 wide trains 1.66x the tokens/s of 300 wide with the sampled softmax in a 45-second run of
# each. The line sits between the plan's estimates for the runs measured on either side (2.4 narrowed, 7.7 not).
FULL_WIDTH_FROM_EPOCHS = 3.0
SHORT_BUDGET_WIDTH = 200
# Where fewer than this many epochs of the network with the full softmax fit, it trains the sampled softmax for the
# first SAMPLED_SHARE of the limit (1.7-2x the tokens/s) and the full softmax after it: the sampled one learns fastest
# early, but its estimate of the gradient is biased (the first full epoch after the switch took PTB from 133.1 to
# 114.8) and the exact one finishes lower. On PTB on one machine and day: 200 wide, 166.5 / 124.0 / 110.4 at 2 / 5 /
# 10 minutes (0.9 / 2.3 / 4.5 epochs estimated), against 169.9 / 142.2 sampled throughout and 115.2 with the full
# softmax throughout; 300 wide, 96.0 at 30 minutes (7.2) against 98.0 with the full softmax (bench/RESULTS.md).
# Sampled throughout, it had lost to the full softmax from 4 epochs. The line is above the largest estimate measured
# to win, by more than the estimate's error; past it the full softmax trains throughout, and the switch is not measured.
# With distinct sampled words (`models.network.SampledSoftmax`) the sampled epochs learn more, and the switch still
# wins: 104.1 at 10 minutes on PTB against 109.3 sampled throughout, the same session.
SWITCHED_SOFTMAX_UNTIL_EPOCHS = 10.0
SAMPLED_SHARE = 0.5
# Tokens/s of the sampled softmax over the full one, for `medium` 200 wide on PTB (10,300-14,000 against 6,200-6,800
# on one machine): the epochs a run that switches expects before the full softmax's pace is measured.
SAMPLED_SPEEDUP = 1.8
SAMPLED_VOCABULARY_RATIO = 4  # a vocabulary under this many times the sampled words keeps the full softmax
# The share of the machine's fp32 matrix-multiply rate (models.fitting.matmul_rate) at which `medium` trains with
# the full softmax, counted in its arithmetic (flops_per_token): to say before training about how many epochs a time
# limit fits, on this machine rather than on the one the presets were tuned on. Measured on two 2-core machines: 0.63
# without AVX-512 (2,369 tokens/s at 26.6 MFLOP per token against a 100 GFLOP/s product) and about 0.47 with it
# (6,300-6,800 tokens/s against a 368-396 GFLOP/s best product); a fixed rate had told the first one 2.9 times too many
# epochs. The middle is used: it errs by about 15 % either way, which matters only near the lines above.
TRAINING_SHARE = 0.55


def choose_preset(words: int, minutes: float | None = None) -> tuple[str, str]:
    """The preset `auto` stands for a corpus of `words` words and a time limit, and why, in one line.

    Without a limit, "medium" from MEDIUM_FROM_WORDS words and "small" below, whose long schedule suits a few
    thousand titles given all the time they need. Under a limit, "medium" already from MEDIUM_TIMED_FROM_WORDS: its
    clipped SGD learns faster per minute, and on 2,000 Hacker News titles (13,700 words) it beat "small" at every
    limit measured (bench/RESULTS.md, "Training to a time limit").
    """
    if words >= MEDIUM_FROM_WORDS:
        name, reason = "medium", f"medium, for {words:,} words (at least {MEDIUM_FROM_WORDS:,})"
    elif minutes and words >= MEDIUM_TIMED_FROM_WORDS:
        name, reason = "medium", (f"medium, for {words:,} words under a time limit (at least "
                                  f"{MEDIUM_TIMED_FROM_WORDS:,}; without a limit, small below {MEDIUM_FROM_WORDS:,})")
    else:
        floor = MEDIUM_TIMED_FROM_WORDS if minutes else MEDIUM_FROM_WORDS
        name, reason = "small", f"small, for {words:,} words (under {floor:,})"
    if minutes:
        reason += (f"; planned for {minutes:g} minutes: the learning rate falls to zero at the limit (or, {HELD}) "
                   "and dropout is scaled to the epochs that fit")
    return name, reason


def full_softmax_epochs(config: ModelConfig, vocab_size: int, train_tokens: int, minutes: float,
                        matmul_flops: float) -> float:
    """About how many epochs of `train_tokens` fit in `minutes` with the full softmax, on a machine whose matrix
    products run at `matmul_flops` FLOP/s."""
    return minutes * 60 * TRAINING_SHARE * matmul_flops / (flops_per_token(config, vocab_size) * max(train_tokens, 1))


def plan_network(config: ModelConfig, vocab_size: int, train_tokens: int, minutes: float | None,
                 matmul_rate: Callable[[], float], *, resizable: bool = True) -> ModelConfig:
    """`config` as a time limit trains it, in two steps. Where fewer than FULL_WIDTH_FROM_EPOCHS epochs of the
    preset's network, with the full softmax, fit the limit, its layers narrow to SHORT_BUDGET_WIDTH units (unless not
    `resizable`: a resumed or fine-tuned model keeps the shape of its weights). Then, where fewer than
    SWITCHED_SOFTMAX_UNTIL_EPOCHS epochs of that network fit, it trains the sampled softmax for the first
    SAMPLED_SHARE of the limit and the full softmax after. Only for a preset that samples under a limit, and a
    vocabulary large enough to gain from it. `matmul_rate` measures the machine (FLOP/s); it is called only when the
    choice depends on it."""
    samples = config.sampled_softmax
    if not samples:
        return config
    full = config.replace(sampled_softmax=0, sampled_share=1.0)
    if not minutes or not config.budget_schedule or vocab_size < SAMPLED_VOCABULARY_RATIO * samples:
        return full
    flops = matmul_rate()

    def fit(network: ModelConfig) -> float:
        return full_softmax_epochs(network, vocab_size, train_tokens, minutes, flops)

    if resizable and full.hidden_dim > SHORT_BUDGET_WIDTH and fit(full) < FULL_WIDTH_FROM_EPOCHS:
        full = full.replace(hidden_dim=SHORT_BUDGET_WIDTH, embedding_dim=min(full.embedding_dim, SHORT_BUDGET_WIDTH))
    if fit(full) < SWITCHED_SOFTMAX_UNTIL_EPOCHS:
        return full.replace(sampled_softmax=samples, sampled_share=SAMPLED_SHARE)
    return full
