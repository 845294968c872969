"""Settings from one place: command-line flag > environment (and BOT_HOME/.env) > bots.toml `[settings]` > default.

`Settings` holds where state lives, API credentials and endpoints (pydantic-settings; secrets are `SecretStr`,
never printed). `BotsFile` is `bots.toml`: one `[[bot]]` table per bot, validated by pydantic; a bad file gets
an error naming the field and its line, and nothing runs.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import typing
from urllib.parse import urlsplit
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError
from bot.filters import FilterConfig
from bot.names import check_name
from bot.platforms import NAMES as PLATFORMS
from bot.platforms import PLATFORMS as PLATFORM_SPECS
from models.config import DEFAULT_RARE_WORDS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P

APP_NAME = "nnbot"
DURATION_PATTERN = re.compile(r"^(\d+)\s*([smhd])$")  # "90m", "4h", "1d"
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # seconds
MAX_DURATION_DAYS = 366  # the longest interval or jitter a schedule may give: a year, and a day for a leap year
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # cron's 0-7; APScheduler 3 counts from Monday
_NUMERIC_DAYS = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")
DATABASE_URL_FORMS = "sqlite:////absolute/path/bot.db or postgresql+psycopg://user:password@host:5432/dbname"
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")  # SQLAlchemy 2.1: psycopg 3
SETTINGS_HELP = "the README's Settings section"  # where users read what each setting does


def default_home() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class Settings(BaseSettings):
    """Environment variables, by their names in the README's Settings section (case-insensitive)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_file_encoding="utf-8")

    bot_home: Path = Field(default_factory=default_home, validate_default=True)
    # default: sqlite:///BOT_HOME/bot.db; repr=False: the URL may hold a password
    bot_database_url: str | None = Field(default=None, repr=False)
    bot_sleep_scale: float = Field(default=1.0, ge=0)  # multiplies every wait (rate limits, pacing); tests set 0
    bot_lease_seconds: float = Field(default=60.0, ge=1)  # a `bot run` that stops renewing loses the database then
    # seconds `bot run` goes on retrying a database that is locked or unreachable before it exits non-zero, so that
    # systemd or compose restarts it
    bot_outage_seconds: float = Field(default=600.0, ge=1, le=7 * 86400)
    # what new models are fine-tuned from: a model name under BOT_HOME/models, a model folder, or "none" (from
    # scratch); unset: the base model nnbot ships (bot/data/base), where this install has it
    bot_base_model: str | None = None
    # the Redis that carries training and refill tasks to `bot worker`s, e.g. redis://127.0.0.1:6379/0; unset:
    # `bot run` does every job in-process; repr=False: the URL may hold a password
    bot_broker_url: str | None = Field(default=None, repr=False)
    # seconds a task a worker took may go unacknowledged before Redis hands it to another worker: longer than the
    # longest training (a bot's [bot.training] max_minutes), since a task still running then is handed out again
    # (the second worker sees it running, watches it, and puts it back); a task whose worker died comes back after it
    bot_broker_visibility_timeout: float = Field(default=3600.0, ge=1, le=7 * 86400)

    reddit_client_id: str | None = None
    reddit_client_secret: SecretStr | None = None
    reddit_username: str | None = None
    reddit_password: SecretStr | None = None
    reddit_user_agent: str | None = None
    reddit_oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"

    x_bearer_token: SecretStr | None = None
    x_api_key: str | None = None
    x_api_secret: SecretStr | None = None
    x_access_token: str | None = None
    x_access_token_secret: SecretStr | None = None
    x_api_url: str = "https://api.twitter.com"  # tweepy's host; X serves the same API at api.x.com

    mastodon_api_base_url: str | None = None  # the instance the account is on, e.g. https://botsin.space
    mastodon_access_token: SecretStr | None = None  # a user token with write:statuses (read: for scraping)

    bluesky_handle: str | None = None  # the account's handle, e.g. mybot.bsky.social
    bluesky_app_password: SecretStr | None = None  # an app password (Settings, Privacy and security, App passwords)
    bluesky_url: str = "https://bsky.social"  # the account's server (PDS); reads go through it too

    bot_review_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init) > environment > BOT_HOME/.env > bots.toml [settings] (passed in as `_toml`, see load_settings).
        return (init_settings, env_settings, dotenv_settings)

    # A validator's ValueError is the rest of a sentence that `load_settings` starts with the setting's name.

    @field_validator("bot_home")
    @classmethod
    def _home_is_a_folder(cls, home: Path) -> Path:
        fix = "set it to a folder (nnbot creates a missing one)"
        try:
            if home.exists() and not home.is_dir():
                raise ValueError(f"{home} is a file, not a folder; {fix}")
            blocker = next((p for p in home.parents if p.exists()), None)  # the nearest thing above it that exists
        except PermissionError:  # a folder above it cannot be looked into: `prepare_home` says so
            return home
        if blocker is not None and not blocker.is_dir():
            raise ValueError(f"{home} is inside {blocker}, which is a file, not a folder; {fix}")
        return home

    @field_validator("bot_database_url")
    @classmethod
    def _usable_database_url(cls, url: str | None) -> str | None:
        problem = None if url is None else database_url_problem(url)
        if url is not None and problem is not None:
            raise ValueError(f"{mask_password(url)!r} is not a SQLite or PostgreSQL URL nnbot can use{problem}; "
                             f"write it like {DATABASE_URL_FORMS}")
        return url

    @field_validator("bot_broker_url")
    @classmethod
    def _usable_broker_url(cls, url: str | None) -> str | None:
        url = url.strip() if url else None  # empty: no broker, as unset
        if url is not None and not re.match(r"^(redis|rediss|redis\+socket)://", url):
            raise ValueError(f"{mask_password(url)!r} is not a Redis URL; write it like redis://host:6379/0 (or "
                             "leave it unset to run every job inside `bot run`)")
        if url is not None and re.match(r"^rediss?://", url) and not re.fullmatch(r"/?\d*", urlsplit(url).path):
            raise ValueError(f"{mask_password(url)!r} names Redis database {urlsplit(url).path.lstrip('/')!r}; "
                             "Redis databases are numbers (redis://host:6379/0)")
        return url

    @property
    def database_url(self) -> str:
        return self.bot_database_url or f"sqlite:///{self.bot_home / 'bot.db'}"

    @property
    def models_dir(self) -> Path:
        return self.bot_home / "models"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / name


