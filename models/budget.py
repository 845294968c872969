"""Training planned for a time limit: the learning rate reaches zero at the deadline, dropout fits the epochs it allows.

Budgeted training (Li, Yumer & Ramanan, "Budgeted Training: Rethinking Deep Neural Network Training Under Resource
Constraints", ICLR 2020): with a fixed budget, a schedule that decays the learning rate linearly to zero exactly at
the budget's end beats schedules tuned for a number of epochs that will never be reached. Progress is the larger of
the time spent and the steps taken over the epoch limit, so whichever limit comes first ends the decay.

When few epochs fit, the network trains a cheaper output layer and fewer units (`plan_network`).

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
# The sampled softmax wins at equal time when very few epochs fit (PTB, 5 minutes, about 2 full-softmax epochs: valid
# 122.4 against 130.8 with the full softmax); with more, the full softmax's exact gradient is worth its cost. On PTB on
# a slower machine it won at 30 minutes (4.0 epochs by the plan's estimate: 108.1 against 110.8) and at 60 (6.9: 94.6
# against 105.9). The line sits between the plan's estimates for the runs measured on either side (2.5 sampled, 4.0
# full; bench/RESULTS.md).
FULL_SOFTMAX_FROM_EPOCHS = 3.0
# Where so few epochs fit, the layers are first narrowed to this many units (the embeddings to as many channels, at
# most), and the output layer is then chosen for the narrower network: a smaller network fits the few passes better
# and takes more of them. On PTB on one machine in one session, `medium` 300 wide with the sampled softmax (what the
# line alone chose) reached 143.6 at 5 minutes and 120.1 at 10; 200 wide, 142.2 (sampled) and 115.2 (test 112.0
# against 116.2; the full softmax, as 4.0 of its epochs fit), in the same 4 epochs; 200 wide trains 1.66x the
# tokens/s of 300 wide with the sampled softmax in a 45-second run of each.
SHORT_BUDGET_WIDTH = 200
SAMPLED_VOCABULARY_RATIO = 4  # a vocabulary under this many times the sampled words keeps the full softmax
# The share of the machine's fp32 matrix-multiply rate (models.fitting.matmul_rate) at which `medium` trains with
# the full softmax, counted in its arithmetic (flops_per_token): to say before training about how many epochs a time
# limit fits, on this machine rather than on the one the presets were tuned on. Measured on two 2-core machines: 0.63
# without AVX-512 (2,369 tokens/s at 26.6 MFLOP per token against a 100 GFLOP/s product) and about 0.47 with it
# (6,300-6,800 tokens/s against a 368-396 GFLOP/s best product); a fixed rate had told the first one 2.9 times too many
# epochs. The middle is used: it errs by about 15 % either way, which matters only near FULL_SOFTMAX_FROM_EPOCHS.
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
        reason += (f"; planned for {minutes:g} minutes: the learning rate falls to zero at the limit and dropout "
                   "is scaled to the epochs that fit")
    return name, reason


def full_softmax_epochs(config: ModelConfig, vocab_size: int, train_tokens: int, minutes: float,
                        matmul_flops: float) -> float:
    """About how many epochs of `train_tokens` fit in `minutes` with the full softmax, on a machine whose matrix
    products run at `matmul_flops` FLOP/s."""
    return minutes * 60 * TRAINING_SHARE * matmul_flops / (flops_per_token(config, vocab_size) * max(train_tokens, 1))


def plan_network(config: ModelConfig, vocab_size: int, train_tokens: int, minutes: float | None,
                 matmul_rate: Callable[[], float], *, resizable: bool = True) -> ModelConfig:
    """`config` as a time limit trains it, in two steps, each taken where fewer than FULL_SOFTMAX_FROM_EPOCHS epochs of
    the network so far, with the full softmax, fit the limit: first its layers narrow to SHORT_BUDGET_WIDTH units
    (unless not `resizable`: a resumed or fine-tuned model keeps the shape of its weights), then the narrower network
    trains its sampled softmax. Only for a preset that samples under a limit, and a vocabulary large enough to gain
    from it. `matmul_rate` measures the machine (FLOP/s); it is called only when the choice depends on it."""
    samples = config.sampled_softmax
    if not samples:
        return config
    full = config.replace(sampled_softmax=0)
    if not minutes or not config.budget_schedule or vocab_size < SAMPLED_VOCABULARY_RATIO * samples:
        return full
    flops = matmul_rate()

    def few_fit(network: ModelConfig) -> bool:
        return full_softmax_epochs(network, vocab_size, train_tokens, minutes, flops) < FULL_SOFTMAX_FROM_EPOCHS

    if resizable and full.hidden_dim > SHORT_BUDGET_WIDTH and few_fit(full):
        full = full.replace(hidden_dim=SHORT_BUDGET_WIDTH, embedding_dim=min(full.embedding_dim, SHORT_BUDGET_WIDTH))
    return full.replace(sampled_softmax=samples) if few_fit(full) else full
