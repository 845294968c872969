"""The numpy sampler: the same network as Keras, batched and stateful, seedable, never <unk>."""

import dataclasses

import numpy as np
import pytest

from models.config import ModelConfig, preset
from models.errors import ModelError
from models.sampler import NEVER_SAMPLED, LSTMStepper, Sampler, SamplingSettings
from models.tokenizer import BOS_ID, EOS_ID, UNK_ID, Tokenizer

WORDS = "the a cat dog sat ran on under mat log quickly slowly".split()


def random_weights(config: ModelConfig, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    from models.config import weight_shapes

    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.5, size=s).astype(np.float32) for k, s in weight_shapes(config, vocab).items()}


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer.build([" ".join(WORDS)], min_count=1)


@pytest.mark.parametrize("config", [
    preset("tiny"),  # one layer, tied, no projection
    preset("tiny").replace(layers=2, hidden_dim=24, embedding_dim=16),  # tied with a projection
    preset("tiny").replace(layers=2, tied=False),
])
def test_numpy_step_matches_the_keras_network(config: ModelConfig, tokenizer: Tokenizer) -> None:
    from models import network

    model = network.build_network(config, tokenizer.size, batch_size=3, window=6)
    network.set_weights(model, random_weights(config, tokenizer.size))
    ids = np.random.default_rng(1).integers(0, tokenizer.size, size=(3, 6)).astype(np.int32)
    network.reset_states(model)
    expected = model.predict_on_batch(ids)  # (3, 6, V)
    stepper = LSTMStepper(config, network.get_weights(model))
    state = stepper.zero_state(3)
    for t in range(6):
        logits, state = stepper.step(ids[:, t], state)
        np.testing.assert_allclose(logits, expected[:, t], atol=1e-4)


def make_sampler(tokenizer: Tokenizer, **bias: float) -> Sampler:
    config = preset("tiny")
    weights = random_weights(config, tokenizer.size)
    for token_id, value in bias.items():
        weights["output/bias"][int(token_id.lstrip("_"))] = value
    return Sampler(config, tokenizer, weights)


def test_same_seed_same_samples_other_seed_other_samples(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer)
    first = sampler.sample(20, seed=7)
    assert first == sampler.sample(20, seed=7)
    assert [s.text for s in first] != [s.text for s in sampler.sample(20, seed=8)]


