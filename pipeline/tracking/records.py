"""What a run records: params, tags (git, versions, digests, diagnosis), curves, figures, inputs.

Every metric goes through `MlflowClient.log_batch` (<= 1000 per call): one synchronous
`log_metric` costs ~7 ms on SQLite, a batch of 1000 ~70 ms in all (docs/tracking.md).
"""

from __future__ import annotations

import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Mapping

import mlflow
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from pipeline.curve_points import CurvePoints, is_diagnostic
from pipeline.data.digest import short_digest
from pipeline.redact import recorded

# No chunking here: `MlflowClient.log_batch` splits a call by MLflow's own limits (1000
# entities, 100 params/tags per request), so every write below is one client call.
# The longest param value we log (MLflow refuses longer ones); reproduce compares params cut
# the same way, so the limit is one constant.
PARAM_LIMIT = 6000
PACKAGES = ("numpy", "pandas", "scikit-learn", "matplotlib", "pydantic", "mlflow", "nn-pipeline")


# The run page groups metric charts into sections by the prefix before "/" and shows them as:
# prefixed sections sorted by name, then the unprefixed ones ("Model metrics") LAST (measured in
# MLflow 3.17's UI, tests/test_ui_browser.py). So the learning curves get the prefix that sorts
# first: curves/ (dev_*, train_*), then final/ (training.py), gradients/, hidden/. Renamed only
# here, at the tracking edge: the core's history keys do not change.
SECTIONS = (("train_", "curves/train_"), ("dev_", "curves/dev_"),
            ("grad_norm_", "gradients/norm_"), ("act_", "hidden/act_"))


def metric_name(key: str) -> str:
    """The logged name of a history key: `dev_loss` -> `curves/dev_loss`, `grad_norm_W1` ->
    `gradients/norm_W1`, `act_mean_1` -> `hidden/act_mean_1`."""
    for old, new in SECTIONS:
        if key.startswith(old):
            return new + key[len(old):]
    return key


class MetricBuffer:
    """A `fit` callback: keeps the metrics of the evaluations `points` (a `CurvePoints`) keeps
    on its strides and writes them with `log_batch`.

    Flushes when `flush_seconds` have passed since the last write (so long runs show live
    curves in the UI) and on `flush()`; call `finish(history, best_epoch)` once after
    training: it adds the evaluations kept but not yet seen on a stride (the last, the best).
    """

    def __init__(self, run_id: str, points: CurvePoints = CurvePoints(), *,
                 client: MlflowClient | None = None, flush_seconds: float = 10.0):
        self.run_id, self.client, self.plan = run_id, client or MlflowClient(), points
        self.flush_seconds, self._last = flush_seconds, time.monotonic()
        self._seen, self.steps = 0, set()
        self._with_diagnostics: set[int] = set()  # epochs whose DIAGNOSTIC series are buffered
        self.points: list[Metric] = []
        self.n_logged = 0

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        i, self._seen = self._seen, self._seen + 1
        if self.plan.on_stride(i):
            self._add(epoch, metrics, self.plan.on_stride(i, diagnostic=True), True)
            if time.monotonic() - self._last > self.flush_seconds:
                self.flush()

    def _add(self, epoch: int, metrics: Mapping[str, float], diagnostic: bool,
             learning: bool) -> None:
        """Buffer the learning and/or the DIAGNOSTIC series of one evaluation."""
        now = int(time.time() * 1000)
        self.points.extend(Metric(metric_name(k), float(v), now, int(epoch))
                           for k, v in metrics.items()
                           if (diagnostic if is_diagnostic(k) else learning))
        if learning:
            self.steps.add(int(epoch))
        if diagnostic:
            self._with_diagnostics.add(int(epoch))

    def finish(self, history: Mapping[str, list[float]], best_epoch: int | None = None) -> None:
        """Add the kept evaluations of `history` not buffered yet, then flush."""
        epochs = history.get("epoch", [])
        curves = set(self.plan.kept(epochs, best_epoch))
        diagnostics = set(self.plan.kept(epochs, best_epoch, diagnostic=True))
        for i in sorted(curves | diagnostics):
            learning = i in curves and epochs[i] not in self.steps
            diagnostic = i in diagnostics and epochs[i] not in self._with_diagnostics
            if learning or diagnostic:
                self._add(epochs[i], {k: v[i] for k, v in history.items()
                                      if k != "epoch" and i < len(v)}, diagnostic, learning)
        self.flush()

    def flush(self) -> None:
        self.client.log_batch(self.run_id, metrics=self.points)
        self.n_logged += len(self.points)
        self.points.clear()
        self._last = time.monotonic()


def log_metrics(run_id: str, values: Mapping[str, float], step: int = 0,
                client: MlflowClient | None = None) -> None:
    client = client or MlflowClient()
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in values.items()]
    client.log_batch(run_id, metrics=items)


def log_params(run_id: str, params: Mapping[str, str], client: MlflowClient | None = None):
    client = client or MlflowClient()
    items = [Param(k, recorded(v)[:PARAM_LIMIT]) for k, v in params.items()]
    client.log_batch(run_id, params=items)


