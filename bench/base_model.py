"""The recipe of nnbot's base model: a word-level LSTM pretrained on 2.2 million Reddit titles (issue 28).

    python bench/base_model.py train --data ../shared/data/reddit-titles --work ~/nnbot-base        # hours
    python bench/base_model.py train --data ../shared/data/reddit-titles --work ~/nnbot-base --resume
    python bench/base_model.py export --work ~/nnbot-base --out bot/data/base   # the shipped, fp16 copy
    python bench/base_model.py build-novelty --data ../shared/data/reddit-titles --out bot/data/base   # minutes
    python bench/base_model.py evaluate --work ~/nnbot-base --model bot/data/base --json RESULT
    python bench/base_model.py held-out --data ../shared/data/reddit-titles --out DIR   # corpora to judge it on

1. **The corpus** (`reddit_titles_2013.tsv.xz`, PDDL): NSFW titles left out; titles with a link left out; image
   sizes ("[1024x768]") and episode tags ("(S03E03)") cut from the titles that carry them, since a bot should never
   write them where they mean nothing; the subreddits in HELD_OUT kept apart, never trained on, to judge the base on
   subreddits it never saw. VALID_DOCUMENTS of the rest (seeded) are the in-distribution validation set.
2. **The vocabulary**: the training titles' MAX_VOCAB most frequent pieces, with case markers and rare-word
   classes, as `bot train` builds them.
3. **Training** goes shard by shard: the shuffled training titles are cut into shards of about SHARD_TOKENS tokens,
   and each shard is one Keras pass (the `models.trainer.Trainer` loop) from the weights the last one left. After
   each shard the weights and the position are written, so an interrupted run loses at most one shard and
   `--resume` goes on from the next. SGD carries no state, so weights and position are all a resume needs. The
   learning rate is held for `--hold` passes over the corpus and then decays exponentially to `--end` of its start
   at `--passes`; the softmax is sampled over 1,024 distinct words per step (evaluation stays exact).
4. **Export** writes the best shard's weights as a model directory whose weights are float16 (`models.artifact`
   reads them back as float32), with the corpus's licence beside them.
5. **The novelty index** (`build-novelty`): a Bloom filter of the training titles and their 5-grams
   (`bot.novelty.BaseCorpusIndex`, ~20 MB), written into the exported folder, so that `bot generate` rejects a
   copy of a base title as well as of the bot's own corpus.
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import math
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, peak_mb, today
from models.config import ModelConfig

CORPUS_FILE = "reddit_titles_2013.tsv.xz"
STATE_FILE = "training-state.json"  # in an export: where its training stood, for --resume-from
# Never trained on: the bundled Apple/Android corpus's subreddits (bench/quality.py judges on them) and three of
# this recipe's choice, each a kind of title a bot is made for (musings, stories, questions).
HELD_OUT = ("apple", "android", "Showerthoughts", "tifu", "personalfinance")
VALID_DOCUMENTS = 10_000  # in-distribution validation titles (seeded draw from the training subreddits)
SEED = 0
MAX_VOCAB = 24_000  # pieces, specials included: sampling cost grows with it (bench/generate_speed.py)
SHARD_TOKENS = 2_500_000  # tokens per shard: about five minutes at this machine's sampled-softmax pace
DEFAULT_PASSES = 3.0  # over the training corpus, in all (the schedule's end): about 45 shards, 5-6 hours here
DEFAULT_HOLD = 1.5  # passes at the starting learning rate before it decays
DEFAULT_END = 0.05  # the learning rate at the end, as a share of its start

# The network: medium's tied 2 x 300 LSTM and clipped SGD (models.config "medium"), with the light dropout a corpus
# of 22 million words needs (it is far from memorised in a few passes).
CONFIG = ModelConfig(max_vocab=MAX_VOCAB, min_count=3, embedding_dim=300, hidden_dim=300, layers=2, tied=True,
                     dropout=0.1, embedding_dropout=0.05, init_scale=0.1, window=35, batch_size=20,
                     optimizer="sgd", learning_rate=20.0, clip_norm=0.25, epochs=1, patience=0,
                     budget_schedule=False, sampled_softmax=1024, sample_every=0, seed=SEED)

_SIZE_TAG = re.compile(r"\s*[\[(]\s*\d{3,5}\s*[x×X*]\s*\d{3,5}\s*(?:px)?\s*[\])]")  # [1024x768], (1920 x 1080px)
_EPISODE_TAG = re.compile(r"\s*[\[(]?\bS\d{1,2}\s?E\d{1,3}\b[\])]?", re.IGNORECASE)  # (S03E03), S1E2
_LINK = re.compile(r"https?://|www\.\w", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def clean(title: str) -> str | None:
    """The title as the base learns it, or None where it should not learn it at all."""
    if _LINK.search(title):
        return None
    text = _SPACES.sub(" ", _EPISODE_TAG.sub("", _SIZE_TAG.sub("", title))).strip()
    return text or None


def read_titles(data: Path) -> tuple[list[str], dict[str, list[str]], dict[str, int]]:
    """(training titles in file order, held-out titles by subreddit, counts of what was left out and why)."""
    held = {name.lower(): name for name in HELD_OUT}
    kept: list[str] = []
    held_out: dict[str, list[str]] = {name: [] for name in HELD_OUT}
    dropped = {"nsfw": 0, "link": 0, "tags_cut": 0}
    with lzma.open(data / CORPUS_FILE, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["over_18"] == "1":
                dropped["nsfw"] += 1
                continue
            text = clean(row["title"])
            if text is None:
                dropped["link"] += 1
                continue
            dropped["tags_cut"] += text != row["title"].strip()
            name = held.get(row["subreddit"].lower())
            (held_out[name] if name else kept).append(text)
    return kept, held_out, dropped


# ---- preparing: corpus, vocabulary, token streams (once; ~3 minutes)

def split_titles(titles: list[str]) -> tuple[list[str], list[str]]:
    """(training titles in training order, VALID_DOCUMENTS validation titles): the seeded split of `read_titles`'s
    training titles that the base is trained on, and that its novelty index (`build_novelty`) holds."""
    from models.data import split_documents

    train_idx, valid_idx = split_documents(len(titles), valid_fraction=VALID_DOCUMENTS / len(titles), seed=SEED)
    order = np.random.default_rng(SEED).permutation(train_idx)  # shards mix subreddits
    return [titles[i] for i in order], [titles[i] for i in valid_idx]


def prepare(data: Path, work: Path) -> None:
    from models.tokenizer import Tokenizer

    started = time.monotonic()
    titles, held_out, dropped = read_titles(data)
    known = work / "tokenizer.json"  # a run resumed from an export keeps the export's vocabulary
    train, valid = split_titles(titles)
    print(f"{len(train):,} training titles, {len(valid):,} validation, held out: "
          + ", ".join(f"{k} {len(v):,}" for k, v in held_out.items()) + f"; left out {dropped}", flush=True)
    if known.is_file():
        tokenizer = Tokenizer.from_json(known.read_text(encoding="utf-8"))
    else:
        tokenizer = Tokenizer.build(train, max_vocab=CONFIG.max_vocab, min_count=CONFIG.min_count,
                                    case_markers=CONFIG.case_markers, rare_classes=CONFIG.rare_classes)
    work.mkdir(parents=True, exist_ok=True)
    known.write_text(tokenizer.to_json(), encoding="utf-8")
    np.save(work / "train.npy", tokenizer.encode_corpus(train).astype(np.int32))
    np.save(work / "valid.npy", tokenizer.encode_corpus(valid).astype(np.int32))
    (work / "held_out.json").write_text(json.dumps(held_out, ensure_ascii=False), encoding="utf-8")
    corpus = {"titles": len(train), "valid_titles": len(valid), "held_out": {k: len(v) for k, v in held_out.items()},
              "left_out": dropped, "words": sum(len(t.split()) for t in train), "vocab_size": tokenizer.size}
    (work / "corpus.json").write_text(json.dumps(corpus, indent=2), encoding="utf-8")
    print(f"vocabulary {tokenizer.size:,} pieces; prepared in {time.monotonic() - started:.0f} s", flush=True)


# ---- training, shard by shard

def shard_bounds(stream: np.ndarray, shard_tokens: int) -> list[tuple[int, int]]:
    """[start, end) of each shard, cut at document starts so no title is split between two."""
    from models.data import document_starts

    starts = document_starts(stream)
    count = max(1, round(len(stream) / shard_tokens))
    cuts = [0] + [int(starts[np.searchsorted(starts, len(stream) * k // count)]) for k in range(1, count)]
    return list(zip(cuts, cuts[1:] + [len(stream)]))


def learning_rate(position: float, *, start: float, hold: float, passes: float, end: float) -> float:
    """Held at `start` for `hold` passes, then exponential decay reaching `start * end` at `passes`."""
    if position <= hold:
        return start
    return start * end ** ((min(position, passes) - hold) / (passes - hold))


class _Quiet:
    """The trainer's reporter: a line per shard is printed by the loop instead."""

    def on_start(self, **kwargs: Any) -> None: ...
    def on_batch(self, **kwargs: Any) -> None: ...
    def on_epoch(self, result: Any, *, best: bool) -> None: ...
    def on_samples(self, epoch: int, samples: Any) -> None: ...
    def on_stop(self, reason: str) -> None: ...