@pytest.mark.parametrize("settings", [SamplingSettings(), SamplingSettings(temperature=0.7, top_k=20, top_p=0.9)])
def test_rows_split_across_threads_give_the_same_samples(tokenizer: Tokenizer, settings: SamplingSettings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from models import sampler as module

    sampler = make_sampler(tokenizer)
    n = 200
    monkeypatch.setattr(module, "PARALLEL_ROWS", 2)  # the tiny vocabulary has few distinct histories at a step
    monkeypatch.setattr(module, "SAMPLING_THREADS", 1)
    alone = sampler.sample(n, settings, seed=5)
    monkeypatch.setattr(module, "SAMPLING_THREADS", 3)
    split = sampler.sample(n, settings, seed=5)
    assert len(split) == n and split == alone


def test_never_emits_unk_pad_or_bos_even_when_the_model_prefers_them(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer, **{f"_{UNK_ID}": 50.0, f"_{BOS_ID}": 40.0, f"_{EOS_ID}": 10.0})
    samples = sampler.sample(30, SamplingSettings(max_tokens=5), seed=0)
    assert all(not set(s.ids) & set(NEVER_SAMPLED) for s in samples)
    # With <unk> and <bos> masked, <eos> holds nearly all the mass: every sample ends at once, empty.
    assert {(s.text, s.tokens, s.complete) for s in samples} == {("", 1, True)}


def test_log_probability_is_the_models_probability_of_the_tokens(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer)
    for sample in sampler.sample(10, SamplingSettings(temperature=0.7, max_tokens=8), seed=3):
        state, total, token = sampler.stepper.zero_state(1), 0.0, BOS_ID
        for next_id in sample.ids:
            logits, state = sampler.stepper.step(np.array([token]), state)
            logits = logits[0].astype(np.float64)
            logits[list(NEVER_SAMPLED)] = -np.inf
            total += logits[next_id] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
            token = next_id
        assert sample.logprob == pytest.approx(total, abs=1e-3)


def greedy(sampler: Sampler, max_tokens: int) -> list[int]:
    state, token, out = sampler.stepper.zero_state(1), BOS_ID, []
    while len(out) < max_tokens:
        logits, state = sampler.stepper.step(np.array([token]), state)
        logits[0, list(NEVER_SAMPLED)] = -np.inf
        token = int(logits[0].argmax())
        out.append(token)
        if token == EOS_ID:
            break
    return out


@pytest.mark.parametrize("settings", [SamplingSettings(top_k=1, max_tokens=12),
                                      SamplingSettings(top_p=1e-6, max_tokens=12)])
def test_top_k_1_and_a_tiny_top_p_are_greedy(tokenizer: Tokenizer, settings: SamplingSettings) -> None:
    sampler = make_sampler(tokenizer)
    expected = greedy(sampler, 12)
    assert {s.ids for s in sampler.sample(5, settings, seed=1)} == {tuple(expected)}


def test_length_cap_marks_samples_unfinished(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer, **{f"_{EOS_ID}": -50.0})
    samples = sampler.sample(4, SamplingSettings(max_tokens=3), seed=0)
    assert [(s.tokens, s.complete) for s in samples] == [(3, False)] * 4


def test_prefix_starts_every_sample(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer)
    samples = sampler.sample(6, prefix="The cat", seed=0)
    assert all(s.text.startswith("The cat") for s in samples)


def test_a_sample_that_adds_nothing_to_the_prefix_says_so(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer, **{f"_{EOS_ID}": 50.0})  # <eos> at once, every time
    assert {(s.text, s.complete, s.empty) for s in sampler.sample(4, prefix="the cat", seed=0)} == {
        ("the cat", True, True)}
    assert {(s.text, s.empty) for s in sampler.sample(2, seed=0)} == {("", True)}
    kept = make_sampler(tokenizer, **{f"_{EOS_ID}": -50.0}).sample(4, SamplingSettings(max_tokens=3), prefix="the",
                                                                         seed=0)
    assert all(s.text.startswith("the ") and not s.empty for s in kept)


def test_more_samples_than_rows_refills_the_batch(tokenizer: Tokenizer) -> None:
    sampler = make_sampler(tokenizer)
    assert len(sampler.sample(50, SamplingSettings(max_tokens=6), seed=2, batch_size=8)) == 50
    # A refilled row restarts from <bos> (and the prefix): greedy, every one of 50 samples is the greedy text.
    samples = sampler.sample(50, SamplingSettings(top_k=1, max_tokens=12), prefix="the", seed=2, batch_size=8)
    assert {s.text for s in samples} == {sampler.sample(1, SamplingSettings(top_k=1, max_tokens=12),
                                                        prefix="the")[0].text}


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0}, "The temperature must be a finite number greater than 0 (try 0.5 to 1.0)."),
    ({"temperature": float("inf")}, "The temperature must be a finite number greater than 0 (try 0.5 to 1.0)."),
    ({"temperature": float("nan")}, "The temperature must be a finite number greater than 0 (try 0.5 to 1.0)."),
    ({"top_p": float("inf")}, "top-k must be 0 or more and top-p must be in (0, 1]."),
    ({"top_p": float("nan")}, "top-k must be 0 or more and top-p must be in (0, 1]."),
    ({"top_k": -1}, "top-k must be 0 or more and top-p must be in (0, 1]."),
    ({"top_p": 0}, "top-k must be 0 or more and top-p must be in (0, 1]."),
    ({"max_tokens": 0}, "The maximum length must be at least 1 token."),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ModelError) as error:
        SamplingSettings(**kwargs)
    assert str(error.value) == message


