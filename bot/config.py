"""Settings from one place: command-line flag > environment (and BOT_HOME/.env) > bots.toml `[settings]` > default.

`Settings` holds where state lives, API credentials and endpoints (pydantic-settings; secrets are `SecretStr`,
never printed). `BotsFile` is `bots.toml`: one `[[bot]]` table per bot, validated by pydantic; a bad file gets
an error naming the field and its line, and nothing runs.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator,
                      model_validator)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError
from bot.filters import PLATFORMS, FilterConfig
from bot.names import NAME_PATTERN

APP_NAME = "nnbot"
DURATION_PATTERN = re.compile(r"^(\d+)\s*([smhd])$")  # "90m", "4h", "1d"
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # seconds


def default_home() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class Settings(BaseSettings):
    """Environment variables, by their names in DESIGN.md (case-insensitive)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    bot_home: Path = Field(default_factory=default_home)
    bot_database_url: str | None = None  # default: sqlite:///BOT_HOME/bot.db
    bot_sleep_scale: float = Field(default=1.0, ge=0)  # multiplies every wait (rate limits, pacing); tests set 0
    bot_lease_seconds: float = Field(default=60.0, ge=1)  # a `bot run` that stops renewing loses the database then

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

    @property
    def database_url(self) -> str:
        return self.bot_database_url or f"sqlite:///{self.bot_home / 'bot.db'}"

    @property
    def models_dir(self) -> Path:
        return self.bot_home / "models"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / name


def load_settings(*, config_path: Path | None = None, **flags: Any) -> Settings:
    """Settings with their precedence: flags > environment > BOT_HOME/.env > bots.toml [settings] > defaults."""
    toml_settings = load_bots_file(config_path).settings if config_path else {}
    unknown = sorted(set(toml_settings) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{config_path} [settings] has unknown keys ({', '.join(unknown)}); see DESIGN.md's settings.")
    flags = {k: v for k, v in flags.items() if v is not None}
    home = Path(flags.get("bot_home") or os.environ.get("BOT_HOME") or toml_settings.get("bot_home") or default_home())
    env_file = home / ".env"
    try:
        env_only = Settings(_env_file=env_file if env_file.is_file() else None)  # type: ignore[call-arg]
        # Only what the environment did not set comes from bots.toml.
        from_toml = {k: v for k, v in toml_settings.items() if k not in env_only.model_fields_set}
        return Settings(_env_file=env_file if env_file.is_file() else None, **{**from_toml, **flags})  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"The setting {field} is invalid: {first['msg']}.") from None


# ---- bots.toml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingConfig(_Strict):
    temperature: float = Field(default=0.8, gt=0, le=5)
    top_k: int = Field(default=0, ge=0)  # 0: all tokens
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=60, ge=1, le=1000)
    batch: int = Field(default=100, ge=1, le=10_000)  # candidates sampled per refill


def parse_duration(text: str) -> int:
    """'90m' -> 5400 seconds."""
    match = DURATION_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like '30m', '4h' or '1d'")
    return int(match[1]) * DURATION_UNITS[match[2]]


Duration = Annotated[str, Field(description="a duration like '30m', '4h', '1d'")]
CRON_FIELDS = 5  # minute hour day-of-month month day-of-week


def is_cron(text: str) -> bool:
    return len(text.split()) == CRON_FIELDS


def check_schedule_entry(text: str, timezone: str = "UTC") -> str:
    """A duration ('4h') or a five-field cron expression ('0 9,13,18 * * *'); ValueError says what is wrong."""
    if not is_cron(text):
        try:
            parse_duration(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither a duration like '30m', '4h' or '1d' nor a five-field cron "
                             "expression like '0 9,13,18 * * *'") from None
        if parse_duration(text) <= 0:
            raise ValueError(f"{text!r} is no time at all; give a duration of at least 1s")
        return text
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text, timezone=timezone)
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


class FileSource(_Strict):
    type: Literal["file"]
    path: Path
    format: Literal["auto", "txt", "csv", "jsonl", "x-archive"] = "auto"
    column: str | None = None


Source = Annotated[RedditSource | XSource | FileSource, Field(discriminator="type")]


class RedditPostOptions(_Strict):
    """`[bot.reddit]`: what goes with each title posted to Reddit."""

    body: str | None = None  # a self-post's text under every title; None: a title-only self-post
    flair_id: str | None = None  # the subreddit's flair template id, where it requires flair
    flair_text: str | None = None  # flair text, for an editable flair template


class BotConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    corpus: str = Field(pattern=NAME_PATTERN)
    model: str | None = Field(default=None, pattern=NAME_PATTERN)  # default: the bot's name
    sources: list[Source] = []
    platform: Literal[PLATFORMS] = "file"  # type: ignore[valid-type]
    destination: str | None = None  # subreddit for reddit, output file for file; X posts to the account itself
    mode: Literal["review", "autonomous"] = "review"
    schedule: ScheduleConfig = ScheduleConfig()
    sampling: SamplingConfig = SamplingConfig()
    filters: FilterConfig = FilterConfig()
    reddit: RedditPostOptions = RedditPostOptions()
    training: TrainingOptions = TrainingOptions()
    queue_size: int = Field(default=20, ge=1, le=10_000)  # pending + approved candidates kept ready
    daily_cap: int = Field(default=5, ge=1, le=1000)  # posts per day (in schedule.timezone), at most
    # Which pending candidate an autonomous bot posts first: the best mean log-probability per token (fluent
    # text of any length), the best total log-probability (favours short texts), or the oldest.
    rank_by: Literal["mean_logprob", "logprob", "oldest"] = "mean_logprob"

    @model_validator(mode="after")
    def _destination_needed(self) -> BotConfig:
        if self.platform in ("reddit", "file") and not self.destination:
            raise ValueError(f"platform {self.platform!r} needs a destination (a subreddit or a file path)")
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
    def _unique_names(self) -> BotsFile:
        names = [b.name for b in self.bot]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"bot names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def get(self, name: str) -> BotConfig | None:
        return next((b for b in self.bot if b.name == name), None)


def load_bots_file(path: Path) -> BotsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read {path} ({exc.strerror}); check the path given to --config.") from None
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
        raise ConfigError(f"{where}: {field + ': ' if field else ''}{message}.") from None


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
