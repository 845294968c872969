"""The reader's score (models.scoring): a real title reads as more plausible than its words shuffled."""

from __future__ import annotations

import numpy as np

from models.scoring import Scorer


def test_real_titles_score_higher_than_their_words_shuffled(tiny_model, titles: list[str]) -> None:
    scorer = Scorer(tiny_model.config, tiny_model.tokenizer, tiny_model.weights)
    rng = np.random.default_rng(0)
    real = [t for t in titles[:200] if len(t.split()) >= 5]
    shuffled = [" ".join(rng.permutation(t.split())) for t in real]
    real_scores, shuffled_scores = scorer.score(real).mean, scorer.score(shuffled).mean
    assert real_scores.mean() > shuffled_scores.mean() + 0.1
    assert (real_scores > shuffled_scores).mean() > 0.75


def test_a_word_the_model_never_saw_costs_more_than_a_rare_one_it_knows(tiny_model) -> None:
    tokenizer = tiny_model.tokenizer
    known_rare = next(p[1:] for p, _ in tokenizer.rare["<unk:word>"] if p[1:].isalpha() and p[1:].islower())
    scorer = Scorer(tiny_model.config, tokenizer, tiny_model.weights)
    scores = scorer.score([f"A story about {known_rare} today", "A story about zqxjvbw today"])
    assert scores.outside.tolist() == [1, 1] and scores.unseen.tolist() == [0, 1]
    assert scores.pieces.tolist() == [6, 6]  # " A", " story", " about", the word, " today", <eos>
    assert scores.mean[0] > scores.mean[1]