def set_tags(run_id: str, tags: Mapping[str, str], client: MlflowClient | None = None):
    client = client or MlflowClient()
    items = [RunTag(k, recorded(v)[:5000]) for k, v in tags.items()]
    client.log_batch(run_id, tags=items)


def history_metrics(history: Mapping[str, list[float]], points: CurvePoints,
                    best_epoch: int | None = None) -> list[Metric]:
    """The evaluations of a FitResult history that `points` keeps as Metric points (step =
    epoch), named by `metric_name`: what a MetricBuffer of the same `points` logs."""
    now = int(time.time() * 1000)
    epochs = history["epoch"]
    keep = points.kept(epochs, best_epoch)
    thin = points.kept(epochs, best_epoch, diagnostic=True)
    return [Metric(metric_name(k), float(values[i]), now, int(epochs[i]))
            for k, values in history.items() if k != "epoch"
            for i in (thin if is_diagnostic(k) else keep) if i < len(values)]


def package_versions() -> dict[str, str]:
    versions = {"version.python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[f"version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[f"version.{name}"] = "not installed"
    return versions


def git_state(path: Path | str | None = None) -> dict[str, str] | None:
    """{"commit", "dirty" ("true"/"false"), "diff"} of the checkout at `path`; None outside git.

    Dirty means any change `git status` sees, untracked files included (a new module changes
    what runs); the diff holds tracked changes against HEAD plus the untracked file names.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path or source_root()), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None
    diff = ""
    if status.strip():
        root = Path(git("rev-parse", "--show-toplevel").strip())
        untracked = git("ls-files", "--others", "--exclude-standard").splitlines()
        diff = git("diff", "HEAD") + "".join(
            f"# untracked: {u} sha256:{_file_digest(root / u)}\n" for u in sorted(untracked))
    return {"commit": commit, "dirty": "true" if status.strip() else "false", "diff": diff}


def _file_digest(path: Path) -> str:
    """Content digest of an untracked file, so the diff artifact changes when it does."""
    try:
        return short_digest(path.read_bytes())
    except OSError:
        return "unreadable"


def source_root() -> Path:
    """The checkout holding this package: the code that actually runs (not the cwd)."""
    return Path(__file__).resolve().parents[2]


# What a run outside a git checkout records instead of a commit (and reproduce compares with).
NO_GIT = {"commit": "none (not a git checkout)", "dirty": "unknown", "diff": ""}


def git_tags(state: dict[str, str] | None) -> dict[str, str]:
    """git.commit / git.dirty of a `git_state` (NO_GIT's values outside a checkout)."""
    state = state or NO_GIT
    return {"git.commit": state["commit"], "git.dirty": state["dirty"]}


def log_source(run_id: str, path: Path | str | None = None,
               client: MlflowClient | None = None) -> dict:
    """Tags git.commit / git.dirty (+ git/diff.patch when dirty), package versions and the
    BLAS thread count and library in effect (pipeline/threads.py: reproduce reuses them)."""
    from pipeline import threads

    client = client or MlflowClient()
    tags = package_versions() | threads.tags()
    state = git_state(path or source_root())
    tags.update(git_tags(state))
    if state is not None and state["dirty"] == "true":
        client.log_text(run_id, state["diff"], "git/diff.patch")
    set_tags(run_id, tags, client)
    return tags


def log_datasets(run_id: str, prepared, client: MlflowClient | None = None) -> None:
    """Train and dev (raw, as drawn) as dataset inputs with our digests. Never the test split."""
    client = client or MlflowClient()
    inputs = []
    for split, context in ((prepared.raw_train, "training"), (prepared.raw_dev, "validation")):
        ds = mlflow.data.from_numpy(split.X, targets=split.y, name=f"{prepared.name}-{split.name}",
                                    digest=split.digest, source=_source(prepared, split))
        inputs.append(DatasetInput(ds._to_mlflow_entity(),
                                   tags=[InputTag("mlflow.data.context", context)]))
    from pipeline.tracking.store import retry_lost_create

    # Runs of one experiment started at once insert the same dataset row: the loser's
    # UNIQUE-constraint error means the row is there now, and the next try links to it.
    retry_lost_create(lambda: client.log_inputs(run_id, datasets=inputs))


def _source(prepared, split):
    from mlflow.data.code_dataset_source import CodeDatasetSource

    return CodeDatasetSource(tags={"generator": prepared.name, "split": split.name})


def log_figures(run_id: str, figures: Mapping[str, object],
                client: MlflowClient | None = None) -> None:
    """{"plots/x.png": Figure} as PNG artifacts: each figure drawn once (`log_figure` drew
    some twice), one `log_artifacts` call per directory instead of one upload per figure."""
    import tempfile

    client = client or MlflowClient()
    by_dir: dict[str, dict[str, object]] = {}
    for path, fig in figures.items():
        folder, _, name = path.rpartition("/")
        by_dir.setdefault(folder, {})[name] = fig
    for folder, figs in by_dir.items():
        with tempfile.TemporaryDirectory() as tmp:
            for name, fig in figs.items():  # zlib level 1: 18% less saving time, 10-25%
                fig.savefig(Path(tmp) / name, dpi=100,  # bigger files (measured, 4 default figures)
                            pil_kwargs={"compress_level": 1})
            client.log_artifacts(run_id, tmp, folder or None)