def load_settings(*, config_path: Path | None = None, **flags: Any) -> Settings:
    """Settings with their precedence: flags > environment > BOT_HOME/.env > bots.toml [settings] > defaults.

    This is where every settings problem becomes a `ConfigError` sentence. BOT_HOME is created here (with the
    folders above it) and must be writable, so every command finds it ready; nothing else creates folders named
    in settings.
    """
    toml_settings = load_bots_file(config_path).settings if config_path else {}
    flags = {k: v for k, v in flags.items() if v is not None}
    home = Path(flags.get("bot_home") or os.environ.get("BOT_HOME") or toml_settings.get("bot_home") or default_home())
    env_file = home / ".env"
    env_file_or_none = env_file if env_file.is_file() else None
    from_toml: dict[str, Any] = {}
    try:
        env_only = Settings(_env_file=env_file_or_none)  # type: ignore[call-arg]
        # Only what the environment did not set comes from bots.toml.
        from_toml = {k: v for k, v in toml_settings.items() if k not in env_only.model_fields_set}
        settings = Settings(_env_file=env_file_or_none, **{**from_toml, **flags})  # type: ignore[call-arg]
    except UnicodeDecodeError as exc:
        raise ConfigError(_not_utf8(env_file, env_file.read_bytes(), exc)) from None
    except ValidationError as exc:
        raise ConfigError(_invalid_setting(exc, config_path, set(from_toml) - set(flags))) from None
    prepare_home(settings.bot_home)
    return settings


