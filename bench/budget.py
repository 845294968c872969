"""Validation perplexity against minutes of training: nnbot's `auto` (planned for each time limit) and fixed recipes.

Contenders, each trained on the same machine, one after the other:

  auto           what `bot train --preset auto --max-minutes M` trains: the preset chosen for the corpus and the
                 limit, the learning rate decaying linearly to zero at the limit (held, then decayed, where 12
                 epochs or more fit), dropout fitted to the epochs that fit, and where few fit, fewer units and a
                 sampled softmax for the first half (models.budget).
                 A separate run per limit, since the plan depends on it.
  zaremba-small  Zaremba et al.'s small recipe (2 x 200, no dropout, SGD, halved per epoch after the 4th).
  medium         the `medium` recipe as it was before budgeted training: full softmax, constant lr 20 for 8
                 epochs, then x0.7 per epoch, whatever the limit.
  textgenrnn     a textgenrnn-style word model: 8 words in, one word out (embedding 100, 2 x LSTM 128, attention
                 over the concatenated layers, RMSprop 4e-3, batch 128), as textgenrnn trains at word level.

The last three do not depend on the limit, so one run each goes to the longest limit and is measured at every
limit on the way: the clock stops while the validation text is scored at a mark, and the figure at a mark is what a
run stopped there would keep (the best of its epoch-end validations and the weights at the mark).

Perplexity is per token of the validation text, the same tokens for every contender: Penn Treebank's standard
split, or the held-out 10 % of a file of documents (one tokenizer, built as `bot train` builds it). On PTB `auto`
is also scored on the test text, with its best epoch's weights.

A file of results holds one machine's: `--json` adds contenders and limits to an earlier run's file, and refuses a
file measured on another machine (the figures would not compare). Machines of one name and vector width have run
at half each other's speed on different days, so the file also records the matrix-product rate measured when it
was made, and a run whose rate differs from it by more than SPEED_SPREAD times is refused too. A file's optional
`labels` (contender -> text) names its curves in the plot, where a curve is of code older than the contender's name
says.

    python bench/budget.py ptb --data ../shared/data/ptb --minutes 2 5 10 --json bench/results/budget-ptb.json
    python bench/budget.py titles --file bot/data/hacker_news_2000.txt --minutes 1 2 6 \\
        --json bench/results/budget-titles.json
    python bench/budget.py plot bench/results/budget-ptb.json bench/results/budget-titles.json \\
        --png bench/results/budget.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import machine, peak_mb, today  # noqa: E402
from bench.ptb import Printer  # noqa: E402
from models import budget  # noqa: E402
from models.config import PRESETS, ModelConfig, preset  # noqa: E402
from models.data import split_documents  # noqa: E402
from models.tokenizer import BOS_ID, PAD_ID, Tokenizer  # noqa: E402

CONTENDERS = ("auto", "zaremba-small", "medium", "textgenrnn")
FULL = "auto-full-softmax"  # auto's plan, but the preset's network and full softmax where it would sample and narrow
# also "budget:PRESET": that preset planned for each limit as `auto` is (what `--preset PRESET --max-minutes M` trains)
# `medium` as it trained before budgeted training (commit 1349fc6), whatever the preset becomes
MEDIUM_BEFORE = ModelConfig(embedding_dim=300, hidden_dim=300, layers=2, tied=True, dropout=0.4,
                            embedding_dropout=0.1, init_scale=0.1, window=35, batch_size=20, optimizer="sgd",
                            learning_rate=20.0, lr_decay=0.7, lr_decay_after=8, clip_norm=0.25, epochs=26,
                            patience=4, budget_schedule=False, sampled_softmax=0)
SPEED_SPREAD = 1.5  # the probe itself moved by up to 1.4x between runs on one machine and day (bench/RESULTS.md)
TEXTGENRNN = {"window": 8, "embedding": 100, "units": 128, "layers": 2, "learning_rate": 4e-3, "batch": 128}


class Clock:
    """time.monotonic, less the time spent inside `paused()` (scoring at the marks)."""

    def __init__(self) -> None:
        self.stopped = 0.0

    def __call__(self) -> float:
        return time.monotonic() - self.stopped

    @contextmanager
    def paused(self) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.stopped += time.monotonic() - start


class Marks:
    """Scores the model when the clock passes each mark; `best` is the best epoch-end validation so far."""

    def __init__(self, clock: Clock, minutes: list[float], score: Callable[[], float]) -> None:
        self.clock, self.score, self.start = clock, score, clock()
        self.pending = sorted(minutes)
        self.best, self.results = math.inf, {}  # minutes -> nats per token

    def elapsed(self) -> float:
        return (self.clock() - self.start) / 60

    def check(self) -> bool:
        """Score at each passed mark; True once the last mark is passed."""
        while self.pending and self.elapsed() >= self.pending[0]:
            with self.clock.paused():
                loss = min(self.best, self.score())
            self.results[self.pending.pop(0)] = loss
            print(f"  mark {self.elapsed():.2f} min: valid ppl {math.exp(loss):.2f}", flush=True)
        return not self.pending


# ---- corpora


def ptb_streams(data: Path) -> tuple[Tokenizer, np.ndarray, np.ndarray, bool, int, np.ndarray]:
    from bench.ptb import FILES, encode, ptb_tokenizer, read_words

    train, valid, test = (read_words(data / f) for f in FILES)
    tokenizer = ptb_tokenizer(train)
    words = sum(len(line) for line in train)
    return tokenizer, encode(tokenizer, train), encode(tokenizer, valid), False, words, encode(tokenizer, test)


def document_streams(path: Path) -> tuple[Tokenizer, np.ndarray, np.ndarray, bool, int, None]:
    """The documents of `path` split and tokenized as `bot train` does (the default model settings)."""
    from bench.quality import read_corpus

    texts = read_corpus(path, "auto")
    config = ModelConfig()
    train_idx, valid_idx = split_documents(len(texts), valid_fraction=config.valid_fraction, seed=config.seed)
    train = [texts[i] for i in train_idx]
    tokenizer = Tokenizer.build(train, max_vocab=config.max_vocab, min_count=config.min_count,
                                case_markers=config.case_markers, rare_classes=config.rare_classes)
    valid = [texts[i] for i in valid_idx]
    words = sum(len(t.split()) for t in train + valid)
    return tokenizer, tokenizer.encode_corpus(train), tokenizer.encode_corpus(valid), True, words, None  # no test text


# ---- contenders


class Quiet(Printer):
    """bench/ptb.py's printer, an epoch line without samples."""

    def on_epoch(self, result: Any, *, best: bool) -> None:
        print(f"  epoch {result.epoch}: valid ppl {result.valid_perplexity:.2f}, lr {result.learning_rate:.3g}, "
              f"{result.tokens_per_second:.0f} tokens/s{' (partial)' if result.partial else ''}", flush=True)

    def on_samples(self, *_: object) -> None:
        pass


