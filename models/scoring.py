"""A reader's verdict on texts: how likely a model finds each, per piece of text (issue 28's plausibility score).

A text's score is its mean log-probability per piece (`tokenizer.split`'s pieces, plus the end of the text), fed from
the model's document start state (models.start_state; zero for models without one) after <bos>: per piece rather
than per token, so models with and without case markers compare (a marker's cost is added to its word's). A
rare-word class is charged its fill as well, -log(count / class total), when the word is one of the class's
fillers; a word the model has never seen is charged its class and the fill of a word seen once
(-log(1 / (class total + 1))), so an invented word costs more than a known rare one.

Scored by a model other than the one that wrote them (the base model), the texts are judged by a reader that did not
choose them: the bot's own model rates its own habits highly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.config import ModelConfig
from models.sampler import LSTMStepper
from models.tokenizer import BOS_ID, PAD_ID, SPECIALS, Tokenizer, fold_case, split

BATCH = 256  # texts stepped together


@dataclass(frozen=True)
class Scores:
    """Per text: the log-probability of its tokens, the fill cost of its rare words, and its pieces."""

    token_logprob: np.ndarray  # (N,) natural log, summed over the text's tokens and <eos>
    fill_logprob: np.ndarray  # (N,) summed over its rare words that are the classes' fillers (0 where none)
    unseen_logprob: np.ndarray  # (N,) summed over its words no class can write: each as if seen once
    tokens: np.ndarray  # (N,) tokens, <eos> included
    pieces: np.ndarray  # (N,) pieces, <eos> included
    outside: np.ndarray  # (N,) pieces outside the vocabulary
    unseen: np.ndarray  # (N,) pieces outside the vocabulary that no class can write either

    @property
    def mean(self) -> np.ndarray:
        """(N,) mean log-probability per piece: the plausibility score."""
        return (self.token_logprob + self.fill_logprob + self.unseen_logprob) / np.maximum(self.pieces, 1)


class Scorer:
    def __init__(self, config: ModelConfig, tokenizer: Tokenizer, weights: dict[str, np.ndarray]) -> None:
        self.tokenizer = tokenizer
        self.stepper = LSTMStepper(config, weights)
        self._fill: dict[int, tuple[dict[str, float], float]] = {}  # class id -> (piece -> cost, unseen cost)
        for token in range(tokenizer.size):
            if tokenizer.is_rare_class(token):
                entries = (tokenizer.rare or {})[tokenizer.pieces[token]]
                total = sum(c for _, c in entries)
                self._fill[token] = ({p: math.log(c / total) for p, c in entries}, -math.log(total + 1))

    def score(self, texts: Sequence[str]) -> Scores:
        n = len(texts)
        fill, unseen_cost = np.zeros(n), np.zeros(n)
        pieces, outside, unseen = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        for i, text in enumerate(texts):
            stored = [fold_case(p)[1] if self.tokenizer.cased else p for p in split(text)]
            pieces[i] = len(stored) + 1  # + <eos>
            for piece in stored:
                token = self.tokenizer.piece_id(piece)
                if token >= len(SPECIALS) and not self.tokenizer.is_rare_class(token):
                    continue
                outside[i] += 1
                known, once = self._fill.get(token, ({}, 0.0))
                if piece in known:
                    fill[i] += known[piece]
                else:
                    unseen[i] += 1
                    unseen_cost[i] += once
        docs = [self.tokenizer.encode(t, eos=True) for t in texts]
        return Scores(self._token_logprob(docs), fill, unseen_cost, np.array([len(d) for d in docs]), pieces,
                      outside, unseen)

    def _token_logprob(self, docs: list[list[int]]) -> np.ndarray:
        total = np.zeros(len(docs))
        for start in range(0, len(docs), BATCH):
            batch = docs[start:start + BATCH]
            width = max(len(d) for d in batch)
            targets = np.full((len(batch), width), PAD_ID, dtype=np.int64)  # (B, T)
            mask = np.zeros((len(batch), width), dtype=bool)
            for row, d in enumerate(batch):
                targets[row, :len(d)], mask[row, :len(d)] = d, True
            inputs = np.concatenate([np.full((len(batch), 1), BOS_ID), targets[:, :-1]], axis=1)  # (B, T)
            state = self.stepper.start_state(len(batch))
            for t in range(width):
                logits, state = self.stepper.step(inputs[:, t], state)  # (B, V)
                logits = logits.astype(np.float64)
                top = logits.max(axis=1, keepdims=True)
                log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
                logprob = logits[np.arange(len(batch)), targets[:, t]] - log_z  # (B,)
                total[start:start + len(batch)] += np.where(mask[:, t], logprob, 0.0)
        return total
