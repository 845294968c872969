"""Sampling text from a trained model: many samples at once, one LSTM step per new token.

The step runs in numpy on the saved weights, so sampling needs no Keras backend (and no TensorFlow start-up).
Each step feeds one token per row and carries (h, c) forward; nothing re-reads a window. Rows that finish
(`<eos>` or the length cap) are handed back and replaced by fresh samples until `n` are done, and once no more
are needed the batch shrinks, so a step costs in proportion to the samples still running.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from models.config import ModelConfig
from models.errors import ModelError
from models.tokenizer import (BOS_ID, DUMMY_PREFIX, EOS_ID, FIRST_UPPER_SHARE, MARKERS, PAD_ID, SPECIALS, UNK_ID,
                              Tokenizer, join)

NEVER_SAMPLED = (PAD_ID, UNK_ID, BOS_ID)  # the sampler may end a text (<eos>) but never emit these
DEFAULT_MAX_TOKENS = 60  # tokens per sample before it is cut off (titles are 10-20)
DEFAULT_BATCH = 256  # samples advancing together
PARALLEL_ROWS = 64  # from this many running samples, the per-row work is split across threads
SAMPLING_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Sample:
    text: str
    logprob: float  # natural log of the model's probability of the generated tokens (temperature 1)
    tokens: int  # generated tokens, <eos> included when reached
    complete: bool  # ended with <eos> rather than at the length cap
    ids: tuple[int, ...] = ()  # the generated token ids, <eos> included
    empty: bool = False  # nothing but <eos> or whitespace was generated: the text is the prefix alone


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0
    top_k: int = 0  # keep the k most likely tokens; 0 = all
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p; 1 = all
    max_tokens: int = DEFAULT_MAX_TOKENS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):  # inf and NaN compare oddly
            raise ModelError("The temperature must be a finite number greater than 0 (try 0.5 to 1.0).")
        if self.top_k < 0 or not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise ModelError("top-k must be 0 or more and top-p must be in (0, 1].")
        if self.max_tokens < 1:
            raise ModelError("The maximum length must be at least 1 token.")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # one transcendental per element instead of exp + divide


class LSTMStepper:
    """The network, one step at a time, on numpy arrays."""

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray]) -> None:
        f32 = np.float32
        self.embedding = np.ascontiguousarray(weights["embedding"], dtype=f32)  # (V, E)
        # [kernel; recurrent_kernel] stacked so each layer is one matmul of [input, h] (in + H, 4H).
        self.cells = [
            (np.concatenate([weights[f"lstm_{i}/kernel"], weights[f"lstm_{i}/recurrent_kernel"]]).astype(f32),
             weights[f"lstm_{i}/bias"].astype(f32))
            for i in range(config.layers)
        ]
        self.projection = None
        if "projection/kernel" in weights:
            self.projection = (weights["projection/kernel"].astype(f32), weights["projection/bias"].astype(f32))
        out = weights["output/kernel"] if "output/kernel" in weights else weights["embedding"].T  # (H|E, V)
        self.output = (np.ascontiguousarray(out, dtype=f32), weights["output/bias"].astype(f32))
        self.hidden = config.hidden_dim

    def zero_state(self, rows: int) -> list[np.ndarray]:
        """[h0, c0, h1, c1, …], each (rows, H)."""
        return [np.zeros((rows, self.hidden), np.float32) for _ in range(2 * len(self.cells))]

    def step(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """tokens (B,) -> logits (B, V) and the next state. Keras's gate order: input, forget, cell, output."""
        x = self.embedding[tokens]  # (B, E)
        new_state = []
        for i, (kernel, bias) in enumerate(self.cells):
            h, c = state[2 * i], state[2 * i + 1]
            z = np.concatenate([x, h], axis=1) @ kernel + bias  # (B, 4H)
            gi, gf, gc, go = np.split(z, 4, axis=1)
            c = _sigmoid(gf) * c + _sigmoid(gi) * np.tanh(gc)
            x = _sigmoid(go) * np.tanh(c)  # h, the input of the next layer
            new_state += [x, c]
        if self.projection is not None:
            x = x @ self.projection[0] + self.projection[1]
        return x @ self.output[0] + self.output[1], new_state


