"""Sampling text from a trained model: many samples at once, one LSTM step per new token.

The step runs in numpy on the saved weights, so sampling needs no Keras backend (and no TensorFlow start-up).
Each step feeds one token per row and carries (h, c) forward; nothing re-reads a window. Rows that finish
(`<eos>` or the length cap) are handed back and replaced by fresh samples until `n` are done, and once no more
are needed the batch shrinks, so a step costs in proportion to the samples still running. Rows whose tokens so far
are the same share one history (one LSTM state, one output product, one distribution), each with its own draw:
every row at its first token, many at their second. Choosing the token is models.token_draw.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from models.config import DEFAULT_RARE_WORDS, ModelConfig, start_state_shapes
from models.errors import ModelError
from models.token_draw import padded_width, pick, weigh
from models.tokenizer import (BOS_ID, DUMMY_PREFIX, EOS_ID, FIRST_UPPER_SHARE, MARKERS, PAD_ID, SPECIALS, UNK_ID,
                              WORD_CLASSES, Tokenizer, join)

NEVER_SAMPLED = (PAD_ID, UNK_ID, BOS_ID)  # the sampler may end a text (<eos>) but never emit these
DEFAULT_MAX_TOKENS = 60  # tokens per sample before it is cut off (titles are 10-20)
DEFAULT_BATCH = 256  # samples advancing together
PARALLEL_ROWS = 64  # from this many distinct histories, the per-row work is split across threads
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
    # Whether a rare-word class that writes a word (models.tokenizer.WORD_CLASSES) may be drawn. Its fill is a rare
    # word of the right shape drawn by frequency alone, blind to the sentence ("Durkheim Congressman Sues…"); without
    # them the model writes a word it knows in that place. Numbers and other shapes are drawn either way.
    rare_words: bool = DEFAULT_RARE_WORDS

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
        # [kernel; recurrent_kernel] stacked so each layer is one matmul of [input, h] (in + H, 4H), and the gates'
        # columns put in the order input, forget, output, cell (Keras's: input, forget, cell, output), so the three
        # sigmoid gates are one slice.
        H = config.hidden_dim
        order = np.concatenate([np.arange(2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])
        self.cells = [
            (np.ascontiguousarray(np.concatenate([weights[f"lstm_{i}/kernel"],
                                                  weights[f"lstm_{i}/recurrent_kernel"]])[:, order], dtype=f32),
             weights[f"lstm_{i}/bias"][order].astype(f32))
            for i in range(config.layers)
        ]
        self.projection = None
        if "projection/kernel" in weights:
            self.projection = (weights["projection/kernel"].astype(f32), weights["projection/bias"].astype(f32))
        out = weights["output/kernel"] if "output/kernel" in weights else weights["embedding"].T  # (H|E, V)
        self.output = (np.ascontiguousarray(out, dtype=f32), weights["output/bias"].astype(f32))
        self.hidden = config.hidden_dim
        # The state a document starts from, where the model has one (models.start_state); else zero.
        names = list(start_state_shapes(config))
        self.start = [weights[name].astype(f32) for name in names] if all(n in weights for n in names) else None

    def zero_state(self, rows: int) -> list[np.ndarray]:
        """[h0, c0, h1, c1, …], each (rows, H)."""
        return [np.zeros((rows, self.hidden), np.float32) for _ in range(2 * len(self.cells))]

    def start_state(self, rows: int) -> list[np.ndarray]:
        """The state each text starts from (before its <bos>): the model's document start state, else zero."""
        if self.start is None:
            return self.zero_state(rows)
        return [np.repeat(part[None, :], rows, axis=0) for part in self.start]

    def advance(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """tokens (B,) -> what the output layer reads (B, H|E), and the next state."""
        H = self.hidden
        x = self.embedding[tokens]  # (B, E)
        new_state = []
        for i, (kernel, bias) in enumerate(self.cells):
            h, c = state[2 * i], state[2 * i + 1]
            z = np.concatenate([x, h], axis=1) @ kernel  # (B, 4H): input, forget, output, cell
            z += bias
            gates = _sigmoid(z[:, :3 * H])
            c = gates[:, H:2 * H] * c + gates[:, :H] * np.tanh(z[:, 3 * H:])
            x = gates[:, 2 * H:] * np.tanh(c)  # h, the input of the next layer
            new_state += [x, c]
        if self.projection is not None:
            x = x @ self.projection[0] + self.projection[1]
        return x, new_state

    def step(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """tokens (B,) -> logits (B, V) and the next state."""
        x, new_state = self.advance(tokens, state)
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
        self.output = OutputColumns(*self.stepper.output, never=self.never_sampled, glued=self.glued)
        self._without_rare_words: OutputColumns | None = None  # built on first use (a second copy of the kernel)

    def _columns(self, settings: SamplingSettings) -> OutputColumns:
        """The output columns `settings` draws from: all but the never-drawn ones, or without word classes too."""
        if settings.rare_words:
            return self.output
        if self._without_rare_words is None:
            words = [i for i in range(self.tokenizer.size) if self.tokenizer.pieces[i] in WORD_CLASSES]
            never = np.union1d(self.never_sampled, np.array(words, dtype=np.int64))
            self._without_rare_words = OutputColumns(*self.stepper.output, never=never, glued=self.glued)
        return self._without_rare_words

    def sample(self, n: int, settings: SamplingSettings = SamplingSettings(), *, prefix: str = "",
               seed: int | None = None, batch_size: int = DEFAULT_BATCH) -> list[Sample]:
        return list(self.iter_samples(n, settings, prefix=prefix, seed=seed, batch_size=batch_size))

    def iter_samples(self, n: int, settings: SamplingSettings = SamplingSettings(), *, prefix: str = "",
                     seed: int | None = None, batch_size: int = DEFAULT_BATCH) -> Iterator[Sample]:
        """Yield `n` samples as they finish (short ones first).

        Rows whose tokens so far are the same (every row at its first token; many at their second) share one
        history: one LSTM state and one distribution, each row with its own draw from it.
        """
        if n < 1:
            return
        rng = np.random.default_rng(seed)
        fill_rng = rng.spawn(1)[0]  # rare words drawn apart, so the tokens of a seed do not depend on them
        start = self._prime(prefix)
        rows = min(n, batch_size)
        histories, of_row = start, np.zeros(rows, np.int64)  # (B,) each row's history
        output = self._columns(settings)
        buffers = output.buffers(rows)
        generated: list[list[int]] = [[] for _ in range(rows)]
        logprob = np.zeros(rows, np.float64)
        started = rows
        while generated:
            tokens, token_logprob = self._choose(output, histories, of_row, settings, rng, buffers)
            logprob += token_logprob
            restart = np.zeros(len(generated), dtype=bool)  # finished rows that begin a new sample
            keep = np.ones(len(generated), dtype=bool)  # rows that take another step
            for r, token in enumerate(tokens.tolist()):
                generated[r].append(token)
                if token == EOS_ID or len(generated[r]) >= settings.max_tokens:
                    yield self._finish(prefix, generated[r], float(logprob[r]), fill_rng)
                    if started < n:
                        started += 1
                        restart[r], generated[r], logprob[r] = True, [], 0.0
                    else:
                        keep[r] = False
            if not keep.all():  # compaction: the batch shrinks once no new samples are needed
                generated = [g for g, k in zip(generated, keep) if k]
                tokens, logprob, restart, of_row = tokens[keep], logprob[keep], restart[keep], of_row[keep]
            if not generated:
                return
            histories, of_row = self._advance(histories, of_row, tokens, restart, start)

    def _prime(self, prefix: str) -> _Histories:
        """Feed <bos> and the prefix through one row: the history every sample starts from."""
        ids = self.tokenizer.encode(prefix, bos=True) if prefix else [BOS_ID]
        state = self.stepper.start_state(1)
        for token in ids:
            x, state = self.stepper.advance(np.array([token]), state)
        # A prefix that ends in a word character: no piece is glued to it.
        return _Histories(x, state, np.array([bool(_WORD_CHAR.match(prefix[-1:]))]))

    def _advance(self, histories: _Histories, of_row: np.ndarray, tokens: np.ndarray, restart: np.ndarray,
                 start: _Histories) -> tuple[_Histories, np.ndarray]:
        """Each row's history after its token (B,), one LSTM step for each distinct (history, token); a restarted
        row goes back to `start`."""
        going = np.flatnonzero(~restart)
        key = of_row[going] * self.tokenizer.size + tokens[going]
        _, first, of_going = np.unique(key, return_index=True, return_inverse=True)
        parent, token = of_row[going[first]], tokens[going[first]]
        x, state = self.stepper.advance(token, [s[parent] for s in histories.state])
        ends_word = np.where(self.is_marker[token], histories.ends_word[parent], self.ends_word[token])
        after = _Histories(x, state, ends_word)
        of_row = np.empty(len(tokens), np.int64)
        of_row[going] = of_going
        if restart.any():  # a restarted row continues from the primed prefix, not from its last token
            of_row[restart] = len(x)
            after = _Histories(np.concatenate([x, start.x]), [np.concatenate(p) for p in zip(state, start.state)],
                               np.concatenate([ends_word, start.ends_word]))
        return after, of_row

    def _choose(self, output: OutputColumns, histories: _Histories, of_row: np.ndarray, settings: SamplingSettings,
                rng: np.random.Generator, buffers: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One token per row (B,), drawn from its history's distribution, and its log-probability under the model."""
        draws = rng.random(len(of_row))  # drawn here, in order, so a seed gives the same text however rows split
        logits, weights = output.logits(histories.x, histories.ends_word, buffers)  # (G, V'), (G, padded)
        blocks, log_normalizer = _weigh(logits, weights, settings)
        columns = pick(weights, blocks, of_row, draws)
        return output.token_ids[columns], logits[of_row, columns] - log_normalizer[of_row]

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


class OutputColumns:
    """The output layer with its columns reordered for the sampler: first the pieces that may follow a word, then
    those glued to a word (never drawn right after one), and no column at all for the tokens never drawn."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, *, never: np.ndarray, glued: np.ndarray) -> None:
        ordinary = np.setdiff1d(np.arange(len(bias)), np.concatenate([never, glued]))
        self.token_ids = np.concatenate([ordinary, np.setdiff1d(glued, never)])  # (V',) column -> token id
        self.glued_from = len(ordinary)  # the first glued column
        # (in + 1, V'): the bias is the last row, multiplied by a column of ones, so the product adds it.
        self.kernel = np.ascontiguousarray(np.concatenate([kernel[:, self.token_ids], bias[None, self.token_ids]]),
                                           dtype=np.float32)

    def buffers(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat float32 room for the logits and the weights of `rows` distributions, reused at every step."""
        columns = self.kernel.shape[1]
        return np.empty(rows * columns, np.float32), np.empty(rows * padded_width(columns), np.float32)

    def logits(self, x: np.ndarray, after_word: np.ndarray, buffers: tuple[np.ndarray, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
        """x (G, in) -> (logits (G, V'), room for their weights (G, padded)), both in `buffers`; after a word
        (after_word (G,)), the glued pieces' logits are -inf."""
        rows, columns = len(x), self.kernel.shape[1]
        inputs = np.empty((rows, x.shape[1] + 1), np.float32)
        inputs[:, :-1], inputs[:, -1] = x, 1
        logits = buffers[0][:rows * columns].reshape(rows, columns)
        np.matmul(inputs, self.kernel, out=logits)
        logits[after_word, self.glued_from:] = -np.inf
        return logits, buffers[1][:rows * padded_width(columns)].reshape(rows, -1)


class _Histories(NamedTuple):
    """The distinct token histories of the running rows: what the output layer reads next (G, H|E), the LSTM
    state [h0, c0, …] each (G, H), and whether the text so far ends in a word character (G,)."""

    x: np.ndarray
    state: list[np.ndarray]
    ends_word: np.ndarray


def _weigh(logits: np.ndarray, weights: np.ndarray, settings: SamplingSettings) -> tuple[np.ndarray, np.ndarray]:
    """token_draw.weigh, the distributions split across threads when many (numpy releases the GIL in its loops)."""
    options = {"temperature": settings.temperature, "top_k": settings.top_k, "top_p": settings.top_p}
    if len(logits) < PARALLEL_ROWS or SAMPLING_THREADS < 2:
        return weigh(logits, weights, **options)
    bounds = np.linspace(0, len(logits), SAMPLING_THREADS + 1).astype(int)
    parts = list(_pool().map(lambda ab: weigh(logits[ab[0]:ab[1]], weights[ab[0]:ab[1]], **options),
                             zip(bounds[:-1], bounds[1:])))
    return np.concatenate([b for b, _ in parts]), np.concatenate([n for _, n in parts])


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Threads for the per-row work: numpy releases the GIL in its loops over large arrays."""
    return ThreadPoolExecutor(max_workers=SAMPLING_THREADS, thread_name_prefix="nnbot-sampler")


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