def _invalid_setting(exc: ValidationError, config_path: Path | None, from_toml: set[str]) -> str:
    """The first error as one sentence that names the setting where the user set it: bots.toml or the environment."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    in_toml = field in from_toml
    name = f"{config_path} [settings] {field}" if in_toml else field.upper()
    if error["type"] == "value_error":  # our validators: the rest of the sentence, fix included
        return f"{name} {error['ctx']['error']}."
    return f"{name if in_toml else 'The setting ' + name} is invalid: {error['msg']}."


def prepare_home(home: Path) -> None:
    """Create BOT_HOME (and the folders above it) when missing, and make sure nnbot can write there."""
    fix = "set BOT_HOME to a folder you can write to"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"BOT_HOME {home} cannot be created ({exc.strerror}); create it yourself or {fix}.") from None
    try:  # os.access says yes to root; a real file says what the database and the models will meet
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        raise ConfigError(f"BOT_HOME {home} is not writable ({exc.strerror}); make it writable or {fix}.") from None


def database_url_problem(url: str) -> str | None:
    """None if `url` is a SQLite or PostgreSQL URL nnbot can open, else a reason in parentheses ('' if none)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return ""
    except ValueError:  # SQLAlchemy's int() of the port
        return " (its port is not a number)"
    if parsed.drivername not in DATABASE_DRIVERS:
        return ""
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return " (it names no database file, so nothing would be kept)"
        if not Path(parsed.database).is_absolute():
            return " (its path is relative; a database must not depend on the current folder)"
    return None


def mask_password(url: str) -> str:
    """`url` with any password replaced by ***, also when the URL cannot be parsed."""
    return re.sub(r"^([^:/?#]*://[^:/?#@]*):.*@", r"\1:***@", url)