def test_rare_classes_are_filled_with_rare_training_words_and_empty_classes_never_drawn() -> None:
    docs = ["the cat sat", "the cat ran", "the Zebra sat", "the yak ran"]
    cased = Tokenizer.build(docs, min_count=2, case_markers=True, rare_classes=True)
    word, link = cased.piece_id("<unk:word>"), cased.piece_id("<unk:link>")
    # The model all but always writes <maj> <unk:word> or the empty <unk:link> class, then ends.
    sampler = make_sampler(cased, **{f"_{word}": 9.0, f"_{cased.piece_id('<maj>')}": 8.0, f"_{link}": 12.0,
                                     f"_{EOS_ID}": 7.0})
    samples = sampler.sample(200, SamplingSettings(max_tokens=3), seed=3)
    assert all(link not in s.ids for s in samples)
    maj = cased.piece_id("<maj>")
    capitalised = {s.text for s in samples if s.ids == (maj, word, EOS_ID)}
    plain = {s.text for s in samples if s.ids == (word, EOS_ID)}
    assert capitalised == {"Zebra", "Yak"}  # both drawn; a <maj> capitalises
    assert plain <= {"Zebra", "yak"}  # and without one, a word keeps the casing the text used ("Zebra" only)


def test_a_cased_prefix_is_kept_as_written_and_primes_the_model() -> None:
    cased = Tokenizer.build(["Show HN: the cat", "Show HN: a dog"], min_count=1, case_markers=True,
                            rare_classes=True)
    samples = make_sampler(cased).sample(20, SamplingSettings(max_tokens=4), prefix="Show HN: Quokka", seed=0)
    assert all(s.text.startswith("Show HN: Quokka") for s in samples)


def test_words_are_written_in_a_casing_the_training_text_used() -> None:
    docs = ["The CEO of NASA said no", "Our new ceo plan", "Selling my bike", "we are selling it", "A CEO quits",
            "NASA and the moon"]
    tokenizer = Tokenizer.build(docs, min_count=1, case_markers=True, rare_classes=True)
    maj, up = tokenizer.piece_id("<maj>"), tokenizer.piece_id("<up>")
    nasa, selling, ceo = tokenizer.piece_id(" nasa"), tokenizer.piece_id(" selling"), tokenizer.piece_id(" ceo")
    # as the sampler writes them: "nasa" with no marker, "Nasa", "SELLING", "Ceo"
    written = tokenizer.decode_pieces([nasa, maj, nasa, up, selling, maj, ceo], true_case=True)
    assert written == " NASA NASA Selling CEO"  # acronyms stay acronyms; a word never shouted is not
    assert tokenizer.decode_pieces([ceo], true_case=True) == " ceo"  # seen lower case too: kept
    assert tokenizer.decode_pieces([nasa, up, selling]) == " nasa SELLING"  # encoded text decodes as it was
    for doc in docs + ["SELLING nasa Ceo"]:
        assert tokenizer.decode(tokenizer.encode(doc)) == doc
    again = Tokenizer.from_json(tokenizer.to_json())
    assert again.forms == tokenizer.forms and again.first_upper == tokenizer.first_upper == round(5 / 6, 4)


def test_samples_never_glue_a_word_to_the_word_before_it() -> None:
    tokenizer = Tokenizer.build(['say "wow" with it', "with it", 'say "it"'], min_count=2, case_markers=True,
                                rare_classes=True)
    glue = tokenizer.piece_id("<unk:^word>")  # "wow", after a quote mark: a word with no space before it
    assert tokenizer.rare["<unk:^word>"] == (("wow", 1), ("it", 1))
    with_ = tokenizer.piece_id(" with")
    # A model that, after " with", all but always writes a word with no space before it.
    sampler = make_sampler(tokenizer, **{f"_{with_}": 5.0, f"_{glue}": 9.0, f"_{EOS_ID}": 4.0})
    samples = sampler.sample(100, SamplingSettings(max_tokens=4), seed=0)
    for s in samples:
        pairs = list(zip(s.ids, s.ids[1:]))
        assert (with_, glue) not in pairs, s.text
    assert any(s.ids and s.ids[0] == glue for s in samples)  # at the start nothing precedes it: allowed there


