"""Drawing the next token: its frequencies are the exact distribution; top-k and top-p keep exactly their set."""

import numpy as np
import pytest

from models.token_draw import SUM_BLOCK, draw_tokens, padded_width, pick, weigh
from tests.models.frequencies import chi_square, exact_probabilities, far_too_large

DRAWS = 200_000  # per distribution: a probability of 1 % is then counted to within about 2 %
CHUNK = 20_000  # draws picked at a time, to bound the (draws, SUM_BLOCK) float64 work space


def drawn_counts(logits: np.ndarray, seed: int, **settings: float) -> np.ndarray:
    """How often each column is drawn in DRAWS draws from one row, all sharing one weighed distribution."""
    shifted = logits[None].copy()
    weights = np.empty((1, padded_width(len(logits))), np.float32)
    blocks, _ = weigh(shifted, weights, temperature=settings.get("temperature", 1.0),
                      top_k=int(settings.get("top_k", 0)), top_p=settings.get("top_p", 1.0))
    rng = np.random.default_rng(seed)
    columns = np.concatenate([pick(weights, blocks, np.zeros(CHUNK, np.int64), rng.random(CHUNK))
                              for _ in range(DRAWS // CHUNK)])
    return np.bincount(columns, minlength=len(logits))


@pytest.fixture
def logits() -> np.ndarray:
    """A 700-token row (six blocks): a few likely tokens, a long tail, some never drawn (-inf), a few exact ties."""
    rng = np.random.default_rng(11)
    row = rng.normal(0, 2.0, 700).astype(np.float32)
    row[:5] += 4
    row[[17, 300, 650]] = -np.inf
    row[[40, 41, 42]] = row[40]
    return row


@pytest.mark.parametrize("settings", [{}, {"temperature": 0.7}, {"temperature": 1.6}, {"top_k": 40},
                                      {"top_p": 0.9}, {"top_p": 0.5, "temperature": 0.8},
                                      {"top_k": 200, "top_p": 0.95, "temperature": 1.2}, {"top_k": 1}])
def test_draws_follow_the_exact_distribution(logits: np.ndarray, settings: dict) -> None:
    probabilities = exact_probabilities(logits, **settings)
    counts = drawn_counts(logits, seed=3, **settings)
    assert not counts[probabilities == 0].any()  # never a token outside the allowed set
    statistic, df = chi_square(counts, probabilities)
    assert not far_too_large(statistic, df), (statistic, df)


def test_the_frequency_check_tells_a_nearby_distribution_apart(logits: np.ndarray) -> None:
    counts = drawn_counts(logits, seed=3, temperature=0.7)
    assert far_too_large(*chi_square(counts, exact_probabilities(logits, temperature=0.75)))
    counts = drawn_counts(logits, seed=3, top_p=0.9)
    assert far_too_large(*chi_square(counts, exact_probabilities(logits, top_p=0.85)))


@pytest.mark.parametrize("scale, ties", [(0.3, False), (2.0, False), (8.0, False), (2.0, True)])
def test_top_k_and_top_p_keep_exactly_the_plain_algorithms_tokens(scale: float, ties: bool) -> None:
    rng = np.random.default_rng(5)
    rows = rng.normal(0, scale, (40, 3000)).astype(np.float32)
    if ties:
        rows = np.round(rows)  # many equal logits, so cuts fall on ties
    rows[:, rng.integers(0, 3000, 500)] = -np.inf
    for top_k, top_p in [(1, 1.0), (7, 1.0), (2999, 1.0), (0, 1e-6), (0, 0.3), (0, 0.95), (50, 0.8)]:
        weights = np.empty((len(rows), padded_width(rows.shape[1])), np.float32)
        weigh(rows.copy(), weights, temperature=1.0, top_k=top_k, top_p=top_p)
        kept = weights[:, :rows.shape[1]] > 0
        expected = np.array([exact_probabilities(row, top_k=top_k, top_p=top_p) > 0 for row in rows])
        assert (kept == expected).all(), (top_k, top_p)
        assert not weights[:, rows.shape[1]:].any()  # the padding weighs nothing


def test_each_draw_lands_where_the_plain_inverse_cdf_does() -> None:
    rng = np.random.default_rng(2)
    rows = rng.normal(0, 3, (300, 1000)).astype(np.float32)
    draws = rng.random(300)
    columns, logprob = draw_tokens(rows.copy(), draws)
    weights = np.exp(rows.astype(np.float64) - rows.max(axis=1, keepdims=True))
    running = np.cumsum(weights, axis=1)
    expected = [np.searchsorted(r, d * r[-1], side="right") for r, d in zip(running, draws)]
    assert columns.tolist() == expected
    log_softmax = np.log(weights / weights.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(logprob, log_softmax[np.arange(300), columns], atol=1e-5)


def test_the_log_probability_is_the_models_whatever_the_temperature_and_cuts() -> None:
    rows = np.random.default_rng(4).normal(0, 2, (50, 2 * SUM_BLOCK + 3)).astype(np.float32)
    columns, logprob = draw_tokens(rows.copy(), np.random.default_rng(5).random(50), temperature=0.6, top_k=30,
                                   top_p=0.8)
    log_softmax = rows - rows.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax.astype(np.float64)).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(logprob, log_softmax[np.arange(50), columns], atol=1e-5)
