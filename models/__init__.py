"""The word-level language model: tokenizer, network, trainer, sampler, and the model directory."""
