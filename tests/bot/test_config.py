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
     "line 8: bot 'hn' field platfrom: not a setting nnbot knows (did you mean platform?)."),
    (GOOD.replace('destination = "r/test"\n', ""),
     "line 5: bot 'hn' field (table): platform 'reddit' needs a destination (the subreddit it posts to)."),
    (GOOD.replace('name = "tweets"', 'name = "hn"'),
     "line 15: bot 'hn' field name: an earlier [[bot]] has this name already; give each bot a name of its own."),
    (GOOD.replace('name = "hn"', 'name = "h n"'),
     "line 6: bot 'h n' field name: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."),
    (GOOD.replace('corpus = "me"', 'corpus = "../me"'),
     "line 16: bot 'tweets' field corpus: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
     ),
    (GOOD.replace('name = "hn"', 'name = "hn"\nmodel = ""'),
     "line 7: bot 'hn' field model: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."),
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


SETTING_KEYS = ("bot_home, bot_database_url, bot_sleep_scale, bot_lease_seconds, bot_outage_seconds, bot_base_model, "
                "bot_broker_url, bot_broker_visibility_timeout, reddit_client_id, reddit_client_secret, "
                "reddit_username, reddit_password, reddit_user_agent, reddit_oauth_url, "
                "reddit_url, x_bearer_token, x_api_key, x_api_secret, x_access_token, x_access_token_secret, "
                "x_api_url, mastodon_api_base_url, mastodon_access_token, bluesky_handle, bluesky_app_password, "
                "bluesky_url, bot_review_password")


@pytest.mark.parametrize("key, hint", [("bot_databse_url", " (did you mean bot_database_url?)"), ("colour", "")])
def test_unknown_settings_keys_are_refused_with_the_valid_ones(tmp_path: Path, key: str, hint: str) -> None:
    path = write(tmp_path, f'# my bots\n[settings]\nreddit_url = "https://www.reddit.com"\n{key} = "x"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config_path=path)
    assert str(error.value) == (f"{path}, line 4: field settings.{key}: no such setting{hint}; use {SETTING_KEYS}, "
                                "described in the README's Settings section.")
    assert config_error(path) == str(error.value)


def test_a_bad_settings_value_names_the_file_or_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[settings]\nbot_lease_seconds = "long"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config_path=path)
    assert str(error.value) == (f"{path} [settings] bot_lease_seconds is invalid: Input should be a valid number, "
                                "unable to parse string as a number.")
    monkeypatch.setenv("BOT_LEASE_SECONDS", "0")
    with pytest.raises(ConfigError) as error:
        load_settings(config_path=path)
    assert str(error.value) == "The setting BOT_LEASE_SECONDS is invalid: Input should be greater than or equal to 1."


@pytest.mark.parametrize("content, sentence", [
    (b"\xff\xfe", "{path} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8."),
    ('[settings]\nreddit_user_agent = "caf\u00e9"\n'.encode("latin-1"),
     "{path} is not UTF-8 text (line 2 has the byte 0xe9); save it as UTF-8."),
])
def test_a_bots_file_that_is_not_utf8_is_one_sentence(tmp_path: Path, content: bytes, sentence: str) -> None:
    path = tmp_path / "bots.toml"
    path.write_bytes(content)
    assert config_error(path) == sentence.format(path=path)


def test_a_byte_order_mark_from_a_windows_editor_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bots.toml"
    path.write_bytes(GOOD.encode("utf-8-sig"))
    assert [b.name for b in load_bots_file(path).bot] == ["hn", "tweets"]


def test_a_dotenv_that_is_not_utf8_is_one_sentence(bot_home: Path) -> None:
    bot_home.mkdir(parents=True)
    (bot_home / ".env").write_bytes(b"REDDIT_USERNAME=ok\nREDDIT_USER_AGENT=caf\xe9\n")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value) == f"{bot_home / '.env'} is not UTF-8 text (line 2 has the byte 0xe9); save it as UTF-8."


def test_the_database_url_with_its_password_stays_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql+psycopg://u:hunter2@db:5432/bots")
    settings = load_settings()
    assert settings.database_url.endswith("@db:5432/bots") and "hunter2" not in repr(settings)


def test_durations() -> None:
    assert [parse_duration(d) for d in ("30s", "90m", "4h", "1d")] == [30, 5400, 14400, 86400]