def train(args: argparse.Namespace) -> None:
    from models import artifact
    from models.sampler import Sampler, SamplingSettings
    from models.tokenizer import Tokenizer
    from models.trainer import Trainer

    work: Path = args.work
    state_path = work / "state.json"
    if args.resume and not state_path.is_file() and args.resume_from:
        _seed_from_export(args.resume_from, args.data, work)
    if args.resume:
        if not state_path.is_file():
            raise SystemExit(f"There is nothing to resume in {work}; run without --resume first.")
        state = json.loads(state_path.read_text())
        for key in ("passes", "hold", "end"):  # a resume may change the plan from here on
            if getattr(args, key) is not None and getattr(args, key) != state[key]:
                print(f"{key}: {state[key]} -> {getattr(args, key)}", flush=True)
                state[key] = getattr(args, key)
    else:
        if state_path.exists():
            raise SystemExit(f"{work} holds a run already; add --resume to go on with it, or pick another --work.")
        if not (work / "train.npy").is_file():
            prepare(args.data, work)
        plan = {key: getattr(args, key) if getattr(args, key) is not None else default
                for key, default in (("passes", DEFAULT_PASSES), ("hold", DEFAULT_HOLD), ("end", DEFAULT_END))}
        state = {"shard": 0, **plan, "best_loss": math.inf,
                 "seconds": 0.0, "history": [], "machine": machine(), "started": today()}
    tokenizer = Tokenizer.from_json((work / "tokenizer.json").read_text(encoding="utf-8"))
    stream = np.load(work / "train.npy")
    valid = np.load(work / "valid.npy")
    bounds = shard_bounds(stream, SHARD_TOKENS)
    total = math.ceil(state["passes"] * len(bounds))
    weights = artifact.load_weights(work / "latest.npz") if (work / "latest.npz").is_file() else None
    deadline = time.monotonic() + args.hours * 3600 if args.hours else None
    print(f"{len(stream):,} training tokens in {len(bounds)} shards; shard {state['shard'] + 1} of {total}",
          flush=True)
    while state["shard"] < total and (deadline is None or time.monotonic() < deadline):
        k = state["shard"]
        position = k / len(bounds)  # passes done
        lr = learning_rate(position, start=CONFIG.learning_rate, hold=state["hold"], passes=state["passes"],
                           end=state["end"])
        start, end = bounds[k % len(bounds)]
        config = CONFIG.replace(learning_rate=lr, seed=SEED + k)  # a new document order in every shard
        scratch = work / "shard"
        shutil.rmtree(scratch, ignore_errors=True)
        t0 = time.monotonic()
        trainer = Trainer(config, tokenizer, stream[start:end], valid, scratch, reporter=_Quiet(), weights=weights)
        summary = trainer.run()
        weights = trainer.network.get_weights(trainer.model)
        epoch = summary.epochs[-1]
        seconds = time.monotonic() - t0
        state["seconds"] += seconds
        state["shard"] = k + 1
        row = {"shard": k + 1, "passes": round((k + 1) / len(bounds), 3), "learning_rate": round(lr, 4),
               "train_loss": round(epoch.train_loss, 4), "valid_loss": round(epoch.valid_loss, 4),
               "valid_perplexity": round(epoch.valid_perplexity, 2),
               "tokens_per_second": round(epoch.tokens_per_second), "seconds": round(seconds, 1),
               "date": today()}
        state["history"].append(row)
        artifact.save_weights(work / "latest.npz", weights)
        if epoch.valid_loss < state["best_loss"]:
            state["best_loss"] = epoch.valid_loss
            artifact.save_weights(work / "best.npz", weights)
        artifact.write_json(state_path, state)  # last: the position moves only once the weights are on disk
        print(f"shard {k + 1}/{total} ({row['passes']:.2f} passes) lr {lr:.3g}: valid ppl {epoch.valid_perplexity:.1f}"
              f", {epoch.tokens_per_second:,.0f} tokens/s, {seconds:.0f} s, peak {peak_mb()} MB", flush=True)
        del trainer
        import keras  # started by the first trainer

        keras.backend.clear_session()  # each shard builds its networks anew: without this the peak grew ~60 MB a shard
        if (k + 1) % args.sample_every == 0:
            texts = [s.text for s in Sampler(config, tokenizer, weights).sample(
                6, SamplingSettings(temperature=0.8), seed=k)]
            print("  samples: " + " | ".join(texts), flush=True)
    print(f"stopped at shard {state['shard']} of {total}; {state['seconds'] / 3600:.2f} hours trained", flush=True)