def glued_tokenizer() -> Tokenizer:
    """Pieces that follow a word (" say"), pieces glued to what precedes them ("wow" after a quote), a marker."""
    docs = ['say "wow" to "it" now', 'We say "it" and "wow"', "now say it to me", '"Wow" we say']
    return Tokenizer.build(docs, min_count=1, case_markers=True)


def exact_pairs(sampler: Sampler, settings: SamplingSettings, prefix: str) -> dict[tuple[int, ...], float]:
    """The model's probability of each first token, and of each first two, as the sampler should draw them: never
    <pad>, <unk> or <bos>; after a word (the prefix's last, or a piece ending in one, case markers aside), no piece
    glued to it; temperature, top-k, top-p."""
    from tests.models.frequencies import exact_probabilities

    def distribution(logits: np.ndarray, after_word: bool) -> np.ndarray:
        logits = logits[0].astype(np.float64)
        logits[list(NEVER_SAMPLED)] = -np.inf
        if after_word and len(sampler.glued):
            logits[sampler.glued] = -np.inf
        return exact_probabilities(logits, settings.temperature, settings.top_k, settings.top_p)

    state = sampler.stepper.zero_state(1)
    for token in sampler.tokenizer.encode(prefix, bos=True) if prefix else [BOS_ID]:
        logits, state = sampler.stepper.step(np.array([token]), state)
    prefix_ends_word = prefix[-1:].isalnum()
    pairs: dict[tuple[int, ...], float] = {}
    for first, p in enumerate(distribution(logits, prefix_ends_word)):
        if p == 0 or first == EOS_ID:
            pairs[(first,)] = p
            continue
        after_word = prefix_ends_word if sampler.is_marker[first] else bool(sampler.ends_word[first])
        following, _ = sampler.stepper.step(np.array([first]), state)
        for second, q in enumerate(distribution(following, after_word)):
            pairs[(first, second)] = p * q
    return pairs


@pytest.mark.parametrize("settings", [SamplingSettings(max_tokens=2),
                                      SamplingSettings(temperature=0.8, top_k=12, top_p=0.9, max_tokens=2)])
@pytest.mark.parametrize("parallel, prefix", [(10**9, ""), (2, ""), (10**9, "We say"), (2, "We say")])
def test_first_two_tokens_follow_the_models_exact_distribution(settings: SamplingSettings, parallel: int, prefix: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows share their first distribution and, when their first tokens agree, their second; all the same, each
    pair of tokens comes as often as the model says, on threads or not."""
    from models import sampler as module
    from tests.models.frequencies import chi_square, far_too_large

    monkeypatch.setattr(module, "PARALLEL_ROWS", parallel)
    tokenizer = glued_tokenizer()
    sampler = make_sampler(tokenizer)
    assert len(sampler.glued) and sampler.is_marker.any()
    pairs = exact_pairs(sampler, settings, prefix)
    index = {pair: i for i, pair in enumerate(pairs)}
    counts = np.zeros(len(pairs))
    for sample in sampler.sample(40_000, settings, prefix=prefix, seed=9):
        counts[index[sample.ids]] += 1  # a pair outside the model's support fails here
    probabilities = np.array(list(pairs.values()))
    assert not counts[probabilities == 0].any()
    statistic, df = chi_square(counts, probabilities)
    assert not far_too_large(statistic, df), (statistic, df)


def test_without_rare_words_no_word_class_is_drawn(tiny_model) -> None:
    from models.tokenizer import WORD_CLASSES

    tokenizer = tiny_model.tokenizer
    words = {i for i in range(tokenizer.size) if tokenizer.pieces[i] in WORD_CLASSES}
    assert words and all(tokenizer.fill_count(i) for i in words)  # drawable classes, each with words to fill
    sampler = tiny_model.sampler()
    settings = SamplingSettings(temperature=3.0, rare_words=True)  # flat: every class gets its chance
    drawn = {i for s in sampler.sample(300, settings, seed=0) for i in s.ids}
    assert drawn & words  # they are drawn when allowed...
    kept = sampler.sample(300, dataclasses.replace(settings, rare_words=False), seed=0)
    assert not {i for s in kept for i in s.ids} & words  # ...and never without rare words
    assert all(np.isfinite(s.logprob) for s in kept)
