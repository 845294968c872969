"""A rich progress display for training: a bar per epoch, a line per finished epoch, samples now and then."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bot.cli.output import errors
from models.trainer import EpochResult


class TrainingDisplay:
    """Implements models.trainer.TrainingReporter; everything goes to stderr, so --json output stays clean."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=errors, transient=True,
                                 disable=not errors.is_terminal)  # bars only on a terminal
        self.task: int | None = None

    def __enter__(self) -> TrainingDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def note(self, text: str) -> None:
        """A line about the run that is not an epoch: which preset `auto` chose, the plan for the time limit."""
        self._print(text)

    def on_start(self, *, epochs: int, batches: int, train_tokens: int, valid_tokens: int, parameters: int,
                 first_epoch: int) -> None:
        resumed = f", resuming at epoch {first_epoch}" if first_epoch > 1 else ""
        self._print(f"Training {parameters:,} parameters on {train_tokens:,} tokens "
                    f"({valid_tokens:,} held out), up to {epochs} epochs{resumed}.")

    def on_batch(self, *, epoch: int, batch: int, batches: int, loss: float) -> None:
        if self.task is None:
            self.task = self.progress.add_task(f"epoch {epoch}", total=batches, loss=loss)
        self.progress.update(self.task, description=f"epoch {epoch}", completed=batch, total=batches, loss=loss)

    def on_epoch(self, result: EpochResult, *, best: bool) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        partial = " (cut short by the time limit)" if result.partial else ""
        train = "train perplexity (sampled estimate)" if result.sampled else "train perplexity"
        self._print(f"epoch {result.epoch:>3}: {train} {result.train_perplexity:8.1f}  "
                    f"valid perplexity {result.valid_perplexity:8.1f}  {result.seconds:5.1f}s"
                    f"{'  best so far' if best else ''}{partial}")

    def on_samples(self, epoch: int, samples: dict[float, list[str]]) -> None:
        for temperature, texts in samples.items():
            for text in texts:
                self._print(f"    T={temperature:g}: {text}")

    def on_stop(self, reason: str) -> None:
        self._print(f"Stopped: {reason}.")