def _seed_from_export(export: Path, data: Path, work: Path) -> None:
    """A work folder rebuilt from an exported base (its tokenizer, weights and training state): the next session
    goes on from the shipped base where the machine kept nothing."""
    from models import artifact

    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(export / artifact.TOKENIZER, work / "tokenizer.json")
    prepare(data, work)
    weights = artifact.load_weights(export / artifact.WEIGHTS)  # float32 again
    artifact.save_weights(work / "latest.npz", weights)
    artifact.save_weights(work / "best.npz", weights)
    state = json.loads((export / STATE_FILE).read_text())
    state["shard"] = state.pop("exported_shard")  # the export holds the best shard's weights: go on from there
    state["history"] = [row for row in state["history"] if row["shard"] <= state["shard"]]
    artifact.write_json(work / "state.json", state)
    print(f"resuming from the export in {export} (shard {state['shard']})", flush=True)


# ---- export: the shipped model directory

def export(args: argparse.Namespace) -> None:
    from models import artifact
    from models.config import START_STATE
    from models.start_state import document_start_state
    from models.tokenizer import Tokenizer

    work, out = args.work, args.out
    state = json.loads((work / "state.json").read_text())
    corpus = json.loads((work / "corpus.json").read_text())
    tokenizer = Tokenizer.from_json((work / "tokenizer.json").read_text(encoding="utf-8"))
    weights = artifact.load_weights(work / "best.npz")
    weights = {k: v for k, v in weights.items() if not k.startswith(START_STATE)}  # from a resumed export
    weights |= document_start_state(CONFIG, weights, np.load(work / "valid.npy"))  # where its texts start
    best = min(state["history"], key=lambda row: row["valid_loss"])
    metrics = {"best_epoch": best["shard"], "valid_loss": best["valid_loss"],
               "valid_perplexity": best["valid_perplexity"], "train_tokens": None, "valid_tokens": None,
               "train_seconds": state["seconds"], "budget": None, "history": [], "shards": state["history"]}
    info = {"corpus": "reddit-titles-2013", "created_at": today(), "recipe": "bench/base_model.py",
            "passes": best["passes"], "corpus_stats": corpus, "held_out_subreddits": list(HELD_OUT),
            "licence": "PDDL 1.0 (the corpus); see LICENSE.reddit-titles"}
    out.mkdir(parents=True, exist_ok=True)
    artifact.save_model(out, config=CONFIG, tokenizer=tokenizer, weights=weights, metrics=metrics, info=info)
    np.savez_compressed(out / artifact.WEIGHTS, **{k: v.astype(np.float16) for k, v in weights.items()})
    if args.data and (args.data / "LICENSE").is_file():
        shutil.copyfile(args.data / "LICENSE", out / "LICENSE.reddit-titles")  # not its read-only mode
    artifact.write_json(out / STATE_FILE, {**state, "exported_shard": best["shard"]})  # for --resume-from
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"exported shard {best['shard']} (valid ppl {best['valid_perplexity']}) to {out}: {size / 1e6:.1f} MB")


