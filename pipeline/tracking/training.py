"""`log_training`: everything a finished training records on its MLflow run.

Params (the flattened config) + config.yaml; tags: data digests and sizes, stop reason, the
diagnosis, git commit/dirty/diff, package versions, the description (`mlflow.note.content`:
knobs, result, diagnosis); metrics: the curves (unless a MetricBuffer already logged them live)
and the final values (`final/...`); the train and dev splits as dataset inputs;
the figures; the pyfunc model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

from mlflow.tracking import MlflowClient

from pipeline.curve_points import CurvePoints
from pipeline.redact import redact
from pipeline.tracking import notes, records as R
from pipeline.tracking.runs import without_ipython_probe
from pipeline.tracking.ui import set_run_note

FINAL = "final/"  # the prefix of the single-value results (a section after the curves)


def run_tags(cfg, prepared, trained) -> dict[str, str]:
    fit = trained.fit
    tags = {"data.name": prepared.name, "stop_reason": fit.stop_reason,
            "stop_message": fit.stop_message, "seed": str(cfg.seed)}
    for split, digest in prepared.digests.items():
        tags[f"data.digest.{split}"] = digest          # the test digest reveals nothing
    tags.update({"data.n_train": str(prepared.raw_train.n), "data.n_dev": str(prepared.raw_dev.n),
                 "data.n_test": str(prepared.test.n),
                 "data.n_train_augmented": str(prepared.train.n)})
    tags.update(file_digest_tags(cfg))
    if trained.diagnosis is not None:
        tags.update(trained.diagnosis.as_tags())
    return tags


def file_digest_tags(cfg) -> dict[str, str]:
    """{"data.path.digest": <digest of the file's bytes>, ...} for every table the config
    reads (its absolute path is the param beside it): `reproduce` compares them. Training
    runs, search trials and lesson children all record them."""
    import os

    from pipeline import stages

    tags = {}
    for key, path in stages.table_paths(cfg).items():
        st = os.stat(path)
        tags[f"{key}.digest"] = _file_digest(path, st.st_size, st.st_mtime_ns)
    return tags


@lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """Once per file version and process: a search's trials read the same table each time."""
    from pipeline.data.digest import file_digest

    return file_digest(path)


def final_metrics(trained) -> dict[str, float]:
    """final/train_loss, ..., final/dev_error (of the returned = best-dev parameters),
    final/best_epoch, final/epochs_run: one section of the run page, below the curves."""
    out = {f"{FINAL}{k}": v for k, v in trained.metrics.items()
           if k not in ("best_epoch", "epochs_run")}
    out[f"{FINAL}best_epoch"] = float(trained.fit.best_epoch)
    out[f"{FINAL}epochs_run"] = float(trained.fit.epochs_run)
    return out


def log_training(run_id: str, cfg, prepared, trained, *, curves: bool = True,
                 figures: bool | None = None, model: bool | None = None,
                 source_dir: Path | str | None = None, client: MlflowClient | None = None,
                 status: Callable[[str], None] = lambda line: None) -> None:
    """Record a finished training on run `run_id` (see the module docstring).

    curves=False when a MetricBuffer already logged every evaluation during `fit`;
    figures/model default to cfg.tracking.log_figures / log_model. `status` is told each step
    before it starts (the train command prints it: these steps take seconds after the bar).
    """
    from pipeline import stages

    client = client or MlflowClient()
    fit = trained.fit
    points = (R.history_metrics(fit.history, CurvePoints.of_training(stages.settings(cfg)),
                                fit.best_epoch) if curves else [])
    status(f"recording config, tags, source and data lineage"
           f"{f', {len(points)} curve points' if points else ''}...")
    chosen = trained.batch  # a null batch_size resolved from the free memory, or None
    R.log_params(run_id, {**cfg.flat(), **({} if chosen is None else
                                           {"training.batch_size_chosen": chosen.param})}, client)
    client.log_text(run_id, redact(cfg.to_yaml()), "config.yaml")
    R.set_tags(run_id, run_tags(cfg, prepared, trained), client)
    set_run_note(run_id, notes.training_note(cfg, prepared, trained), client)
    R.log_source(run_id, source_dir, client)
    client.log_batch(run_id, metrics=points)
    R.log_metrics(run_id, final_metrics(trained), step=trained.fit.best_epoch, client=client)
    R.log_datasets(run_id, prepared, client)
    if cfg.tracking.log_figures if figures is None else figures:
        status("drawing figures...")
        drawn = stages.figures(cfg, prepared, trained)
        status(f"saving {len(drawn)} figures to the run...")
        R.log_figures(run_id, drawn, client)
    if cfg.tracking.log_model if model is None else model:
        from pipeline.tracking.model import log_model

        status("logging the model (weights, standardizer, input example)...")
        with without_ipython_probe():  # it resolves run-context tags too (see runs.py)
            log_model(run_id, prepared, trained)
