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
from bot.generation import generate, novelty_index
from bot.store import Store
from models.sampler import Sample, SamplingSettings

MAX_SAMPLES = 50  # samples one request may ask for: sampling runs while the person waits
SEED_RANGE = 2**31  # seeds drawn for a try, recorded with what is queued so it can be sampled again


@dataclass(frozen=True)
class Tried:
    """One sample as the panel shows it."""

    text: str
    logprob: float
    tokens: int
    rejection: Rejection | None  # the first filter that would refuse it; None: it would be queued

    @property
    def score(self) -> float:
        """Mean log-probability per token, the queue's score."""
        return self.logprob / max(self.tokens, 1)


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
    tried = [Tried(s.text, s.logprob, s.tokens, None) for s in report.accepted]
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
            corpus = registry.load(settings, bot.model_name).info.get("corpus")
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
        rows = queue.enqueue(session, bot.name, kept, record)
        return Sent([row.id for row in rows], refused)
