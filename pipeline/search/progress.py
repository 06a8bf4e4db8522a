"""What a search prints while and after it runs: the progress bar and the top-trials table."""

from __future__ import annotations

import sys
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from pipeline.search.study import best_in, count, count_in


def top_table(study: optuna.Study, top: int, key: str) -> str:
    """The `top` best COMPLETE trials, one line each, plus the count of every state."""
    done = sorted((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
                  key=lambda t: t.value)[:top]
    states = {s.name: count(study, (s,)) for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                                  TrialState.FAIL)}
    lines = [f"top {len(done)} trials of study {study.study_name} by {key} "
             f"({', '.join(f'{k.lower()} {v}' for k, v in states.items())})",
             f"{'trial':>5}  {key:>9}  {'epochs':>6}  params"]
    for t in done:
        params = "  ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        lines.append(f"{t.number:>5}  {t.value:>9.4f}  {t.user_attrs.get('epochs_run', '?'):>6}"
                     f"  {params}")
    return "\n".join(lines)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class Progress:
    """A tqdm bar over finished trials (stderr) and one line whenever the best value improves."""

    def __init__(self, study: optuna.Study, target: int, key: str, enabled: bool = True):
        self.study, self.key = study, key
        self.best: float | None = None
        trials = study.get_trials(deepcopy=False)
        self.bar = tqdm(total=target, initial=min(count_in(trials), target), desc="trials",
                        unit="trial", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
        self.enabled = enabled
        self.poll(trials)

    def poll(self, trials: list[optuna.trial.FrozenTrial] | None = None) -> None:
        """`trials`: the caller's `study.get_trials(deepcopy=False)` just read (else one read
        here): a worker polls every second while it waits, and every read is a file read."""
        if trials is None:
            trials = self.study.get_trials(deepcopy=False)
        done = count_in(trials)
        self.bar.update(max(0, min(done, self.bar.total) - self.bar.n))
        best = best_in(trials)
        if best is not None and (self.best is None or best.value < self.best):
            self.best = best.value
            params = ", ".join(f"{k}={_short(v)}" for k, v in best.params.items())
            if self.enabled:
                self.bar.write(f"trial {best.number}: best {self.key} {best.value:.4f} ({params})",
                               file=sys.stderr)

    def close(self) -> None:
        self.poll()
        self.bar.close()
