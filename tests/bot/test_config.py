"""Settings precedence, secrets, and bots.toml errors that name the field and the line."""

from pathlib import Path

import pytest

from bot.config import load_bots_file, load_settings, parse_duration
from bot.errors import ConfigError

GOOD = """\
[settings]
bot_database_url = "sqlite:////tmp/from-toml.db"
reddit_user_agent = "toml-agent"

[[bot]]
name = "hn"
corpus = "hn"
platform = "reddit"
destination = "r/test"

[bot.sampling]
temperature = 0.7

[[bot]]
name = "tweets"
corpus = "me"
platform = "x"
mode = "autonomous"
sources = [{ type = "x", username = "jack" }]
[bot.schedule]
post = "2h"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bots.toml"
    path.write_text(text)
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as error:
        load_bots_file(path)
    return str(error.value)


def test_defaults_live_under_bot_home(bot_home: Path) -> None:
    settings = load_settings()
    assert settings.bot_home == bot_home
    assert settings.database_url == f"sqlite:///{bot_home / 'bot.db'}"
    assert settings.model_dir("m") == bot_home / "models" / "m"
    assert settings.reddit_oauth_url == "https://oauth.reddit.com"


def test_flag_beats_environment_beats_toml_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings(config_path=path)
    assert settings.database_url == "sqlite:////tmp/from-toml.db"
    assert settings.reddit_user_agent == "toml-agent"
    monkeypatch.setenv("REDDIT_USER_AGENT", "env-agent")
    assert load_settings(config_path=path).reddit_user_agent == "env-agent"
    assert load_settings(config_path=path, reddit_user_agent="flag-agent").reddit_user_agent == "flag-agent"


def test_dotenv_in_bot_home_is_read_and_environment_wins(bot_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bot_home.mkdir(parents=True)
    (bot_home / ".env").write_text("REDDIT_USERNAME=from_dotenv\nX_BEARER_TOKEN=secret-token\n")
    settings = load_settings()
    assert settings.reddit_username == "from_dotenv"
    monkeypatch.setenv("REDDIT_USERNAME", "from_env")
    assert load_settings().reddit_username == "from_env"


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", "super-secret")
    monkeypatch.setenv("REDDIT_PASSWORD", "hunter2")
    settings = load_settings()
    assert settings.x_bearer_token.get_secret_value() == "super-secret"
    assert "super-secret" not in repr(settings) and "hunter2" not in str(settings)


def test_a_good_bots_file(tmp_path: Path) -> None:
    bots = load_bots_file(write(tmp_path, GOOD))
    hn, tweets = bots.bot
    assert (hn.name, hn.platform, hn.destination, hn.mode, hn.model_name) == ("hn", "reddit", "r/test", "review", "hn")
    assert hn.sampling.temperature == 0.7 and hn.filters.min_words == 3
    assert tweets.sources[0].username == "jack" and tweets.schedule.post == "2h"
    assert bots.get("tweets") is tweets and bots.get("nope") is None


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("temperature = 0.7", "temperature = -1"),
     "line 12: bot 'hn' field sampling.temperature: Input should be greater than 0."),
    (GOOD.replace('mode = "autonomous"', 'mode = "yolo"'),
     "line 18: bot 'tweets' field mode: Input should be 'review' or 'autonomous'."),
    (GOOD.replace('post = "2h"', 'post = "often"'),
     "line 21: bot 'tweets' field schedule.post: 'often' is neither a duration like '30m', '4h' or '1d' nor a "
     "five-field cron expression like '0 9,13,18 * * *'."),
    (GOOD.replace('post = "2h"', 'post = "0 25 * * *"'),
     "line 21: bot 'tweets' field schedule.post: '0 25 * * *' is not a valid cron expression (Error validating "
     "expression '25': the last value (25) is higher than the maximum value (23))."),
    (GOOD.replace('platform = "reddit"', 'platfrom = "reddit"'),
     "line 8: bot 'hn' field platfrom: Extra inputs are not permitted."),
    (GOOD.replace('destination = "r/test"\n', ""),
     "line 5: bot 'hn' field (table): platform 'reddit' needs a destination (a subreddit or a file path)."),
    (GOOD.replace('name = "tweets"', 'name = "hn"'),
     "bot names must be unique; repeated: hn."),
])
def test_bad_bots_file_errors_name_the_field_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert config_error(path) in (f"{path}, {expected}", f"{path}: {expected}")


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    path = write(tmp_path, "[[bot]\nname = 1")
    assert config_error(path).startswith(f"{path} is not valid TOML: ")
    assert "line 1" in config_error(path)
    missing = tmp_path / "none.toml"
    assert config_error(missing) == f"Cannot read {missing} (No such file or directory); check the path given to --config."


def test_unknown_settings_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[settings]\nbot_databse_url = "x"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config_path=path)
    assert str(error.value) == f"{path} [settings] has unknown keys (bot_databse_url); see DESIGN.md's settings."


def test_durations() -> None:
    assert [parse_duration(d) for d in ("30s", "90m", "4h", "1d")] == [30, 5400, 14400, 86400]
