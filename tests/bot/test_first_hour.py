"""A newcomer's first hour at the command line: `bot init`, `bot check`, the queue's listing and limits, names."""

import shutil
from pathlib import Path

import pytest

from bot.bots_toml import PLATFORMS, starting_file
from bot.config import load_bots_file, load_settings
from bot.names import is_valid_name
from bot.queue import SamplingRecord, enqueue
from models.sampler import Sample

RECORD = SamplingRecord(model="fb", temperature=0.7, top_k=0, top_p=0.9, prefix=None, seed=None)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_init_writes_a_commented_bots_toml_that_loads_and_never_overwrites_one(bot, platform: str) -> None:  # type: ignore[no-untyped-def]
    home = load_settings().bot_home
    written = bot("init", "--platform", platform, "--name", "newbot")
    assert written.code == 0, written.err
    path = home / "bots.toml"
    assert written.out == (f"Wrote {path}: bot 'newbot', review mode, posting to {platform}. Edit it, then run "
                           "`bot check` to see what the bot still needs.\n")
    text = path.read_text()
    assert text == starting_file(platform, "newbot")
    [new] = load_bots_file(path).bot
    assert (new.name, new.corpus, new.platform, new.mode) == ("newbot", "newbot", platform, "review")
    assert text.count("\n#") > 10 and "bot train newbot --model newbot" in text  # commented, with the first run
    again = bot("init", "--platform", "x")
    assert again.code == 1 and "exists already; nnbot does not overwrite it" in again.err
    assert path.read_text() == text


def test_init_refuses_an_unknown_platform_and_a_bad_name(bot) -> None:  # type: ignore[no-untyped-def]
    assert bot("init", "--platform", "myspace").code == 2
    assert bot("init", "--name", "no spaces").code == 2
    assert not (load_settings().bot_home / "bots.toml").exists()


def test_check_names_what_each_bot_lacks_and_what_to_run_next(bot, tmp_path, tiny_model_dir: Path,  # type: ignore[no-untyped-def]
                                                             titles: list[str]) -> None:
    config = tmp_path / "bots.toml"
    config.write_text(
        '[[bot]]\nname = "fb"\ncorpus = "fb"\nplatform = "file"\ndestination = "posts.jsonl"\n\n'
        '[[bot]]\nname = "rb"\ncorpus = "rb"\nplatform = "reddit"\ndestination = "r/test"\n'
        'sources = [{ type = "reddit", subreddits = ["python"] }]\n\n'
        '[[bot]]\nname = "xb"\ncorpus = "xb"\nplatform = "x"\nsources = [{ type = "x", username = "jack" }]\n\n'
        '[[bot]]\nname = "tb"\ncorpus = "tb"\nplatform = "file"\ndestination = "t.jsonl"\n'
        'sources = [{ type = "file", path = "mine.txt" }]\n')
    first = bot("--config", str(config), "check", "--json")
    assert first.code == 1
    report = first.json
    assert report["database"]["level"] == "ok" and not report["ready"]
    found = {b["name"]: {f["what"]: f for f in b["findings"]} for b in report["bots"]}
    assert found["fb"]["corpus"]["level"] == "missing" and found["fb"]["corpus"]["next"].startswith(
        "bot import FILE --corpus fb")
    assert found["fb"]["model"]["level"] == "missing" and found["fb"]["posting"]["level"] == "ok"
    assert found["rb"]["corpus"]["level"] == "note"  # its first refill scrapes, then trains
    assert found["rb"]["model"]["level"] == "note" and found["rb"]["model"]["next"] == "bot run"
    assert found["rb"]["posting"]["level"] == "missing" and "REDDIT_CLIENT_ID" in found["rb"]["posting"]["detail"]
    assert found["xb"]["posting"]["level"] == "missing" and "X_API_KEY" in found["xb"]["posting"]["detail"]
    assert found["xb"]["sources"]["detail"] == "reading posts from X needs X_BEARER_TOKEN"
    mine = load_settings().bot_home / "mine.txt"  # a relative source path is under BOT_HOME, and the hint says where
    assert found["tb"]["sources"]["detail"] == f"the source file {mine} does not exist"
    assert found["tb"]["corpus"]["next"] == f"bot run (or scrape now: bot import {mine} --corpus tb)"

    # The file bot gets a small corpus and a model: it is ready, with a note that more text reads better.
    source = tmp_path / "few.txt"
    source.write_text("\n".join(titles[:50]) + "\n")
    assert bot("import", str(source), "--corpus", "fb").code == 0
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))
    second = bot("--config", str(config), "check")
    assert second.code == 1  # the other two still lack keys
    lines = second.out.splitlines()
    start = lines.index("fb  review  file posts.jsonl")
    assert lines[start + 1].startswith("  note    corpus   corpus 'fb' holds 50 texts: enough to fine-tune the base ")
    assert lines[start + 3].startswith("  note    model    model 'fb' (held-out perplexity ")
    assert lines[start + 3].endswith(") was trained on corpus 'titles', not the bot's 'fb'")  # the tiny model's
    assert lines[start + 5].startswith("  ok      posting  posts to the file ")
    assert lines[-1] == "Ready for `bot run`: fb."
    assert not (load_settings().bot_home / "posts.jsonl").exists()  # nothing was posted


