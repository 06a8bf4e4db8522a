"""Which evaluations of a training's history a run logs as curve points: the one rule.

Every writer (the train command's live buffer, `log_training`, a search trial's child run) and
`reproduce`, which compares a rerun at the points the run logged, ask `CurvePoints`. A run
keeps every `stride`-th evaluation of its learning curves (at most ~`max_points` whatever the
epochs), the last one, and for a training run the best one; the diagnostic series (gradient
norms, hidden activations) keep every `diagnostic_stride`-th (a multiple of `stride`, so
their points fall on evaluations the learning curves keep too), the last and the best. A
search trial also keeps the evaluations it reported to Optuna (the pruner's evidence), known
only when it ends. Core module: no mlflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

MAX_CURVE_POINTS = 1000  # per curve: a plot of more points shows nothing more, and costs
# The diagnostic series (gradients/, hidden/: 14 of the default network's 20) at most ~100
# points each: 4000 -> 2600 points for a default run, whose writes were its costliest step
# after MLflow's own (0.95 of 13 s, load 4; SQLite inserts cost per point). A chart of 100
# points of a gradient norm shows what 200 show; `reproduce` compares only learning curves.
MAX_DIAGNOSTIC_POINTS = 100
# A trial's curves: 1000 points were 1.29 of a default trial's 1.36 s of MLflow writes
# (cProfile, load 8); 100 show what 200 show.
TRIAL_CURVE_POINTS = 100
DIAGNOSTIC = ("grad_norm_", "act_")  # history keys of the diagnostic series


def curve_stride(epochs: int, eval_every: int, max_points: int = MAX_CURVE_POINTS) -> int:
    """Every k-th evaluation so a curve holds at most ~max_points points (plus the last and
    the best) whatever the epochs. k = 1 at `eval_every: auto`."""
    evaluations = -(-epochs // eval_every)
    return max(1, -(-evaluations // max_points))


def is_diagnostic(key: str) -> bool:
    return key.startswith(DIAGNOSTIC)


@dataclass(frozen=True)
class CurvePoints:
    stride: int = 1              # learning curves: every stride-th evaluation
    diagnostic_stride: int = 1   # diagnostic series: a multiple of `stride`
    keep_best: bool = True       # a training run keeps its best evaluation; a trial does not

    @classmethod
    def of_training(cls, settings) -> CurvePoints:
        """A training run's (train, evaluate, a lesson arm): `settings` a `TrainSettings`."""
        stride = curve_stride(settings.epochs, settings.eval_every)
        wanted = curve_stride(settings.epochs, settings.eval_every, MAX_DIAGNOSTIC_POINTS)
        return cls(stride, stride * -(-wanted // stride))

    @classmethod
    def of_trial(cls, settings) -> CurvePoints:
        """A search trial's child run: its learning curves only, without the best."""
        stride = curve_stride(settings.epochs, settings.eval_every, TRIAL_CURVE_POINTS)
        return cls(stride, stride, keep_best=False)

    def on_stride(self, i: int, *, diagnostic: bool = False) -> bool:
        """Is the i-th evaluation (from 0) kept by the stride? What a live writer asks as each
        evaluation arrives; `kept` adds the last and the best once training has ended."""
        return i % self._step(diagnostic) == 0

    def _step(self, diagnostic: bool) -> int:
        return self.diagnostic_stride if diagnostic else self.stride

    def kept(self, epochs: Sequence[int], best_epoch: int | None = None, *,
             diagnostic: bool = False, also: Iterable[int] = ()) -> list[int]:
        """Indices into `epochs` (a history's "epoch" list, as far as it goes) of the kept
        evaluations: on the stride, the last, the best (`keep_best`), and those at `also`."""
        n = len(epochs)
        keep = set(range(0, n, self._step(diagnostic)))  # the indices `on_stride` accepts
        if n:
            keep.add(n - 1)
        if self.keep_best and best_epoch in epochs:
            keep.add(list(epochs).index(best_epoch))
        extra = set(also)
        if extra:
            keep |= {i for i, e in enumerate(epochs) if e in extra}
        return sorted(keep)