# ---- the base corpus's novelty index, shipped beside the weights

def build_novelty(args: argparse.Namespace) -> None:
    """Write OUT/base-corpus.npz: the Bloom-filter novelty index (bot.novelty.BaseCorpusIndex) of the training
    titles, so that a bot fine-tuned from the base is kept from posting a copy of one."""
    from bench.common import write_result
    from bot.novelty import BASE_CORPUS_FILE, BaseCorpusIndex

    started = time.monotonic()
    train, _ = split_titles(read_titles(args.data)[0])
    read_seconds = time.monotonic() - started
    index = BaseCorpusIndex.build(train)
    build_seconds = time.monotonic() - started - read_seconds
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / BASE_CORPUS_FILE
    index.save(path)
    print(f"{index.titles:,} titles, {index.keys:,} keys, {index.hashes} hashes: {path.stat().st_size / 1e6:.1f} MB "
          f"in {path}; read in {read_seconds:.0f} s, built in {build_seconds:.0f} s, peak {peak_mb()} MB",
          file=sys.stderr, flush=True)
    if args.json:
        write_result({"path": str(path), "titles": index.titles, "keys": index.keys, "hashes": index.hashes,
                      "file_bytes": path.stat().st_size, "memory_bytes": index.nbytes,
                      "read_seconds": round(read_seconds, 1), "build_seconds": round(build_seconds, 1),
                      "peak_mb": peak_mb(), "machine": machine(), "date": today()}, args.json)


