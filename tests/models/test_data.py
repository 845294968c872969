"""Packing token streams into windows for stateful training with a loss at every position."""

import numpy as np

from models.data import make_windows, shuffle_documents, split_documents

BOS, EOS, PAD = 2, 3, 0


def test_windows_continue_each_row_across_batches_and_weigh_out_bos_and_padding() -> None:
    stream = np.array([2, 10, 11, 3, 2, 12, 3, 2, 13, 14, 15, 3], dtype=np.int32)
    w = make_windows(stream, batch=2, window=3)
    # Row 0 holds tokens 0-5, row 1 tokens 6-10; batch k+1's row j continues batch k's row j.
    assert w.inputs.tolist() == [[2, 10, 11], [3, 2, 13], [3, 2, 12], [14, 15, PAD]]
    assert w.targets.tolist() == [[10, 11, 3], [2, 13, 14], [2, 12, 3], [15, 3, PAD]]
    assert w.weights.tolist() == [[1, 1, 1], [0, 1, 1], [0, 1, 1], [1, 1, 0]]
    assert (w.batches, w.tokens) == (2, 9)  # 11 targets, 2 of them <bos>


def test_every_target_is_the_next_token() -> None:
    rng = np.random.default_rng(0)
    stream = rng.integers(4, 50, size=1000).astype(np.int32)
    w = make_windows(stream, batch=7, window=13)
    counted = w.weights.astype(bool)
    assert w.tokens == len(stream) - 1
    pairs = sorted(zip(w.inputs[counted].tolist(), w.targets[counted].tolist()))
    assert pairs == sorted(zip(stream[:-1].tolist(), stream[1:].tolist()))


def test_shuffle_keeps_every_document_whole() -> None:
    stream = np.array([2, 10, 3, 2, 11, 12, 3, 2, 13, 14, 15, 3, 2, 16, 3, 2, 17, 18, 3], dtype=np.int32)
    shuffled = shuffle_documents(stream, np.random.default_rng(0))

    def documents(s: np.ndarray) -> list[tuple[int, ...]]:
        return sorted(tuple(d) for d in np.split(s, np.flatnonzero(s == BOS)[1:]))

    assert documents(shuffled) == documents(stream)
    assert shuffled.tolist() != stream.tolist()


def test_split_is_by_document_and_seeded() -> None:
    train, valid = split_documents(100, valid_fraction=0.1, seed=3)
    assert len(valid) == 10 and len(train) == 90
    assert sorted(train.tolist() + valid.tolist()) == list(range(100))
    assert split_documents(100, valid_fraction=0.1, seed=3)[1].tolist() == valid.tolist()
    assert len(split_documents(10, valid_fraction=0.01, seed=0)[1]) == 1  # at least one held out


def test_training_windows_are_whole_and_unpadded() -> None:
    stream = np.arange(4, 4 + 23, dtype=np.int32)  # 22 targets: 2 rows of 2 whole windows of 4; 6 left over
    w = make_windows(stream, batch=2, window=4, pad=False)
    assert w.inputs.tolist() == [[4, 5, 6, 7], [12, 13, 14, 15], [8, 9, 10, 11], [16, 17, 18, 19]]
    assert w.targets.tolist() == [[5, 6, 7, 8], [13, 14, 15, 16], [9, 10, 11, 12], [17, 18, 19, 20]]
    assert (w.batches, w.tokens) == (2, 16)