def _not_utf8(path: Path, data: bytes, error: UnicodeDecodeError) -> str:
    """Why a settings file is not UTF-8, and where; Windows editors save "Unicode" as UTF-16."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return f"{path} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8."
    line = data[:error.start].count(b"\n") + 1
    return f"{path} is not UTF-8 text (line {line} has the byte 0x{data[error.start]:02x}); save it as UTF-8."


# ---- bots.toml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingConfig(_Strict):
    temperature: float = Field(default=DEFAULT_TEMPERATURE, gt=0, le=5)
    top_k: int = Field(default=0, ge=0)  # 0: all tokens
    top_p: float = Field(default=DEFAULT_TOP_P, gt=0, le=1)
    max_tokens: int = Field(default=60, ge=1, le=1000)
    rare_words: bool = DEFAULT_RARE_WORDS  # may rare-word classes that write a word be drawn (models.sampler)
    batch: int = Field(default=100, ge=1, le=10_000)  # candidates sampled per refill


def parse_duration(text: str) -> int:
    """'90m' -> 5400 seconds; at most MAX_DURATION_DAYS."""
    match = DURATION_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like '30m', '4h' or '1d'")
    seconds = int(match[1]) * DURATION_UNITS[match[2]]
    if seconds > MAX_DURATION_DAYS * 86400:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION_DAYS} days; give a shorter duration")
    return seconds


Duration = Annotated[str, Field(description="a duration like '30m', '4h', '1d'")]
CRON_FIELDS = 5  # minute hour day-of-month month day-of-week


def is_cron(text: str) -> bool:
    return len(text.split()) == CRON_FIELDS


def cron_day_of_week(field_text: str) -> str:
    """Cron's day-of-week field, where 0 and 7 are Sunday, in APScheduler 3's terms, where days count from Monday:
    numbers become day names ("1-5" -> "mon-fri", "0-6" -> "sun,mon-sat", "*/2" -> "sun,tue,thu,sat"); names are
    read alike by both and left as they are. ValueError for a number or range outside 0-7."""
    parts: list[str] = []
    for part in field_text.split(","):
        match = _NUMERIC_DAYS.match(part)
        if match is None:
            parts.append(part)  # names ("mon-fri"), or something APScheduler refuses in its own words
            continue
        span, step = match[1], int(match[2]) if match[2] else None
        if span == "*" and step is None:
            parts.append("*")
            continue
        low, _, high = ("0-6" if span == "*" else span).partition("-")
        first, last = int(low), int(high) if high else (7 if step else int(low))
        if last > 7 or first > last or step == 0:
            raise ValueError(f"the day of week {part!r} is not a day or a range of days from 0 to 7 (0 and 7 are "
                             "Sunday)")
        days = list(range(first, last + 1, step or 1))
        if step is None and first >= 1:
            parts.append(DAY_NAMES[first] + (f"-{DAY_NAMES[last]}" if last > first else ""))
        elif step is None:  # Sunday first, then Monday on as a range
            parts.append("sun" + (f",{DAY_NAMES[1]}" + (f"-{DAY_NAMES[last]}" if last > 1 else "") if last else ""))
        else:
            parts += [DAY_NAMES[d] for d in days]
    return ",".join(dict.fromkeys(parts))


def cron_trigger(text: str, *, timezone: str, jitter: int | None = None):  # type: ignore[no-untyped-def]
    """The APScheduler trigger of a five-field cron expression, its days of week read as cron reads them."""
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, day_of_week = text.split()
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=cron_day_of_week(day_of_week),
                       timezone=timezone, jitter=jitter)


def check_schedule_entry(text: str, timezone: str = "UTC") -> str:
    """A duration ('4h') or a five-field cron expression ('0 9,13,18 * * *'); ValueError says what is wrong."""
    if not is_cron(text):
        try:
            seconds = parse_duration(text)
        except ValueError:
            if DURATION_PATTERN.match(text.strip()):
                raise
            raise ValueError(f"{text!r} is neither a duration like '30m', '4h' or '1d' nor a five-field cron "
                             "expression like '0 9,13,18 * * *'") from None
        if seconds <= 0:
            raise ValueError(f"{text!r} is no time at all; give a duration of at least 1s")
        return text
    try:
        cron_trigger(text, timezone=timezone)  # as `bot run` builds it, so what passes here runs there
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid cron expression ({exc})") from None
    return text


class ScheduleConfig(_Strict):
    """`[bot.schedule]`: when each job runs. An entry is a duration ('4h': that long apart) or a cron expression."""

    # Declared first: the entries below are checked against the time zone.
    timezone: str = "UTC"  # for cron entries, and the day the daily cap counts in
    jitter: Duration | None = None  # each run starts up to this much later, at random, so posts look less mechanical
    post: str = "4h"  # between posts
    refill: str = "1h"  # between queue refills (the first refill runs as soon as the bot is scheduled)
    scrape: str | None = None  # between re-scrapes of the bot's sources; None: never
    retrain: str | None = None  # between retrainings; None: never

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name like 'UTC' or 'Europe/Berlin'") from None
        return value

    @field_validator("jitter")
    @classmethod
    def _valid_jitter(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("post", "refill", "scrape", "retrain")
    @classmethod
    def _valid_entry(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_schedule_entry(value, info.data.get("timezone") or "UTC")

    def entries(self) -> dict[str, str]:
        """The jobs this schedule runs, by job name (refill, post, scrape, train), and when."""
        jobs = {"refill": self.refill, "post": self.post, "scrape": self.scrape, "train": self.retrain}
        return {job: entry for job, entry in jobs.items() if entry is not None}


class TrainingOptions(_Strict):
    """`[bot.training]`: how the train job retrains the bot's model."""

    preset: str = "auto"  # as `bot train --preset`
    base: bool = True  # fine-tune from the base model (BOT_BASE_MODEL); false: train from scratch
    max_minutes: float = Field(default=30.0, gt=0, le=24 * 60)  # minutes of training per retrain, at most


class RedditSource(_Strict):
    type: Literal["reddit"]
    subreddits: list[str] = Field(min_length=1)
    sort: Literal["top", "hot", "new"] = "top"
    time: Literal["day", "week", "month", "year", "all"] = "week"
    limit: int = Field(default=1000, ge=1, le=1000)