def test_check_without_bots_says_how_to_start(bot) -> None:  # type: ignore[no-untyped-def]
    run = bot("check")
    assert (run.code, run.err) == (1, "Error: No bots are configured: write a bots.toml with `bot init` (or run "
                                      "`bot demo`), or pass one with --config.\n")


def test_queue_list_shows_one_score_best_first_and_twenty_rows_unless_asked(bot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import context

    with context.store().session() as session:
        enqueue(session, "fb", [Sample(f"Candidate number {n} of thirty", -2.0 * (n % 7) - 1, 4, True)
                                for n in range(30)], RECORD, plausibility={n: -3.0 - n / 10 for n in range(30)})
    table = bot("queue", "list", "--status", "pending")
    lines = table.out.splitlines()
    assert "score" in lines[0] and "logprob" not in lines[0]
    rows = [line for line in lines if "Candidate number" in line]
    assert len(rows) == 20 and "Candidate number 0 of thirty" in rows[0]  # best first: the highest plausibility
    assert "-3.00" in rows[0] and "-4.90" in rows[-1]
    assert lines[-1] == "… and 10 more; --limit N or --all shows more."
    assert len([line for line in bot("queue", "list", "--all").out.splitlines() if "Candidate number" in line]) == 30
    listed = bot("queue", "list", "--status", "pending", "--json").json
    assert len(listed) == 30 and [c["score"] for c in listed[:2]] == [-3.0, -3.1]  # JSON: all, the same score
    assert bot("queue", "list", "--limit", "3", "--json").json[2]["id"] == listed[0]["id"] + 2  # others: oldest first


def test_generate_enqueue_keeps_the_bots_queue_size(bot, tmp_path, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import context

    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))
    config = tmp_path / "bots.toml"
    config.write_text('[[bot]]\nname = "fb"\ncorpus = "fb"\nplatform = "file"\ndestination = "p.jsonl"\n'
                      'queue_size = 5\n[bot.filters]\nnovelty = false\nmin_words = 1\n')
    with context.store().session() as session:
        enqueue(session, "fb", [Sample("Already waiting here", -5.0, 4, True)] * 2, RECORD)
    run = bot("--config", str(config), "generate", "fb", "--n", "40", "--seed", "3", "--enqueue", "fb")
    assert run.code == 0, run.err
    assert "; 3 queued for bot 'fb' (the most plausible; its queue_size is 5, and 2 were ready already)." in run.err
    assert len(bot("queue", "list", "--status", "pending", "--json").json) == 5
    full = bot("--config", str(config), "generate", "fb", "--n", "10", "--seed", "4", "--enqueue", "fb", "--json")
    assert full.json["enqueued"] == [] and len(full.json["accepted"]) > 0  # printed, not queued past the size


