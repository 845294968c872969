"""`bot demo`, the README's first command: offline, under five minutes, candidates left to review."""

import json
import sys

import pytest

from bot.bots_toml import add_bot
from bot.cli import main
from bot.config import load_bots_file, load_settings
from bot.demo import MIN_PENDING, demo_bot_table
from bot.errors import ConfigError


TEST_MINUTES = 0.5  # the demo's 3-minute default is measured in bench/RESULTS.md; the whole job is what is tested here


def test_demo_runs_the_whole_job_and_leaves_candidates_to_review(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["bot", "demo", "--minutes", str(TEST_MINUTES), "--json"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["documents"] == 1996  # 2,000 titles, four of them repeats
    assert result["words"] == 13_673
    assert result["training_seconds"] <= TEST_MINUTES * 60 + 60  # the limit, plus the epoch it cuts short
    assert result["sampled"] == sum(result["rejections"].values()) + len(result["accepted"])
    assert result["pending"] >= MIN_PENDING and len(result["accepted"]) >= MIN_PENDING
    assert list(result["rejections"]) == ["unfinished", "empty", "controls", "length", "novelty", "duplicate",
                                          "blocklist"]
    assert "» Training model 'demo' on the CPU" in err and "epoch   1: train perplexity" in err

    monkeypatch.setattr(sys, "argv", ["bot", "queue", "list", "--bot", "demo", "--status", "pending", "--json"])
    with pytest.raises(SystemExit):
        main()
    pending = json.loads(capsys.readouterr().out)
    assert len(pending) == result["pending"]
    assert [c["text"] for c in pending] == result["accepted"]

    # The demo leaves a runnable review-mode bot: `bot post --bot demo` posts an approved candidate to the file.
    home = load_settings().bot_home
    assert (result["bots_file"], result["bots_file_action"]) == (str(home / "bots.toml"), "created")
    assert [command for command, _ in result["next"]] == ["bot serve", "bot run", "bot post --bot demo"]
    demo = load_bots_file(home / "bots.toml").get("demo")
    assert demo is not None and (demo.mode, demo.platform, demo.corpus) == ("review", "file", "demo")
    best = pending[0]["id"]
    for argv in (["bot", "queue", "approve", str(best)], ["bot", "post", "--bot", "demo"]):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code in (0, None), capsys.readouterr()
    posted = [json.loads(line) for line in (home / "demo-posts.jsonl").read_text().splitlines()]
    assert [p["text"] for p in posted] == [pending[0]["text"]]


def test_the_demo_adds_its_bot_to_a_users_bots_toml_and_never_overwrites_one(tmp_path) -> None:
    path = tmp_path / "bots.toml"
    mine = '# my bots\n[[bot]]\nname = "mine"\ncorpus = "mine"\nplatform = "x"\n'
    path.write_text(mine)
    assert add_bot(path, "demo", demo_bot_table()).action == "added"
    assert path.read_text().startswith(mine)  # every byte the user wrote is kept
    assert [b.name for b in load_bots_file(path).bot] == ["mine", "demo"]
    changed = path.read_text().replace('daily_cap = 10', 'daily_cap = 2')  # the user changes the demo's bot
    path.write_text(changed)
    assert add_bot(path, "demo", demo_bot_table()).action == "present"
    assert path.read_text() == changed
    path.write_text("[[bot]\nname = 'broken'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        add_bot(path, "demo", demo_bot_table())
    assert path.read_text() == "[[bot]\nname = 'broken'\n"
