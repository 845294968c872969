"""Generation: sample candidates from a model, filter them, and optionally put the survivors in a bot's queue."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import queue, registry
from bot.config import BotConfig, Settings
from bot.corpus import get_corpus, iter_texts
from bot.errors import BotError, NotFoundError
from bot.filters import CONTROLS, FilterConfig, FilterSet, Rejection, check_controls
from bot.novelty import BASE_CORPUS_FILE, BaseCorpusIndex, CombinedNovelty, NoveltyCheck, NoveltyIndex
from bot.store import Store
from bot.store.schema import Candidate, StoredDocument
from models.artifact import WEIGHTS, load_model
from models.errors import ModelError
from models.sampler import Sample, SamplingSettings
from models.scoring import Scorer
from scrapers.text import CONTROL, printable

log = logging.getLogger(__name__)

UNFINISHED = "unfinished"  # the rejection of a sample cut off at the length cap before it ended
EMPTY = "empty"  # the rejection of a sample that ended before it added anything to the prefix
DEFAULT_PLATFORM = "reddit"  # whose length and link rules apply when no bot says


@dataclass
class GenerationReport:
    model: str
    sampled: int = 0
    accepted: list[Sample] = field(default_factory=list)
    rejected: list[tuple[Sample, Rejection]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rejections per filter, every filter named
    enqueued: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0
    # the reader's score of each accepted sample, by its position in `accepted` (models.scoring); empty without a
    # base model to read with
    plausibility: dict[int, float] = field(default_factory=dict)

    def rank(self, i: int) -> float:
        """How good accepted sample `i` looks: the reader's score, else the model's own mean log-probability."""
        sample = self.accepted[i]
        return self.plausibility.get(i, sample.logprob / max(sample.tokens, 1))


@functools.lru_cache(maxsize=2)
def _scorer(path: str, stamp: int) -> Scorer:  # `stamp`: the weights' mtime, so a retrained base is read anew
    model = load_model(Path(path))
    return Scorer(model.config, model.tokenizer, model.weights)


def reader(settings: Settings) -> Scorer | None:
    """The base model as the reader that scores candidates, or None where no base model is at hand."""
    from bot.training import default_base

    base = default_base(settings)
    if base is None:
        return None
    path = registry.resolve(settings, base)
    return _scorer(str(path.resolve()), (path / WEIGHTS).stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _base_corpus_index(path: str, stamp: int) -> BaseCorpusIndex:  # `stamp`: the file's mtime: a rebuilt one is read
    return BaseCorpusIndex.load(Path(path))


def base_corpus_indexes(settings: Settings, model_info: dict[str, object]) -> list[BaseCorpusIndex]:
    """The novelty indexes of the base corpora a model may recite (bot.novelty.BaseCorpusIndex), loaded once per
    process: that of the base it was fine-tuned from (its config records the folder) and that of the default base
    (`reader`'s, which also covers a recorded folder that has since moved), where their folders carry one."""
    from bot.training import default_base

    folders = []
    recorded = model_info.get("base")
    if isinstance(recorded, dict) and recorded.get("path") and Path(str(recorded["path"])).is_dir():
        folders.append(Path(str(recorded["path"])))
    chosen = default_base(settings)
    if chosen is not None:
        folders.append(registry.resolve(settings, chosen))
    files = dict.fromkeys(str((folder / BASE_CORPUS_FILE).resolve()) for folder in folders)  # once each, in order
    return [_base_corpus_index(file, Path(file).stat().st_mtime_ns) for file in files if Path(file).is_file()]


def novelty_index(session: Session, corpus_name: str, cache_dir: Path) -> NoveltyIndex:
    """The corpus's novelty index, built once per corpus state and cached on disk."""
    corpus = get_corpus(session, corpus_name)
    count, last = session.execute(
        select(func.count(), func.max(StoredDocument.id)).where(StoredDocument.corpus_id == corpus.id)).one()
    path = cache_dir / f"{corpus.id}-{count}-{last}.npz"  # changes whenever documents are added or removed
    if path.exists():
        return NoveltyIndex.load(path)
    index = NoveltyIndex.build(iter_texts(session, corpus_name))
    cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in cache_dir.glob(f"{corpus.id}-*.npz"):
        stale.unlink()
    index.save(path)
    return index


def generate(store: Store, settings: Settings, model_name: str, *, n: int, sampling: SamplingSettings,
             prefix: str = "", seed: int | None = None, platform: str = DEFAULT_PLATFORM,
             filters: FilterConfig | None = FilterConfig(), enqueue_bot: str | None = None,
             enqueue_limit: int | None = None, queue_size: int | None = None,
             progress: Callable[[int], None] | None = None) -> GenerationReport:
    """Sample `n` texts; with `filters`, keep those every filter passes; score them with the base model (`reader`);
    with `enqueue_bot`, queue them as pending (at most `enqueue_limit` of them: the most plausible, `rank`).

    With `queue_size`, the room left in the bot's queue is counted again in the transaction that queues, under the
    bot's lock (`bot.posting.lock_bot`): two refills of one bot at once (two workers, a redelivered task) never
    queue past it together."""
    started = time.monotonic()
    control = CONTROL.search(prefix)
    if control:
        raise BotError(f"The prefix contains the control character {printable(control.group(0))}, which no post may "
                       "hold; remove it.")
    model = registry.load(settings, model_name, store=store)  # fetched first where another host published it
    report = GenerationReport(model=model_name)
    with store.session() as session:
        filter_set = _filter_set(session, settings, model.info, filters, platform, enqueue_bot)
        for sample in model.sampler().iter_samples(n, sampling, prefix=prefix, seed=seed):
            report.sampled += 1
            rejection = _judge(sample, filter_set, prefix)
            if rejection:
                report.rejected.append((sample, rejection))
            else:
                report.accepted.append(sample)
            if progress:
                progress(report.sampled)
        scorer = reader(settings) if report.accepted else None
        if scorer is not None:
            scores = scorer.score([s.text for s in report.accepted]).mean
            report.plausibility = {i: float(v) for i, v in enumerate(scores)}
        report.counts = {name: 0 for name in ((UNFINISHED, EMPTY) + (filter_set.names if filter_set else (CONTROLS,)))}
        for _, rejection in report.rejected:
            report.counts[rejection.filter] += 1
        if enqueue_bot:
            record = queue.SamplingRecord(model=model_name, temperature=sampling.temperature, top_k=sampling.top_k,
                                          top_p=sampling.top_p, prefix=prefix or None, seed=seed)
            chosen = list(range(len(report.accepted)))
            if queue_size is not None:
                from bot.posting import lock_bot

                lock_bot(session, enqueue_bot)
                room = max(0, queue_size - queue.ready_count(session, enqueue_bot))
                enqueue_limit = room if enqueue_limit is None else min(enqueue_limit, room)
            if enqueue_limit is not None and len(chosen) > enqueue_limit:
                chosen = sorted(sorted(chosen, key=report.rank, reverse=True)[:enqueue_limit])  # in sampled order
            report.enqueued = queue.enqueue(session, enqueue_bot, [report.accepted[i] for i in chosen], record,
                                            {k: report.plausibility[i] for k, i in enumerate(chosen)
                                             if i in report.plausibility})
    report.seconds = time.monotonic() - started
    return report


def _filter_set(session: Session, settings: Settings, model_info: dict[str, object], config: FilterConfig | None,
                platform: str, bot: str | None) -> FilterSet | None:
    if config is None:
        return None
    index = None
    if config.novelty:
        corpus = model_info.get("corpus")
        if not corpus:
            raise BotError("The model does not record its corpus, so novelty cannot be checked; retrain it.")
        own = novelty_index(session, str(corpus), settings.bot_home / "cache" / "novelty")
        index = _with_base_corpora(own, base_corpus_indexes(settings, model_info))
    existing = queue.existing_texts(session, bot) if bot else ()
    return FilterSet(config, platform=platform, novelty=index, existing=existing)


def _with_base_corpora(own: NoveltyIndex | None, bases: list[BaseCorpusIndex]) -> NoveltyCheck | None:
    """One novelty check for the model's own corpus and its base corpora: its reason names which was copied."""
    checks: list[NoveltyCheck] = [index for index in (own, *bases) if index is not None]
    if len(checks) <= 1:
        return checks[0] if checks else None
    return CombinedNovelty(*checks)


def _judge(sample: Sample, filter_set: FilterSet | None, prefix: str) -> Rejection | None:
    """Unfinished and empty samples are never kept, and never a text with control characters, filters or not."""
    if not sample.complete:
        return Rejection(UNFINISHED, f"no end within {sample.tokens} tokens")
    if sample.empty:
        return Rejection(EMPTY, "adds nothing to the prefix" if prefix.strip() else "is empty")
    if filter_set is None:
        reason = check_controls(sample.text)
        return Rejection(CONTROLS, reason) if reason else None
    return filter_set.accept(sample.text)


def filters_for_candidate(session: Session, settings: Settings, candidate: Candidate,
                          bot: BotConfig | None) -> FilterSet:
    """The filters an edit of `candidate` must pass: its bot's, with its own old text not counted as a duplicate."""
    config = bot.filters if bot else FilterConfig()
    platform = bot.platform if bot else DEFAULT_PLATFORM
    index = None
    if config.novelty:
        info: dict[str, object] = {}
        try:
            # the store around the session's engine: a review host may not have fetched the model yet
            info = registry.load(settings, candidate.model, store=Store(session.get_bind())).info
        except (BotError, ModelError) as exc:
            log.warning("the edit is not checked against the model's corpus: %s", exc)
        corpus = info.get("corpus")
        own = novelty_index(session, str(corpus), settings.bot_home / "cache" / "novelty") if corpus else None
        try:
            bases = base_corpus_indexes(settings, info)
        except NotFoundError as exc:  # a base model that is gone: the edit is still checked against the corpus
            log.warning("the edit is not checked against the base corpus: %s", exc)
            bases = []
        index = _with_base_corpora(own, bases)
    existing = queue.existing_texts(session, candidate.bot, excluding=candidate.id)
    return FilterSet(config, platform=platform, novelty=index, existing=existing)