@pytest.mark.parametrize("name", ["demo", "a.b_c-1", "x" * 64])
def test_good_names(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize("name", ["", "-lead", "sp ace", "x" * 65, "demo\n", "ünï", "a/b"])
def test_bad_names_include_one_with_a_final_newline(name: str) -> None:
    assert not is_valid_name(name)


@pytest.mark.parametrize("group", [[], ["queue"], ["corpus"], ["model"], ["scrape"]])
def test_help_lists_every_command_with_a_whole_sentence(group: list[str]) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "bot.cli", *group, "--help"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "80"}, check=True)
    commands = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert len(commands) >= 2 and all(line.rstrip().endswith(".") and "..." not in line for line in commands)


def test_the_backend_starts_without_printing_tensorflows_start_up_lines() -> None:
    import os
    import subprocess
    import sys

    from models.config import GPU_DEVICES

    if any(glob_ for pattern in GPU_DEVICES for glob_ in Path("/").glob(pattern.lstrip("/"))):
        pytest.skip("with a GPU the backend's lines say which device serves, and are kept")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", "import models.network, keras; print(keras.backend.backend())"],
                           capture_output=True, text=True, env=env, check=True)
    assert (quiet.stdout, quiet.stderr) == (f"{os.environ.get('KERAS_BACKEND', 'tensorflow')}\n", "")
    asked = subprocess.run([sys.executable, "-c", "import models.network"], capture_output=True, text=True,
                           env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"}, check=True)
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        assert "cpu_feature_guard" in asked.stderr  # asked for: shown
    # Whichever module starts Keras first (the trainer did, before `bot train` printed these lines) goes through
    # models.backend: in every module, `import models.backend` comes before the first `import keras`.
    root = Path(__file__).resolve().parents[2]
    for module in sorted((root / "models").glob("*.py")):
        lines = [line.strip() for line in module.read_text(encoding="utf-8").splitlines()]
        keras = [i for i, line in enumerate(lines) if line == "import keras" or line.startswith("from keras ")]
        if keras and module.name != "backend.py":
            backend = [i for i, line in enumerate(lines) if line.startswith("import models.backend")]
            assert backend and backend[0] < keras[0], f"{module.name} imports keras before models.backend"


def test_a_candidate_has_one_score_in_generate_and_in_the_queue(bot, tmp_path, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))
    config = tmp_path / "bots.toml"
    config.write_text('[[bot]]\nname = "fb"\ncorpus = "fb"\nplatform = "file"\ndestination = "p.jsonl"\n'
                      '[bot.filters]\nnovelty = false\nmin_words = 1\n')
    generated = bot("--config", str(config), "generate", "fb", "--n", "12", "--seed", "5", "--enqueue", "fb",
                    "--json").json
    scores = {a["text"]: a["score"] for a in generated["accepted"]}
    queued = bot("queue", "list", "--status", "pending", "--json").json
    assert len(queued) == len(scores) > 0
    assert {c["text"]: c["score"] for c in queued} == scores  # no base here: the model's own mean log-probability
    assert all(c["score"] == round(c["logprob"] / c["tokens"], 2) for c in queued)
    table = bot("queue", "list", "--status", "pending").out
    assert all(f"{c['score']:.2f}" in table for c in queued)  # the table shows the same numbers


def test_config_may_come_after_the_command_as_well_as_before() -> None:
    from bot.cli import config_first

    assert config_first(["check", "--config", "b.toml", "--json"]) == ["--config", "b.toml", "check", "--json"]
    assert config_first(["queue", "list", "--config=b.toml"]) == ["--config=b.toml", "queue", "list"]
    assert config_first(["--config", "b.toml", "status"]) == ["--config", "b.toml", "status"]
    assert config_first(["generate", "m", "--prefix", "x", "--", "--config"]) == [
        "generate", "m", "--prefix", "x", "--", "--config"]