class XSource(_Strict):
    type: Literal["x"]
    username: str
    limit: int = Field(default=3200, ge=1, le=3200)


class MastodonSource(_Strict):
    type: Literal["mastodon"]
    account: str  # "name" on MASTODON_API_BASE_URL's instance, or "name@instance.social"
    limit: int = Field(default=3200, ge=1, le=10_000)
    replies: bool = False  # replies (to others and to oneself) as texts of the corpus
    boosts: bool = False  # others' posts the account boosted


class BlueskySource(_Strict):
    type: Literal["bluesky"]
    actor: str  # a handle ("name.bsky.social") or a DID
    limit: int = Field(default=3200, ge=1, le=10_000)
    replies: bool = False
    reposts: bool = False


class FileSource(_Strict):
    type: Literal["file"]
    path: Path
    format: Literal["auto", "txt", "csv", "jsonl", "x-archive"] = "auto"
    column: str | None = None


Source = Annotated[RedditSource | XSource | MastodonSource | BlueskySource | FileSource, Field(discriminator="type")]


class MastodonPostOptions(_Strict):
    """`[bot.mastodon]`: how each status is posted."""

    # "unlisted": on the account's profile and followers' timelines, not the public ones, as instances ask of bots
    # that post often; "public", "private" (followers only)
    visibility: Literal["public", "unlisted", "private"] = "unlisted"
    spoiler_text: str | None = Field(default=None, max_length=500)  # a content warning over every post
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")  # ISO 639 code; default: the instance's guess


class RedditPostOptions(_Strict):
    """`[bot.reddit]`: what goes with each title posted to Reddit."""

    body: str | None = None  # a self-post's text under every title; None: a title-only self-post
    flair_id: str | None = None  # the subreddit's flair template id, where it requires flair
    flair_text: str | None = None  # flair text, for an editable flair template


Name = Annotated[str, AfterValidator(check_name)]  # a corpus, model or bot name; the error states the rule in words


class BotConfig(_Strict):
    name: Name
    corpus: Name
    model: Name | None = None  # default: the bot's name
    sources: list[Source] = []
    platform: Literal[PLATFORMS] = "file"  # type: ignore[valid-type]
    destination: str | None = None  # what the platform needs (bot.platforms): a subreddit, a file; X needs none
    mode: Literal["review", "autonomous"] = "review"
    schedule: ScheduleConfig = ScheduleConfig()
    sampling: SamplingConfig = SamplingConfig()
    filters: FilterConfig = FilterConfig()
    reddit: RedditPostOptions = RedditPostOptions()
    mastodon: MastodonPostOptions = MastodonPostOptions()
    training: TrainingOptions = TrainingOptions()
    queue_size: int = Field(default=20, ge=1, le=10_000)  # pending + approved candidates kept ready
    daily_cap: int = Field(default=5, ge=1, le=1000)  # posts per day (in schedule.timezone), at most
    # Which pending candidate an autonomous bot posts first: the most plausible to the base model (a reader
    # independent of the bot's own model; where there is no score, the next rule), the best mean log-probability
    # per token under its own model, the best total log-probability (favours short texts), or the oldest.
    rank_by: Literal["plausibility", "mean_logprob", "logprob", "oldest"] = "plausibility"

    @model_validator(mode="after")
    def _destination_needed(self) -> BotConfig:
        needs = PLATFORM_SPECS[self.platform].destination
        if needs and not self.destination:
            raise ValueError(f"platform {self.platform!r} needs a destination ({needs})")
        return self

    @property
    def model_name(self) -> str:
        return self.model or self.name

    @property
    def target(self) -> str:
        """Where the bot posts, for people: "reddit r/test", "x", "file posts.jsonl"."""
        return f"{self.platform} {self.destination}" if self.destination else self.platform