# ---- evaluation: perplexity on the subreddits the base never saw

def evaluate(args: argparse.Namespace) -> None:
    """Held-out perplexity per piece (bench/quality.py's measure) on each HELD_OUT subreddit's titles."""
    from bench.common import write_result
    from bench.quality import held_out_perplexity
    from models.artifact import load_model

    model = load_model(args.model)
    held_out = json.loads((args.work / "held_out.json").read_text(encoding="utf-8"))
    started = time.monotonic()
    result: dict[str, Any] = {"model": str(args.model), "machine": machine(), "date": today(),
                              "valid_perplexity": model.metrics.get("valid_perplexity"), "subreddits": {}}
    for name in HELD_OUT:
        result["subreddits"][name] = {"titles": len(held_out[name]), **held_out_perplexity(model, held_out[name])}
    everything = [t for name in HELD_OUT for t in held_out[name]]
    result["all_held_out"] = {"titles": len(everything), **held_out_perplexity(model, everything)}
    result["seconds"] = round(time.monotonic() - started, 1)
    write_result(result, args.json)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="pretrain (or --resume) the base model")
    t.add_argument("--data", type=Path, default=Path("../shared/data/reddit-titles"))
    t.add_argument("--work", type=Path, required=True, help="where the token streams and checkpoints live")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--resume-from", type=Path, default=None,
                   help="with --resume and an empty --work: start from this exported base (bot/data/base)")
    t.add_argument("--passes", type=float, help=f"passes over the corpus in all (default {DEFAULT_PASSES:g})")
    t.add_argument("--hold", type=float, help=f"passes at the starting rate (default {DEFAULT_HOLD:g})")
    t.add_argument("--end", type=float, help=f"the last rate, a share of the first (default {DEFAULT_END:g})")
    t.add_argument("--hours", type=float, default=None, help="stop after the shard running at this many hours")
    t.add_argument("--sample-every", type=int, default=4, help="print samples every this many shards")
    e = sub.add_parser("export", help="write the best weights as a float16 model directory")
    e.add_argument("--work", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--data", type=Path, default=Path("../shared/data/reddit-titles"))
    b = sub.add_parser("build-novelty", help="write OUT/base-corpus.npz, the base corpus's novelty index")
    b.add_argument("--data", type=Path, default=Path("../shared/data/reddit-titles"))
    b.add_argument("--out", type=Path, required=True, help="the exported base's folder, e.g. bot/data/base")
    b.add_argument("--json", type=Path, default=None, help="also write the figures (size, seconds, peak) here")
    v = sub.add_parser("evaluate", help="perplexity on the held-out subreddits")
    v.add_argument("--work", type=Path, required=True, help="the run's folder (its held_out.json)")
    v.add_argument("--model", type=Path, required=True, help="a model directory, e.g. an export")
    v.add_argument("--json", type=Path, default=None)
    h = sub.add_parser("held-out", help="write each held-out subreddit's titles to OUT/NAME.txt (a corpus file for "
                       "bench/quality.py and bench/blind.py)")
    h.add_argument("--data", type=Path, default=Path("../shared/data/reddit-titles"))
    h.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    {"train": train, "export": export, "build-novelty": build_novelty, "evaluate": evaluate,
     "held-out": write_held_out}[args.command](args)


def write_held_out(args: argparse.Namespace) -> None:
    """The titles of the subreddits the base never saw, a file each (lower-case name), one title a line."""
    args.out.mkdir(parents=True, exist_ok=True)
    for name, titles in read_titles(args.data)[1].items():
        (args.out / f"{name.lower()}.txt").write_text("".join(" ".join(t.split()) + "\n" for t in titles),
                                                      encoding="utf-8")
        print(f"{len(titles):,} titles in {args.out / (name.lower() + '.txt')}")


if __name__ == "__main__":
    main()
