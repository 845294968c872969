"""`bot demo`: the whole job on the bundled corpus, with a summary."""

from __future__ import annotations

import time

from bot.cli import app
from bot.cli.options import JSON

SHOW_ACCEPTED = 15  # accepted titles the demo prints


@app.command()
def demo(json_: JSON = False) -> None:
    """Run the whole job offline on a bundled corpus of Hacker News titles, leaving candidates to review."""
    from bot.cli import context, output
    from bot.cli.progress import TrainingDisplay
    from bot.demo import run_demo

    started = time.monotonic()

    def stage(text: str) -> None:
        output.errors.print(f"» {text}", markup=False)

    with TrainingDisplay() as display:
        result = run_demo(context.store(), context.settings(), reporter=display, on_stage=stage)
    seconds = time.monotonic() - started
    t = result.training
    if json_:
        output.print_json({
            "documents": result.documents, "words": result.words, "training_seconds": round(t.seconds, 1),
            "valid_perplexity": t.best.valid_perplexity, "best_epoch": t.best_epoch, "sampled": result.sampled,
            "rejections": result.rejections, "accepted": result.accepted, "pending": result.pending,
            "seconds": round(seconds, 1)})
        return
    rejected = ", ".join(f"{name} {count}" for name, count in result.rejections.items())
    lines = [
        "",
        f"Corpus:     {result.documents:,} titles, {result.words:,} words (corpus 'demo')",
        f"Training:   {t.seconds:.0f}s, {len(t.epochs)} epochs, held-out perplexity {t.best.valid_perplexity:.1f} "
        f"(epoch {t.best_epoch}; {t.vocab_size:,}-word vocabulary)",
        f"Sampled:    {result.sampled} candidates; {len(result.accepted)} accepted",
        f"Rejected:   {rejected}",
        f"Queue:      {result.pending} pending for bot 'demo' (review with `bot queue list --bot demo`)",
        f"Total time: {seconds:.0f}s",
        "",
        "Accepted titles:",
    ]
    lines += [f"  {text}" for text in result.accepted[:SHOW_ACCEPTED]]
    if len(result.accepted) > SHOW_ACCEPTED:
        lines.append(f"  … and {len(result.accepted) - SHOW_ACCEPTED} more")
    output.console.print("\n".join(lines), markup=False)
