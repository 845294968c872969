"""`bot demo`, the README's first command: offline, under five minutes, candidates left to review."""

import json
import sys

import pytest

from bot.cli import main
from bot.demo import DEMO_MAX_MINUTES, MIN_PENDING


def test_demo_runs_the_whole_job_and_leaves_candidates_to_review(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["bot", "demo", "--json"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["documents"] == 1996  # 2,000 titles, four of them repeats
    assert result["words"] == 13_673
    assert result["training_seconds"] <= DEMO_MAX_MINUTES * 60 + 60  # the limit, plus the epoch it cuts short
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
