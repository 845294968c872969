"""`bot demo`: the whole job on a bundled corpus, offline — import, train, sample, filter, queue for review."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bot import training
from bot.bots_toml import Written, add_bot, bot_table
from bot.config import Settings
from bot.corpus import add_documents, get_corpus, summarize
from bot.errors import ConfigError
from bot.filters import FilterConfig
from bot.generation import GenerationReport, generate
from bot.queue import list_candidates, ready_count
from bot.store import Store
from bot.store.schema import Status
from models.config import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from models.sampler import SamplingSettings
from models.trainer import TrainingReporter, TrainingSummary
from scrapers.files import read_documents

DEMO_NAME = "demo"  # the corpus, model and bot the demo writes
DEMO_DATA = "hacker_news_2000.txt"  # 2,000 top Hacker News titles (MIT, see bot/data/LICENSE.textgenrnn-datasets)
DEMO_PRESET = "small"
DEMO_MAX_MINUTES = 3.0  # training time limit, so the demo ends within 5 minutes on a 2-core machine
DEMO_SAMPLES = 100  # candidates sampled per round
MIN_PENDING = 10  # the demo leaves at least this many candidates to review
MAX_ROUNDS = 5  # sampling rounds at most, when filters leave too few
DEMO_PLATFORM = "file"  # the demo's bot posts to BOT_HOME/demo-posts.jsonl: nothing leaves the machine
DEMO_POST_EVERY, DEMO_DAILY_CAP = "10m", 10  # so that `bot run` shows an approved post within minutes


def demo_bot_table() -> str:
    """The review-mode bot `bot demo` leaves in bots.toml, so that `bot serve`, `bot run` and `bot post` work on
    what it queued."""
    return ("# Written by `bot demo`: a review-mode bot that posts what you approve to a file under BOT_HOME.\n"
            + bot_table(name=DEMO_NAME, corpus=DEMO_NAME, platform=DEMO_PLATFORM, mode="review",
                        post=DEMO_POST_EVERY, daily_cap=DEMO_DAILY_CAP, queue_size=DEMO_SAMPLES))


@dataclass
class DemoResult:
    documents: int
    words: int
    added: int
    training: TrainingSummary
    generation: list[GenerationReport] = field(default_factory=list)
    pending: int = 0
    bots_file: Written | None = None  # where the demo's bot was written (or found)
    bots_file_problem: str | None = None  # why it could not be, in a sentence

    @property
    def sampled(self) -> int:
        return sum(r.sampled for r in self.generation)

    @property
    def rejections(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for report in self.generation:
            for name, count in report.counts.items():
                total[name] = total.get(name, 0) + count
        return total

    @property
    def accepted(self) -> list[str]:
        """The accepted titles, best first (`GenerationReport.rank`), as the review queue lists them."""
        ranked = [(r.rank(i), s.text) for r in self.generation for i, s in enumerate(r.accepted)]
        return [text for _, text in sorted(ranked, key=lambda pair: -pair[0])]  # stable: ties in sampled order


def demo_data_path() -> Path:
    return Path(str(resources.files("bot") / "data" / DEMO_DATA))


def run_demo(store: Store, settings: Settings, bots_path: Path, *, reporter: TrainingReporter | None = None,
             max_minutes: float = DEMO_MAX_MINUTES, preset_name: str = DEMO_PRESET,
             on_stage: Callable[[str], None] = lambda stage: None) -> DemoResult:
    on_stage(f"Importing the bundled corpus ({DEMO_DATA}) into corpus {DEMO_NAME!r}")
    with store.session() as session:
        added = add_documents(session, DEMO_NAME, read_documents(demo_data_path(), format="txt")).added
        summary = summarize(session, get_corpus(session, DEMO_NAME))
    base = training.default_base(settings)
    how = f"Fine-tuning {training.describe_base(base)} into model" if base else "Training model"
    on_stage(f"{how} {DEMO_NAME!r} on the CPU (at most {max_minutes:g} minutes)")
    trained = training.train(store, settings, DEMO_NAME, DEMO_NAME, training.AUTO if base else preset_name,
                             max_minutes=max_minutes, replace=True, reporter=reporter, init_from=base)
    result = DemoResult(documents=summary.documents, words=summary.words, added=added, training=trained)
    on_stage(f"Sampling candidates, filtering them, and queueing them for bot {DEMO_NAME!r}")
    for _ in range(MAX_ROUNDS):
        room = max(DEMO_SAMPLES - _ready(store), 0)  # the demo bot's queue_size, as its refills keep it
        report = generate(store, settings, DEMO_NAME, n=DEMO_SAMPLES,
                          sampling=SamplingSettings(temperature=DEFAULT_TEMPERATURE, top_p=DEFAULT_TOP_P),
                          platform=DEMO_PLATFORM, filters=FilterConfig(), enqueue_bot=DEMO_NAME, enqueue_limit=room)
        result.generation.append(report)
        result.pending = _pending(store)
        if result.pending >= MIN_PENDING:
            break
    on_stage(f"Describing bot {DEMO_NAME!r} in {bots_path}")
    try:
        result.bots_file = add_bot(bots_path, DEMO_NAME, demo_bot_table())
    except (ConfigError, OSError) as error:  # the queue is filled: say what is wrong rather than lose the work
        result.bots_file_problem = str(error) if isinstance(error, ConfigError) else f"{bots_path}: {error.strerror}"
    return result


def _ready(store: Store) -> int:
    with store.session() as session:
        return ready_count(session, DEMO_NAME)


def _pending(store: Store) -> int:
    with store.session() as session:
        return len(list_candidates(session, status=Status.PENDING, bot=DEMO_NAME))