class Sampler:
    """Draws texts from a model; seedable, and each text comes with its log-probability."""

    def __init__(self, config: ModelConfig, tokenizer: Tokenizer, weights: dict[str, np.ndarray]) -> None:
        self.tokenizer = tokenizer
        self.stepper = LSTMStepper(config, weights)
        # Rare-word classes with no word to fill them would write nothing; they are never drawn either.
        empty = [i for i in range(tokenizer.size) if tokenizer.is_rare_class(i) and not tokenizer.fill_count(i)]
        self.never_sampled = np.array(NEVER_SAMPLED + tuple(empty), dtype=np.int64)
        self.ends_word, self.glued, self.is_marker = glue_tables(tokenizer)

    def sample(self, n: int, settings: SamplingSettings = SamplingSettings(), *, prefix: str = "",
               seed: int | None = None, batch_size: int = DEFAULT_BATCH) -> list[Sample]:
        return list(self.iter_samples(n, settings, prefix=prefix, seed=seed, batch_size=batch_size))

    def iter_samples(self, n: int, settings: SamplingSettings = SamplingSettings(), *, prefix: str = "",
                     seed: int | None = None, batch_size: int = DEFAULT_BATCH) -> Iterator[Sample]:
        """Yield `n` samples as they finish (short ones first)."""
        if n < 1:
            return
        rng = np.random.default_rng(seed)
        fill_rng = rng.spawn(1)[0]  # rare words drawn apart, so the tokens of a seed do not depend on them
        start_logits, start_state = self._prime(prefix)  # (1, V), [(1, H), …]
        rows = min(n, batch_size)
        logits = np.repeat(start_logits, rows, axis=0)  # (B, V)
        state = [np.repeat(s, rows, axis=0) for s in start_state]
        generated: list[list[int]] = [[] for _ in range(rows)]
        logprob = np.zeros(rows, np.float64)
        start_ends_word = bool(_WORD_CHAR.match(prefix[-1:]))  # a prefix ending in a word: no piece glued to it
        ends_word = np.full(rows, start_ends_word)  # (B,) the row's text so far ends in a word character
        started = rows
        while generated:
            if ends_word.any() and len(self.glued):
                logits[np.ix_(np.flatnonzero(ends_word), self.glued)] = -np.inf
            tokens, token_logprob = self._choose(logits, settings, rng)
            logprob += token_logprob
            ends_word = np.where(self.is_marker[tokens], ends_word, self.ends_word[tokens])
            restart = np.zeros(len(generated), dtype=bool)  # finished rows that begin a new sample
            keep = np.ones(len(generated), dtype=bool)  # rows that take another step
            for r, token in enumerate(tokens.tolist()):
                generated[r].append(token)
                if token == EOS_ID or len(generated[r]) >= settings.max_tokens:
                    yield self._finish(prefix, generated[r], float(logprob[r]), fill_rng)
                    if started < n:
                        started += 1
                        restart[r], generated[r], logprob[r] = True, [], 0.0
                        ends_word[r] = start_ends_word
                    else:
                        keep[r] = False
            if not keep.all():  # compaction: the batch shrinks once no new samples are needed
                generated = [g for g, k in zip(generated, keep) if k]
                tokens, logprob, restart, ends_word = tokens[keep], logprob[keep], restart[keep], ends_word[keep]
                state = [s[keep] for s in state]
            if not generated:
                return
            logits, state = self.stepper.step(tokens, state)
            if restart.any():  # a restarted row continues from the primed prefix, not from its last token
                logits[restart] = start_logits[0]
                for s, s0 in zip(state, start_state):
                    s[restart] = s0[0]

    def _prime(self, prefix: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """Feed <bos> and the prefix through one row; the logits for the first new token and the state."""
        ids = self.tokenizer.encode(prefix, bos=True) if prefix else [BOS_ID]
        state = self.stepper.zero_state(1)
        for token in ids:
            logits, state = self.stepper.step(np.array([token]), state)
        return logits, state

    def _choose(self, logits: np.ndarray, settings: SamplingSettings,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One token per row, and its log-probability under the model; rows split across threads when many."""
        draws = rng.random(len(logits))  # drawn here, in order, so a seed gives the same text however rows split
        if len(logits) < PARALLEL_ROWS or SAMPLING_THREADS < 2:
            return _choose_rows(logits, draws, settings, self.never_sampled)
        bounds = np.linspace(0, len(logits), SAMPLING_THREADS + 1).astype(int)
        parts = list(_pool().map(lambda ab: _choose_rows(logits[ab[0]:ab[1]], draws[ab[0]:ab[1]], settings,
                                                         self.never_sampled),
                                 zip(bounds[:-1], bounds[1:])))
        return np.concatenate([t for t, _ in parts]), np.concatenate([p for _, p in parts])

    def _finish(self, prefix: str, ids: list[int], logprob: float, fill_rng: np.random.Generator) -> Sample:
        complete = ids[-1] == EOS_ID
        # leading space kept; rare words filled; each word in a casing the training text used for it
        generated = self.tokenizer.decode_pieces(ids, fill_rng, true_case=True)
        # Whitespace pieces (a lone space, a newline) can open or close a sample; a post never should.
        text = join([DUMMY_PREFIX + prefix if prefix else "", generated]).strip()
        first = self.tokenizer.first_upper
        if not prefix and first is not None and first >= FIRST_UPPER_SHARE and text[:1].islower():
            text = text[0].upper() + text[1:]  # as the corpus's documents almost all begin
        return Sample(text=text, logprob=logprob, tokens=len(ids), complete=complete, ids=tuple(ids),
                      empty=not generated.strip())


def _choose_rows(logits: np.ndarray, draws: np.ndarray, settings: SamplingSettings,
                 never_sampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens for rows of `logits` (B, V), overwritten, given uniform `draws` (B,).

    Each pass over (B, V) costs about as much as the step's matrix products, so the passes are few: shift by the
    row maximum, exponentiate, accumulate, and draw by binary search in each row's running sum.
    """
    rows = np.arange(len(logits))
    logits[:, never_sampled] = -np.inf
    np.subtract(logits, logits.max(axis=1, keepdims=True), out=logits)  # each row's maximum is now 0
    if settings.temperature == 1:
        weights = np.exp(logits)
        normalizer = weights.sum(axis=1)
    else:
        weights = np.exp(logits * np.float32(1 / settings.temperature))
        normalizer = np.exp(logits).sum(axis=1)  # the model's own distribution, for the log-probability
    if settings.top_k and settings.top_k < weights.shape[1]:
        kth = np.partition(weights, -settings.top_k, axis=1)[:, -settings.top_k][:, None]
        weights[weights < kth] = 0
    if settings.top_p < 1:
        weights = _nucleus(weights, settings.top_p)
    cumulative = np.cumsum(weights, axis=1)
    targets = draws * cumulative[:, -1]
    tokens = np.fromiter((np.searchsorted(c, t, side="right") for c, t in zip(cumulative, targets)),
                         dtype=np.int64, count=len(targets))
    # Rounding can land past a row's last token with any weight; step back to a real one.
    tokens = np.minimum(tokens, weights.shape[1] - 1)
    stray = weights[rows, tokens] == 0
    if stray.any():
        tokens[stray] = weights[stray].argmax(axis=1)
    return tokens, logits[rows, tokens] - np.log(normalizer)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Threads for the per-row work: numpy releases the GIL in its loops over large arrays."""
    return ThreadPoolExecutor(max_workers=SAMPLING_THREADS, thread_name_prefix="nnbot-sampler")


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Zero all but the most likely tokens whose probabilities add up to `top_p` of each row."""
    order = np.argsort(-probs, axis=1)
    sorted_probs = np.take_along_axis(probs, order, axis=1)
    cumulative = np.cumsum(sorted_probs, axis=1)
    total = cumulative[:, -1:]
    # Keep a token if the mass before it is still short of top_p (so the most likely token is always kept).
    keep_sorted = (cumulative - sorted_probs) < top_p * total
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    return np.where(keep, probs, 0.0)


GLUING_CLASSES = tuple(f"<unk:^{shape}>" for shape in ("word", "number", "alnum"))  # fills that start with \w, no space
_WORD_CHAR = re.compile(r"\w")


def glue_tables(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ends_word (V,) bool, glued (G,) ids, is_marker (V,) bool): which tokens end in a word character, which
    begin with one and no space, and which are case markers (they stand before a word and leave the last piece as
    it was).

    The tokenizer cuts a run of word characters into one piece, so a piece that begins with a word character and no
    space never follows one that ends with a word character in any training text; written by the sampler, that pair
    is a glued word ("withMicrosoft", "require2016"), and it is never drawn."""
    size = tokenizer.size
    ends, glued, markers = np.zeros(size, bool), [], np.zeros(size, bool)
    for i, piece in enumerate(tokenizer.pieces):
        if i < len(SPECIALS):
            continue
        if piece in MARKERS:
            markers[i] = True
        elif tokenizer.is_rare_class(i):
            shape = piece[len("<unk:"):-1]
            ends[i] = shape.lstrip("^") in ("word", "number", "alnum", "link")
            if piece in GLUING_CLASSES:
                glued.append(i)
        else:
            ends[i] = bool(_WORD_CHAR.match(piece[-1:]))
            if _WORD_CHAR.match(piece[:1]):
                glued.append(i)
    return ends, np.array(glued, dtype=np.int64), markers
