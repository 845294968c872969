"""The state a document starts from.

Training runs the LSTM over the token stream `<bos> d1 <eos> <bos> d2 <eos> …` in windows whose state carries on
from the window before (models.data), so after its first window the network never meets a document's `<bos>` with a
zero state: it meets the state the previous document left. Sampling and scoring each text from a zero state put the
network where it never trained, and it shows: the base model after 10 shards, sampled from zero at T 1 / top-p 0.95,
ended 4 % of its texts at once (empty) and wrote titles of 8.7 words on average against its corpus's 10.3; from the
mean state at its validation titles' `<bos>`, none empty and 10.7 words.

`document_start_state` is that mean state: the network is stepped over (a part of) a token stream in a few parallel
rows, the state at each `<bos>` after a short warm-up is collected, and their mean is stored beside the weights
(models.config.start_state_shapes). The sampler and the scorer start every text from it where a model has one.
"""

from __future__ import annotations

import numpy as np

from models.config import ModelConfig, start_state_shapes
from models.sampler import LSTMStepper
from models.tokenizer import BOS_ID

ROWS = 16  # parallel rows the stream is cut into
MAX_TOKENS = 32_000  # of the stream, at most: a few thousand documents' starts are plenty for a mean
WARM_UP = 40  # steps per row before states are collected: the first ones start from zero


def document_start_state(config: ModelConfig, weights: dict[str, np.ndarray], stream: np.ndarray
                         ) -> dict[str, np.ndarray]:
    """{start/h_0: (H,), start/c_0: …}: the mean state at the `<bos>` tokens of `stream` with the state carried as
    in training; empty where the stream has no `<bos>` past the warm-up (then texts start from zero)."""
    stream = np.asarray(stream[:MAX_TOKENS])
    rows = max(1, min(ROWS, len(stream) // (4 * WARM_UP)))
    length = len(stream) // rows
    if length < 2:
        return {}
    grid = stream[:rows * length].reshape(rows, length)
    warm_up = max(1, min(WARM_UP, length // 4))  # the state at step 0 is the zero one: never collected
    stepper = LSTMStepper(config, weights)
    state = stepper.zero_state(rows)
    sums = [np.zeros(config.hidden_dim, np.float64) for _ in state]
    count = 0
    for t in range(length):
        at_start = grid[:, t] == BOS_ID
        if t >= warm_up and at_start.any():
            for total, part in zip(sums, state):
                total += part[at_start].sum(axis=0)
            count += int(at_start.sum())
        _, state = stepper.advance(grid[:, t], state)  # the state only: no output layer
    if not count:
        return {}
    names = start_state_shapes(config)  # h_0, c_0, h_1, …: the stepper's state order
    return {name: (total / count).astype(np.float32) for name, total in zip(names, sums)}
