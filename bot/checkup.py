"""`bot check`: what each bot in bots.toml still needs before `bot run` can keep it going, without posting anything.

Per bot: its corpus (and whether it is big enough to learn from), its model, what posting needs (the publisher is
built exactly as the post job builds it, so missing keys are found the same way, but nothing is sent), what its
sources need, and its queue. Each finding says what to run next. Nothing is posted: the only network requests are a
publisher's reads of its own account, where the platform has rules for it (`account_problem`: Mastodon's bot flag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from bot import registry
from bot.config import BotConfig, BotsFile, Settings
from bot.errors import USER_ERRORS
from bot.store import Store
from models.errors import ModelError

Level = Literal["ok", "note", "missing"]  # "missing": `bot run` cannot keep the bot going until it is fixed

# Corpus sizes, in documents. Fine-tuned from the base model, a few hundred texts give posts in the corpus's style
# (the demo's 2,000 Hacker News titles read well; bench/RESULTS.md has the measured figures); fewer mostly repeat it.
TOO_FEW_TEXTS = 200
ENOUGH_TEXTS = 1000


@dataclass
class Finding:
    what: str  # "corpus", "model", "posting", "sources", "queue"
    level: Level
    detail: str
    next: str | None = None  # the command (or edit) that fixes it, where one does


@dataclass
class BotCheck:
    name: str
    mode: str
    target: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(f.level != "missing" for f in self.findings)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "mode": self.mode, "target": self.target, "ready": self.ready,
                "findings": [asdict(f) for f in self.findings]}


@dataclass
class Checkup:
    config: str | None  # the bots file read, if any
    database: Finding
    bots: list[BotCheck]
    broker: Finding | None = None  # with BOT_BROKER_URL: whether it answers, and the workers seen taking its queues

    @property
    def ready(self) -> bool:
        return (self.database.level != "missing" and (self.broker is None or self.broker.level != "missing")
                and bool(self.bots) and all(b.ready for b in self.bots))

    def to_json(self) -> dict[str, object]:
        return {"config": self.config, "ready": self.ready, "database": asdict(self.database),
                "broker": asdict(self.broker) if self.broker else None, "bots": [b.to_json() for b in self.bots]}


def check(settings: Settings, bots: BotsFile, config: str | None, open_store: Callable[[], Store]) -> Checkup:
    """Check every bot; `open_store()` opens the database (its failure is the database's finding)."""
    from bot.config import mask_password

    shown = mask_password(settings.database_url)
    store: Store | None = None
    try:
        store = open_store()
        database = Finding("database", "ok", f"{shown} answers and its tables are up to date")
    except USER_ERRORS as error:
        database = Finding("database", "missing", str(error), "check BOT_DATABASE_URL (README: Settings)")
    try:
        return Checkup(config, database, [check_bot(settings, bot, store) for bot in bots.bot],
                       _broker(settings, store) if settings.bot_broker_url else None)
    finally:
        if store is not None:
            store.close()


def _broker(settings: Settings, store: Store | None) -> Finding:
    """With BOT_BROKER_URL, `bot run` only sends refills and trainings: the broker must answer and workers must take
    both queues, or no bot is refilled or trained."""
    from bot.config import mask_password
    from bot.service.broker import QUEUES, queue_lengths
    from bot.service.dispatch import alive_workers
    from bot.store.schema import utcnow

    shown = mask_password(settings.bot_broker_url)
    answer = queue_lengths(settings)
    if not answer["reachable"]:
        return Finding("broker", "missing", f"{shown} {answer['problem']}; `bot run` would post, but send no refill "
                       "or training", "check BOT_BROKER_URL (README: Workers on other hosts)")
    if store is None:
        return Finding("broker", "ok", f"{shown} answers")
    with store.session() as session:
        alive = alive_workers(session, utcnow())
    taken = {q for w in alive for q in w.queues.split(",")}
    untaken = [q for q in sorted(set(QUEUES.values())) if q not in taken]
    if untaken:
        return Finding("broker", "note", f"{shown} answers, but no running `bot worker` takes queue "
                       f"{' or '.join(untaken)}: those tasks wait until one does",
                       f"bot worker --queues {','.join(untaken)} (on any host that reaches the database and the "
                       "broker)")
    return Finding("broker", "ok", f"{shown} answers; {len(alive)} worker{'s' if len(alive) != 1 else ''} running")


def check_bot(settings: Settings, bot: BotConfig, store: Store | None) -> BotCheck:
    result = BotCheck(bot.name, bot.mode, bot.target)
    documents = _corpus(result, settings, bot, store)
    _model(result, settings, bot, documents, store)
    _posting(result, settings, bot)
    _sources(result, settings, bot)
    if store is not None:
        _queue(result, bot, store)
    return result


def _corpus(result: BotCheck, settings: Settings, bot: BotConfig, store: Store | None) -> int | None:
    from bot.corpus import corpus_size

    if store is None:
        return None
    with store.session() as session:
        documents = corpus_size(session, bot.corpus)
    if documents == 0:
        if bot.sources:
            result.findings.append(Finding(
                "corpus", "note", f"corpus {bot.corpus!r} is empty; the bot's first refill under `bot run` scrapes "
                f"its sources and trains its model first",
                f"bot run (or scrape now: {_scrape_command(settings, bot)})"))
        else:
            result.findings.append(Finding(
                "corpus", "missing", f"corpus {bot.corpus!r} is empty and the bot has no sources",
                f"bot import FILE --corpus {bot.corpus} (or add sources to the bot in bots.toml)"))
    elif documents < TOO_FEW_TEXTS:
        result.findings.append(Finding(
            "corpus", "note", f"corpus {bot.corpus!r} holds {documents:,} texts: enough to fine-tune the base model, "
            f"but its posts will repeat the corpus's phrases; {TOO_FEW_TEXTS:,} or more read better",
            _scrape_command(settings, bot) if bot.sources else f"bot import FILE --corpus {bot.corpus}"))
    else:
        more = "" if documents >= ENOUGH_TEXTS else f" ({ENOUGH_TEXTS:,} or more read better still)"
        result.findings.append(Finding("corpus", "ok", f"corpus {bot.corpus!r} holds {documents:,} texts{more}"))
    return documents


def _model(result: BotCheck, settings: Settings, bot: BotConfig, documents: int | None, store: Store | None) -> None:
    from bot.model_store import HASH_PREFIX, local_hash, serving_version

    name = bot.model_name
    published = serving_version(store, name) if store is not None else None
    if published is not None and local_hash(settings.model_dir(name)) != published[0]:
        # trained on a worker (or another host): this host fetches it when it first samples
        where = f", version {published[0][:HASH_PREFIX]} in the database; this host fetches it on first use"
        _trained(result, bot, published[1].get("valid_perplexity"), published[1].get("corpus"), where)
        return
    if not settings.model_dir(name).exists():
        if documents or bot.sources:
            after = "" if documents else " once it has scraped the sources"
            result.findings.append(Finding(
                "model", "note", f"model {name!r} does not exist yet; the bot's first refill under `bot run` trains "
                f"it{after} (up to {bot.training.max_minutes:g} minutes)",
                f"bot run (or train now: bot train {bot.corpus} --model {name})" if documents else "bot run"))
        else:
            result.findings.append(Finding("model", "missing", f"model {name!r} does not exist yet, and there is "
                                           "nothing to train it on", f"bot train {bot.corpus} --model {name}, once "
                                           "the corpus holds texts"))
        return
    try:
        model = registry.load(settings, name)
    except (ModelError, *USER_ERRORS) as error:
        result.findings.append(Finding("model", "missing", str(error),
                                       f"bot train {bot.corpus} --model {name} --force"))
        return
    _trained(result, bot, model.metrics.get("valid_perplexity"), model.info.get("corpus"), "")


def _trained(result: BotCheck, bot: BotConfig, perplexity: object, corpus: object, where: str) -> None:
    name = bot.model_name
    trained = f"held-out perplexity {perplexity:.1f}" if isinstance(perplexity, int | float) else "trained"
    if corpus and corpus != bot.corpus:
        result.findings.append(Finding("model", "note", f"model {name!r} ({trained}{where}) was trained on corpus "
                                       f"{corpus!r}, not the bot's {bot.corpus!r}",
                                       f"bot train {bot.corpus} --model {name} --force"))
    else:
        result.findings.append(Finding("model", "ok", f"model {name!r}: {trained}{where}"))


def _posting(result: BotCheck, settings: Settings, bot: BotConfig) -> None:
    """The publisher, built as the post job builds it: its missing keys or folders are the post job's errors."""
    from bot.publishers import open_publisher

    try:
        publisher = open_publisher(settings, bot)
    except USER_ERRORS as error:
        result.findings.append(Finding("posting", "missing", str(error)))  # the error says what to set
        return
    try:
        account_problem = getattr(publisher, "account_problem", None)  # a platform's rules for the account itself
        problem = account_problem() if account_problem else None
        result.findings.append(Finding("posting", "ok", f"posts to {publisher.describe()}; keys and destination "
                                       "are set (nothing was sent)"))
        if problem:
            result.findings.append(Finding("posting", "note", problem))
    finally:
        publisher.close()


def _sources(result: BotCheck, settings: Settings, bot: BotConfig) -> None:
    from bot.platforms import SOURCES

    for source in bot.sources:
        missing = SOURCES[source.type].missing(settings, source)
        if missing:
            result.findings.append(Finding("sources", "missing", missing))


def _queue(result: BotCheck, bot: BotConfig, store: Store) -> None:
    from sqlalchemy import func, select

    from bot.store.schema import Candidate, Status

    with store.session() as session:
        counts = dict(session.execute(select(Candidate.status, func.count()).where(Candidate.bot == bot.name)
                                      .group_by(Candidate.status)).all())
    pending, approved = counts.get(Status.PENDING, 0), counts.get(Status.APPROVED, 0)
    detail = f"{pending} pending, {approved} approved (queue_size {bot.queue_size})"
    if bot.mode == "review" and pending and not approved:
        result.findings.append(Finding("queue", "note", detail + "; a review-mode bot posts only approved ones",
                                       "bot serve (or bot queue approve ID)"))
    else:
        result.findings.append(Finding("queue", "ok", detail))


def _scrape_command(settings: Settings, bot: BotConfig) -> str:
    from bot.platforms import SOURCES, source_file

    source = bot.sources[0]
    if getattr(source, "path", None) is not None:  # the file the source reads, wherever the command runs
        source = source.model_copy(update={"path": source_file(settings, source)})
    return SOURCES[source.type].command(source, bot.corpus)
