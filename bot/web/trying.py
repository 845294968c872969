"""The try-the-model panel's work: sample from a bot's model without queueing, show what each filter thinks, and
queue the samples a person picks (their filters checked again, against the queue as it is then)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from bot import queue, registry
from bot.config import BotConfig, Settings
from bot.errors import BotError
from bot.filters import FilterSet, Rejection
from bot.generation import generate, novelty_index, reader
from bot.store import Store
from models.sampler import Sample, SamplingSettings
from models.tokenizer import piece_count

MAX_SAMPLES = 50  # samples one request may ask for: sampling runs while the person waits
SEED_RANGE = 2**31  # seeds drawn for a try, recorded with what is queued so it can be sampled again


@dataclass(frozen=True)
class Tried:
    """One sample as the panel shows it."""

    text: str
    logprob: float
    tokens: int  # the model's tokens, case markers and <eos> included: what its log-probability is summed over
    rejection: Rejection | None  # the first filter that would refuse it; None: it would be queued
    plausibility: float | None = None  # the base model's mean log-probability per piece, where it read the sample

    @property
    def score(self) -> str:
        """The queue's one score (`bot.queue.score`), as the queue shows it: the base model's where it scored the
        sample, else the bot's own model's mean log-probability per token."""
        own = self.logprob / max(self.tokens, 1)
        return queue.SCORE_FORMAT.format(own if self.plausibility is None else self.plausibility)

    @property
    def pieces(self) -> int:
        """The words and marks of the text (case markers are tokens, not words)."""
        return piece_count(self.text)


def try_model(store: Store, settings: Settings, bot: BotConfig, *, n: int, temperature: float, top_p: float,
              prefix: str = "") -> tuple[list[Tried], queue.SamplingRecord]:
    """`n` samples (at most MAX_SAMPLES) from the bot's model with its filters; nothing is queued."""
    if not 1 <= n <= MAX_SAMPLES:
        raise BotError(f"Ask for 1 to {MAX_SAMPLES} samples at a time.")
    sampling = SamplingSettings(temperature=temperature, top_k=bot.sampling.top_k, top_p=top_p,
                                max_tokens=bot.sampling.max_tokens, rare_words=bot.sampling.rare_words)
    seed = secrets.randbelow(SEED_RANGE)
    report = generate(store, settings, bot.model_name, n=n, sampling=sampling, prefix=prefix, seed=seed,
                      platform=bot.platform, filters=bot.filters)
    tried = [Tried(s.text, s.logprob, s.tokens, None, report.plausibility.get(i))
             for i, s in enumerate(report.accepted)]
    tried += [Tried(s.text, s.logprob, s.tokens, rejection) for s, rejection in report.rejected]
    record = queue.SamplingRecord(model=bot.model_name, temperature=temperature, top_k=bot.sampling.top_k,
                                  top_p=top_p, prefix=prefix or None, seed=seed)
    return tried, record


@dataclass
class Sent:
    ids: list[int]
    refused: list[tuple[str, Rejection]]


def send(store: Store, settings: Settings, bot: BotConfig, samples: Sequence[Sample],
         record: queue.SamplingRecord) -> Sent:
    """Queue `samples` as pending candidates of `bot`, each that its filters still pass (duplicates of the queue,
    or of one another, included); the rest are reported, not queued."""
    with store.session() as session:
        index = None
        if bot.filters.novelty:
            corpus = registry.load(settings, bot.model_name, store=store).info.get("corpus")
            if not corpus:
                raise BotError("The model does not record its corpus, so novelty cannot be checked; retrain it.")
            index = novelty_index(session, corpus, settings.bot_home / "cache" / "novelty")
        filters = FilterSet(bot.filters, platform=bot.platform, novelty=index,
                            existing=queue.existing_texts(session, bot.name))
        kept, refused = [], []
        for sample in samples:
            rejection = filters.accept(sample.text)
            if rejection is None:
                kept.append(sample)
            else:
                refused.append((sample.text, rejection))
        scorer = reader(settings) if kept else None  # scored as `bot run` scores what it queues: one score
        scores = scorer.score([s.text for s in kept]).mean if scorer is not None else ()
        rows = queue.enqueue(session, bot.name, kept, record, {i: float(v) for i, v in enumerate(scores)})
        return Sent([row.id for row in rows], refused)
