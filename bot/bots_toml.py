"""Writing bots.toml for people: `bot init`'s commented starting file, and the bot `bot demo` leaves behind.

Reading and checking the file is `bot.config.load_bots_file`'s job; this module only writes text, and never
overwrites a file a person may have edited: it creates a new file or appends a table to an existing one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.config import BotsFile, load_bots_file
from bot.errors import ConfigError
from bot.platforms import NAMES, SOURCES, SourceKind
from bot.platforms import PLATFORMS as PLATFORM_SPECS

PLATFORMS = NAMES  # what `bot init --platform` writes a starting bot for: every platform

_HEADER = """\
# bots.toml: the bots `bot run` keeps going, one [[bot]] table each (README: "Running bots").
# Credentials never go here: put them in the environment or in BOT_HOME/.env (README: "Settings").
# `bot check` reads this file and says, per bot, what is still missing and what to run next.
"""

COMMENT_COLUMN = 36  # where the comments of a table's lines start

def _first_run(platform: str, name: str, corpus: str) -> str:
    source = _example_source(platform)
    get = (source.command(source_model(source), corpus), source.about) if source else (
        f"bot import posts.txt --corpus {corpus}", "a text per line; or .csv, .jsonl, an X archive")
    steps = [get, (f"bot train {corpus} --model {name}", "fine-tunes the base model nnbot ships; minutes on a CPU"),
             ("bot check", "says what is still missing, per bot"),
             ("bot run", "refills the queue at once, then posts on the schedule"),
             ("bot serve", "the review page: a review-mode bot posts only what you approve there")]
    width = max(len(step) for step, _ in steps) + 2
    return ("# The first run, in order:\n" + "".join(f"#   {step.ljust(width)}# {why}\n" for step, why in steps)
            + "# A corpus of a few hundred texts is enough to start from the base model; a few thousand read better.\n")


def _example_source(platform: str) -> SourceKind | None:
    """The source a starting bot on `platform` learns from: the platform's own kind, where there is one."""
    return SOURCES.get(platform)


def source_model(kind: SourceKind) -> object:
    """`kind`'s example as the validated model a bots.toml would give."""
    from pydantic import TypeAdapter

    from bot.config import Source

    return TypeAdapter(Source).validate_python(tomllib.loads(f"s = {kind.example}")["s"])


def _lines(rows: list[tuple[str, str]]) -> str:
    """`key = value` lines with their comments lined up; a row whose code starts with '#' is a commented option."""
    return "".join((code.ljust(COMMENT_COLUMN - 1) + " # " + comment if comment else code).rstrip() + "\n"
                   for code, comment in rows)


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def starting_file(platform: str, name: str = "mybot") -> str:
    """The commented bots.toml `bot init` writes: one review-mode bot on `platform`, valid as it stands."""
    if platform not in PLATFORMS:
        raise ConfigError(f"`bot init` writes a bot for {', '.join(PLATFORMS)}, not {platform!r}.")
    text = (_HEADER + "\n" + _first_run(platform, name, name) + "\n"
            + bot_table(name=name, corpus=name, platform=platform, mode="review", post="4h", daily_cap=3))
    _must_load(text)
    return text


def bot_table(*, name: str, corpus: str, platform: str, mode: str, post: str, daily_cap: int,
              destination: str | None = None, queue_size: int = 20) -> str:
    """One commented [[bot]] table for `platform`; `destination` replaces the platform's example one."""
    q = _toml_string
    spec = PLATFORM_SPECS[platform]
    needs = f"; needs {', '.join(spec.credentials)}" if spec.credentials else ""
    where: list[tuple[str, str]] = [(f"platform = {q(platform)}", spec.about + needs)]
    if spec.destination:
        example = (spec.example_destination or "").format(name=name)
        where.append((f"destination = {q(destination or example)}", spec.destination))
    kind = _example_source(platform)
    if kind is None:
        sources = ("# sources = []", "where the scrape job reads texts (README: Running bots)")
    else:
        sources = (("" if kind.example_ready else "# ") + f"sources = [{kind.example}]", kind.about)
    scrape = ("scrape = \"1d\"", "read the sources again; only new texts are added")
    if kind is None or not kind.example_ready:
        scrape = ("# " + scrape[0], scrape[1])
    return (_lines([("[[bot]]", ""), (f"name = {q(name)}", ""),
                    (f"corpus = {q(corpus)}", "the texts its model learns from (bot corpus list)"),
                    (f"# model = {q(name)}", "default: the bot's name"), *where,
                    (f"mode = {q(mode)}", "review: a person approves each post; autonomous: the best is posted"),
                    (f"queue_size = {queue_size}", "pending + approved candidates kept ready"),
                    (f"daily_cap = {daily_cap}", "posts per day at most"), sources])
            + "\n" + _lines([("[bot.schedule]", ""),
                             (f"post = {q(post)}", "a duration (30m, 4h, 1d) or cron (\"0 9,13,18 * * 1-5\")"),
                             ("refill = \"1h\"", "sample and filter until queue_size candidates are ready"), scrape,
                             ("# retrain = \"7d\"", "retrain the model on the grown corpus"),
                             ("# timezone = \"UTC\"", "for cron entries and the daily cap"),
                             ("# jitter = \"10m\"", "start each run up to this much later, at random")])
            + "\n" + _lines([("# [bot.sampling]", ""),
                             ("# temperature = 0.7", "lower: safer and duller; higher: stranger"),
                             ("# top_p = 0.9", "")])
            + "\n" + _lines([("# [bot.filters]", ""),
                             ("# blocklist = [\"word\", \"a phrase\"]", "added to the default list"),
                             ("# max_chars = 200", "default: the platform's limit")]))


@dataclass(frozen=True)
class Written:
    path: Path
    action: str  # "created", "added" (a table appended to a file), "present" (the file names the bot already)


def add_bot(path: Path, name: str, table: str) -> Written:
    """Make the bots file at `path` name the bot `name`: create the file with `table`, or append `table` to it.

    A file that names the bot already is left as it is, whatever its table says (a person may have changed it);
    one that is not valid TOML is left alone too, with an error. Appending keeps every byte already there.
    """
    if path.exists():
        bots = load_bots_file(path)  # ConfigError naming the line where the file is wrong: nothing is written
        if bots.get(name) is not None:
            return Written(path, "present")
        existing = path.read_text(encoding="utf-8-sig")
        text = existing + ("" if existing.endswith("\n") or not existing else "\n") + "\n" + table
        try:
            _must_load(text)
        except (tomllib.TOMLDecodeError, ValidationError):  # e.g. bots given as `bot = [...]`, not [[bot]] tables
            raise ConfigError(f"{path} is written in a way a [[bot]] table cannot be added to; add bot {name!r} "
                              f"by hand:\n{table}") from None
        path.write_text(text, encoding="utf-8")
        return Written(path, "added")
    path.parent.mkdir(parents=True, exist_ok=True)
    _must_load(_HEADER + "\n" + table)
    with path.open("x", encoding="utf-8") as out:  # "x": never over a file that appeared meanwhile
        out.write(_HEADER + "\n" + table)
    return Written(path, "created")


def write_new(path: Path, text: str) -> None:
    """Create `path` with `text`; an existing file is never overwritten."""
    if path.exists():
        raise ConfigError(f"{path} exists already; nnbot does not overwrite it. Edit it, or write the new file "
                          "elsewhere (`bot init PATH`).")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as out:
        out.write(text)


def _must_load(text: str) -> BotsFile:
    """What this module writes must read back as a valid bots file (a bug here, not the user's mistake)."""
    return BotsFile.model_validate(tomllib.loads(text))