class BotsFile(_Strict):
    settings: dict[str, Any] = {}  # lowest-priority values for Settings fields
    bot: list[BotConfig] = []

    @model_validator(mode="after")
    def _known_settings(self) -> BotsFile:
        unknown = [key for key in self.settings if key not in Settings.model_fields]
        if unknown:
            near = difflib.get_close_matches(unknown[0], Settings.model_fields, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise _error_at(("settings", unknown[0]), unknown[0], "unknown_setting",
                            f"no such setting{hint}; use {', '.join(Settings.model_fields)}, described in "
                            f"{SETTINGS_HELP}")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> BotsFile:
        seen: set[str] = set()
        for index, bot in enumerate(self.bot):
            if bot.name in seen:  # the error points at the second table's name
                raise _error_at(("bot", index, "name"), bot.name, "duplicate_name",
                                "an earlier [[bot]] has this name already; give each bot a name of its own")
            seen.add(bot.name)
        return self

    def get(self, name: str) -> BotConfig | None:
        return next((b for b in self.bot if b.name == name), None)


def _error_at(loc: tuple[str | int, ...], value: Any, kind: str, message: str) -> ValidationError:
    """A validation error at `loc`, so that `load_bots_file` can name the field and its line."""
    details = InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)
    return ValidationError.from_exception_data("BotsFile", [details])


def load_bots_file(path: Path) -> BotsFile:
    try:
        data_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read {path} ({exc.strerror}); check the path given to --config.") from None
    try:
        text = data_bytes.decode("utf-8-sig")  # -sig: a byte order mark from a Windows editor is not TOML's business
    except UnicodeDecodeError as exc:
        raise ConfigError(_not_utf8(path, data_bytes, exc)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    try:
        return BotsFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = _line_of(text, loc)
        where = f"{path}, line {line}" if line else str(path)
        field = _field_name(data, loc)
        message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
        if error["type"] == "extra_forbidden":  # a misspelt or unknown key
            message = "not a setting nnbot knows" + _did_you_mean(str(loc[-1]), _setting_names(BotsFile))
        raise ConfigError(f"{where}: {field + ': ' if field else ''}{message}.") from None


def _setting_names(model: type[BaseModel]) -> set[str]:
    """Every key a bots.toml may use, at any depth."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for inner in (info.annotation, *typing.get_args(info.annotation)):
            for kind in (inner, *typing.get_args(inner)):
                if isinstance(kind, type) and issubclass(kind, BaseModel):
                    names |= _setting_names(kind)
    return names


def _did_you_mean(key: str, names: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def _field_name(data: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """('bot', 1, 'sampling', 'temperature') -> "bot 'hn' field sampling.temperature"."""
    if len(loc) >= 2 and loc[0] == "bot" and isinstance(loc[1], int):
        bots = data.get("bot", [])
        name = bots[loc[1]].get("name") if loc[1] < len(bots) and isinstance(bots[loc[1]], dict) else None
        label = f"bot {name!r}" if name else f"bot #{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:] if not isinstance(p, int)) or "(table)"
        return f"{label} field {rest}"
    return "field " + ".".join(str(p) for p in loc) if loc else ""


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line a validation error points at: the key's line inside its [[bot]] table, else the table's header."""
    lines = text.splitlines()
    start, stop = 0, len(lines)
    if len(loc) >= 2 and loc[0] == "bot" and isinstance(loc[1], int):
        headers = [i for i, line in enumerate(lines) if re.match(r"^\s*\[\[\s*bot\s*\]\]", line)]
        if loc[1] >= len(headers):
            return None
        start = headers[loc[1]]
        stop = headers[loc[1] + 1] if loc[1] + 1 < len(headers) else len(lines)
    keys = [str(p) for p in loc[2:] if not isinstance(p, int)] or [str(p) for p in loc if not isinstance(p, int)]
    for key in reversed(keys):  # the most specific key first
        pattern = re.compile(rf"^\s*(\[\s*[\w.]*\b{re.escape(key)}\s*\]|\"?{re.escape(key)}\"?\s*=|.*\b{re.escape(key)}\s*=)")
        for i in range(start, stop):
            if pattern.match(lines[i]):
                return i + 1
    return start + 1 if loc and loc[0] == "bot" else None