def run_auto(corpus: tuple, minutes: float, chosen: str | None = None, full: bool = False) -> dict[str, Any]:
    """One `bot train --preset auto --max-minutes M` run (or `--preset CHOSEN`), on pre-tokenized streams.

    `full` trains the preset's network with the full softmax where the plan would sample and narrow it: the other
    branch of the plan, to check its choice.
    """
    from models.fitting import matmul_rate
    from models.trainer import Trainer

    tokenizer, train, valid, shuffle, words, test = corpus
    name, reason = budget.choose_preset(words, minutes)
    if chosen:
        name, reason = chosen, f"{chosen}, as asked"
    base = preset(name).replace(shuffle_documents=shuffle, sample_every=0)
    flops = matmul_rate()
    config = budget.plan_network(base, tokenizer.size, len(train), minutes, lambda: flops)  # as `bot train` does
    if full:  # the other branch: the preset's network with the full softmax
        config = base.replace(sampled_softmax=0)
    print(f"auto, {minutes:g} min: {reason}", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        trainer = Trainer(config, tokenizer, train, valid, Path(directory), reporter=Quiet())
        summary = trainer.run(max_minutes=minutes)
        scores = {}
        if test is not None:  # the best epoch's weights, as bench/ptb.py scores them
            trainer.restore_best()
            scores["test_perplexity"] = round(math.exp(trainer.evaluate(test)), 2)
    return {"preset": name, "reason": reason, "sampled_softmax": config.sampled_softmax,
            "hidden_dim": config.hidden_dim, "matmul_gflops": round(flops / 1e9, 1),
            "valid_perplexity": round(summary.best.valid_perplexity, 2), **scores,
            "epochs": len(summary.epochs), "budget": summary.budget,
            "tokens_per_second": round(float(np.mean([e.tokens_per_second for e in summary.epochs]))),
            "training_minutes": round(summary.seconds / 60, 2)}


def run_recipe(corpus: tuple, config: ModelConfig, minutes: list[float]) -> dict[float, float]:
    """One run of a fixed recipe to the longest mark; valid loss at each mark."""
    from models.trainer import Trainer

    tokenizer, train, valid, shuffle, _, _ = corpus
    config = config.replace(shuffle_documents=shuffle and config.shuffle_documents, sample_every=0, epochs=1000,
                            patience=0, budget_schedule=False)
    clock = Clock()

    class Reporter(Quiet):
        def on_batch(self, **_: object) -> None:
            marks.check()

        def on_epoch(self, result: Any, *, best: bool) -> None:
            super().on_epoch(result, best=best)
            marks.best = min(marks.best, result.valid_loss)
            marks.check()

    with tempfile.TemporaryDirectory() as directory:
        trainer = Trainer(config, tokenizer, train, valid, Path(directory), reporter=Reporter(), clock=clock)
        marks = Marks(clock, minutes, trainer.evaluate)
        trainer.run(max_minutes=max(minutes))  # on the same clock: it stops just after the last mark
    return marks.results


def run_textgenrnn(corpus: tuple, minutes: list[float]) -> dict[float, float]:
    """A textgenrnn-style many-to-one model: each step predicts one word from the 8 before it."""
    import keras
    from keras import layers, ops

    from models.fitting import TokenNLL

    tokenizer, train, valid, _, _, _ = corpus
    c = TEXTGENRNN
    keras.utils.set_random_seed(0)

    class AttentionWeightedAverage(layers.Layer):  # textgenrnn's: softmax over time of a learned score
        def build(self, shape: tuple[int, ...]) -> None:
            self.w = self.add_weight(shape=(shape[-1], 1), initializer="glorot_uniform", name="w")

        def call(self, x):  # (B, T, D) -> (B, D)
            weights = ops.softmax(ops.squeeze(ops.matmul(x, self.w), -1), axis=-1)
            return ops.sum(x * ops.expand_dims(weights, -1), axis=1)

    ids = keras.Input((c["window"],), dtype="int32")
    embedded = layers.Embedding(tokenizer.size, c["embedding"])(ids)
    outputs, x = [embedded], embedded
    for _ in range(c["layers"]):
        x = layers.LSTM(c["units"], return_sequences=True)(x)
        outputs.append(x)
    logits = layers.Dense(tokenizer.size)(AttentionWeightedAverage()(layers.Concatenate()(outputs)))
    model = keras.Model(ids, logits)
    model.compile(optimizer=keras.optimizers.RMSprop(c["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[TokenNLL()])

    def contexts(stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        padded = np.concatenate([np.full(c["window"], PAD_ID, dtype=np.int32), stream])
        x = np.lib.stride_tricks.sliding_window_view(padded[:-1], c["window"])  # (N, window): the words before
        return x[1:], stream[1:]  # every token after the first is a target

    train_x, train_y = contexts(train)
    valid_x, valid_y = contexts(valid)
    valid_w = (valid_y != BOS_ID).astype("float32")  # as the trainer scores: <bos> targets do not count
    clock = Clock()

    def score() -> float:
        result = model.evaluate(valid_x, valid_y, sample_weight=valid_w, batch_size=1024, verbose=0,
                                return_dict=True)
        return float(result["token_nll"])

    marks = Marks(clock, minutes, score)

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if marks.check():
                self.model.stop_training = True

    rng = np.random.default_rng(0)
    while marks.pending:
        order = rng.permutation(len(train_x))
        model.fit(train_x[order], train_y[order], batch_size=c["batch"], epochs=1, verbose=0, callbacks=[Watch()])
        if marks.pending:
            with clock.paused():
                marks.best = min(marks.best, score())
            print(f"  epoch: valid ppl {math.exp(marks.best):.2f}", flush=True)
    return marks.results


# ---- the curve


def measure(args: argparse.Namespace) -> None:
    from models.fitting import matmul_rate

    corpus = ptb_streams(args.data) if args.command == "ptb" else document_streams(args.file)
    tokenizer, train, valid, _, words, _ = corpus
    gflops = round(matmul_rate() / 1e9, 1)
    result: dict[str, Any] = {
        "corpus": args.command if args.command == "ptb" else args.file.name, "machine": machine(), "date": today(),
        "matmul_gflops": gflops,
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "minutes": args.minutes,
        "vocabulary": tokenizer.size, "words": words, "tokens": {"train": len(train), "valid": len(valid)},
        "curve": {}, "auto": [],
    }
    if args.json and args.json.exists():  # add to an earlier run's contenders
        earlier = json.loads(args.json.read_text())
        if earlier.get("machine") != result["machine"]:  # one file, one machine: their figures compare
            sys.exit(f"{args.json} was measured on {earlier.get('machine')}, this is {result['machine']}: "
                     "write to another file.")
        then = earlier.get("matmul_gflops")
        if then and max(then / gflops, gflops / then) > SPEED_SPREAD:  # the same name, but not the same speed
            sys.exit(f"{args.json} was measured where matrix products ran at {then:g} GFLOP/s; here they run at "
                     f"{gflops:g}: write to another file.")
        result["matmul_gflops"] = then or gflops  # the file's own, what later runs compare with
        result.update({k: v for k, v in earlier.items() if k not in result or k in ("curve", "auto")})
        result["minutes"] = sorted(set(earlier.get("minutes", [])) | set(args.minutes))

    def save() -> None:
        result["peak_memory_mb"] = peak_mb()
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    for name in args.contenders:
        print(f"== {name}", flush=True)
        if name in ("auto", FULL) or name.startswith("budget:"):
            chosen = name.partition(":")[2] or None
            runs = [r for r in result.setdefault(name, []) if r["minutes"] not in args.minutes]
            for minutes in args.minutes:
                runs.append({"minutes": minutes, **run_auto(corpus, minutes, chosen, full=name == FULL)})
                result[name] = sorted(runs, key=lambda r: r["minutes"])
                save()
            losses = {r["minutes"]: math.log(r["valid_perplexity"]) for r in result[name]}
        elif name == "textgenrnn":
            losses = run_textgenrnn(corpus, args.minutes)
        else:
            config = MEDIUM_BEFORE if name == "medium" else PRESETS[name]
            losses = run_recipe(corpus, config, args.minutes)
        curve = result["curve"].setdefault(name, {})
        curve.update({f"{m:g}": round(math.exp(loss), 2) for m, loss in losses.items()})
        save()
    print(table(result))


def table(result: dict[str, Any]) -> str:
    marks = sorted({m for curve in result["curve"].values() for m in curve}, key=float)
    lines = ["| contender | " + " | ".join(f"{m} min" for m in marks) + " |",
             "|---|" + "---|" * len(marks)]
    for name, curve in result["curve"].items():
        lines.append(f"| {name} | " + " | ".join(f"{curve[m]:.1f}" if m in curve else "—" for m in marks) + " |")
    return "\n".join(lines)


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [json.loads(path.read_text()) for path in args.results]
    colours = {name: f"C{i}" for i, name in enumerate((*CONTENDERS, FULL))}  # one colour per contender in every panel
    extra = matplotlib.colormaps["Dark2"]  # past the ten of the default cycle, which would repeat C0 (auto's)
    for name in dict.fromkeys(name for result in results for name in result["curve"]):
        colours.setdefault(name, f"C{len(colours)}" if len(colours) < 10 else extra(len(colours) % 8))
    columns = min(3, len(results))
    rows = math.ceil(len(results) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.set_visible(False)
    for ax, result in zip(axes.flat, results):
        labels = {"medium": "medium (before)", **result.get("labels", {})}  # a file may say which code a curve was
        for name, curve in result["curve"].items():
            marks = sorted(curve, key=float)
            ax.plot([float(m) for m in marks], [curve[m] for m in marks], marker="o", color=colours.get(name),
                    linewidth=2.5 if name == "auto" else 1.5, label=labels.get(name, name))
        values = [v for curve in result["curve"].values() for v in curve.values()]
        if max(values) - min(values) < 0.05 * max(values):  # a few close figures: no magnified axis, and say them
            middle = (max(values) + min(values)) / 2
            ax.set_ylim(middle * 0.95, middle * 1.05)
            for name, curve in result["curve"].items():
                for mark, value in curve.items():
                    ax.annotate(f"{value:g}", (float(mark), value), textcoords="offset points", xytext=(8, -3),
                                color=colours.get(name))
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([float(m) for m in result["minutes"]], [f"{m:g}" for m in result["minutes"]])
        ax.set_xlabel("minutes of training")
        ax.set_ylabel("validation perplexity")
        host = result["machine"]
        speed = f", {result['matmul_gflops']:g} GFLOP/s" if result.get("matmul_gflops") else ""
        ax.set_title(f"{result['corpus']}, {result['date']}\n({host['cpu']}, {host.get('vector') or 'no vector'}, "
                     f"{host['cores']} cores{speed})", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


def _contender(name: str) -> str:
    if name in CONTENDERS or name == FULL or name.startswith("budget:") and name.partition(":")[2] in PRESETS:
        return name
    raise argparse.ArgumentTypeError(f"{name!r} is none of {', '.join(CONTENDERS)}, {FULL}, budget:PRESET")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("ptb", "titles"):
        sub = commands.add_parser(name)
        if name == "ptb":
            sub.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt and ptb.valid.txt")
        else:
            sub.add_argument("--file", type=Path, default=Path("bot/data/hacker_news_2000.txt"),
                             help="a file of documents, read as `bot corpus import` reads it")
        sub.add_argument("--minutes", type=float, nargs="+", required=True, help="time limits (marks)")
        sub.add_argument("--contenders", nargs="+", default=list(CONTENDERS), type=_contender,
                         help=f"of {', '.join(CONTENDERS)}, and {FULL} (auto's plan with the full softmax), "
                              "budget:PRESET")
        sub.add_argument("--json", type=Path, help="write (and add to) the results here")
    sub = commands.add_parser("plot")
    sub.add_argument("results", type=Path, nargs="+", help="JSON files written by the other commands")
    sub.add_argument("--png", type=Path, required=True)
    args = parser.parse_args()
    plot(args) if args.command == "plot" else measure(args)


if __name__ == "__main__":
    main()
