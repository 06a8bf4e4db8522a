"""The run cache in the tracking store: a FINISHED run tagged `cache.key` whose `cache/`
artifacts hold its result (pipeline/cached.py) is reused by any later training with the same key
(pipeline/cache_key.py), in any experiment of the store.

- Lookup: one `search_runs` over the store's experiments (tag and status FINISHED, newest
  first). A match whose artifacts are missing or unreadable is retrained, not trusted.
- A fresh result is stored on the run that records it: `cache/result.npz` and `cache/key.json`
  (the ingredients, to explain a miss), and only then the `cache.key` tag, so a run
  interrupted while writing is never found.
- A reuse is recorded as a new run (train) or child run (lesson arm) tagged `cache.reused_from`
  with the source's numbers, which has no `cache.key`: lookups always land on a trained run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable

from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from pipeline import cache_key as K, cached
from pipeline.tracking.recovery import owned

KEY, REUSED_FROM = "cache.key", "cache.reused_from"
FOLDER = "cache"


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Store:
    """Finds, reads and writes cached results in the current tracking store."""

    def __init__(self, client: MlflowClient | None = None, say: Callable[[str], None] = _warn):
        self.client, self.say = client or MlflowClient(), say
        self._experiments: list[str] | None = None

    def find(self, key: str):
        """The newest FINISHED run tagged with `key`, or None."""
        if self._experiments is None:  # once per Store: a lesson asks 20-40 times
            self._experiments = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(
            self._experiments, f"tags.`{KEY}` = '{key}' and attributes.status = 'FINISHED'",
            max_results=1, order_by=["attributes.start_time DESC"])
        return runs[0] if runs else None

    def read(self, key: str, unpack: Callable[[bytes, str], object]):
        """(source run id, unpack(bytes, run id)) for `key`, or None: no match, or a match
        that cannot be read back (said in one line; the caller trains afresh)."""
        found = self.find(key)
        if found is None:
            return None
        run_id = found.info.run_id
        try:
            # by the run's artifact URI: a runs:/ path would look the run up again (half the
            # cost of a reuse, measured)
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(download_artifacts(
                    artifact_uri=f"{found.info.artifact_uri}/{FOLDER}/{cached.FILE}",
                    dst_path=tmp, tracking_uri=self.client.tracking_uri)).read_bytes()
            return run_id, unpack(data, run_id)
        except Exception as exc:  # any damage: the numbers cannot be trusted
            self.say(f"run cache: run {run_id} has this key but its result is unreadable "
                     f"({type(exc).__name__}: {str(exc)[:120]}); training afresh")
            return None

    def write(self, run_id: str, key: str, parts: dict, data: bytes) -> None:
        """The result and the ingredients on `run_id`, then the tag that finds them."""
        import json

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / cached.FILE).write_bytes(data)
            (Path(tmp) / "key.json").write_text(json.dumps(parts, indent=1, sort_keys=True,
                                                           default=str))
            self.client.log_artifacts(run_id, tmp, FOLDER)
        self.client.set_tag(run_id, KEY, key)


class TrainCache:
    """The run cache of one `train`: `hit` is (source run id, `stages.Trained`) of an identical
    finished run, or None (no match, or `read=False`: --no-cache, tracking.cache false). A
    fresh training is stored either way, so the next identical one can reuse it."""

    def __init__(self, cfg, prepared, *, read: bool = True, store: Store | None = None,
                 batch_chosen: int | None = None):
        """`batch_chosen`: the rows per batch `train` chose for a null training.batch_size
        from the free memory (None: the config's batch, full for null). Keyed, so a run
        trained in other batches on a machine with other free memory is never reused."""
        from pipeline import threads

        self.cfg, self.prepared, self.backend = cfg, prepared, store or Store()
        # the threads in effect: the command line set them before numpy was imported
        self.parts = K.ingredients(cfg, prepared.digests, what="train",
                                   thread_count=threads.in_effect(),
                                   extra=None if batch_chosen is None else
                                   {"batch_chosen": int(batch_chosen)})
        self.key = K.key_of(self.parts)
        self.hit = (self.backend.read(self.key, lambda data, _: cached.unpack_trained(data))
                    if read else None)

    def record_reuse(self, run_id: str):
        """Record on `run_id` (see `record_reuse`); (source run id, Trained, source's link)."""
        source, trained = self.hit
        link = record_reuse(run_id, source, self.cfg, self.prepared, trained,
                            self.cfg.tracking.ui_url, self.backend.client)
        return source, trained, link

    def store(self, run_id: str, trained) -> None:
        self.backend.write(run_id, self.key, self.parts, cached.pack_trained(trained))


def record_reuse(run_id: str, source: str, cfg, prepared, trained, ui_url: str,
                 client: MlflowClient | None = None) -> str:
    """A train run that reuses `source`: its config, tags, curves and final metrics (cheap),
    `cache.reused_from`, and a description linking the source, where the figures and the
    model are (not copied: drawing and logging them again costs more than the training).
    Returns the source's link in the UI."""
    from pipeline.tracking import notes
    from pipeline.tracking.training import log_training
    from pipeline.tracking.ui import set_run_note, ui_links

    client = client or MlflowClient()
    log_training(run_id, cfg, prepared, trained, figures=False, model=False, client=client)
    experiment = client.get_run(source).info.experiment_id
    link = ui_links(ui_url, experiment, source)["run"]
    client.set_tag(run_id, REUSED_FROM, source)
    set_run_note(run_id, f"**Reused run [{source}]({link})**: same config, data, code, numpy/"
                 f"BLAS and threads, so its numbers; its model (`runs:/{source}/model`) and "
                 f"figures are there. `--no-cache` trains afresh.\n\n"
                 + notes.training_note(cfg, prepared, trained), client)
    return link


class LessonCache:
    """`run_jobs`'s cache (pipeline.lessons.runner.ArmCache) in the tracking store.

    `child_of(run)`: the run that records an (arm, seed) result (the experiment command's child
    run), or None: then a run is created in `experiment_id` to hold it (notebooks, which run
    lessons untracked). `read=False` (--no-cache, tracking.cache false) trains every job but
    still stores each result, so the next identical run can reuse it."""

    def __init__(self, *, read: bool = True, child_of: Callable | None = None,
                 experiment_id: str | None = None, store: Store | None = None):
        self.store, self.read_enabled = store or Store(), read
        self.child_of, self.experiment_id = child_of, experiment_id
        self.keys: dict[tuple[str, int], tuple[str, dict]] = {}
        self.reused: dict[tuple[str, int], str] = {}   # (arm, seed) -> source run

    def get(self, job):
        from pipeline import stages, threads
        from pipeline.config import config_from_yaml

        cfg = config_from_yaml(job.cfg_yaml)
        prepared = stages.prepare(cfg)                 # the data digests (ms for a lesson)
        parts = K.ingredients(cfg, prepared.digests, what="lesson_arm",
                              thread_count=threads.chosen(), code=K.LESSON_CODE,
                              extra=K.lesson_extra(job))
        key = K.key_of(parts)
        self.keys[(job.arm, job.seed)] = (key, parts)
        if not self.read_enabled:
            return None
        hit = self.store.read(key, lambda data, run_id: cached.unpack_arm(data, job, prepared,
                                                                         run_id))
        if hit is None:
            return None
        self.reused[(job.arm, job.seed)] = hit[0]
        return hit[1]

    def put(self, job, run) -> None:
        child = self.child_of(run) if self.child_of is not None else None
        if run.reused_from:
            if child is not None:
                self.store.client.set_tag(child, REUSED_FROM, run.reused_from)
            return
        key, parts = self.keys[(job.arm, job.seed)]
        if child is not None:
            self.store.write(child, key, parts, cached.pack_arm(run))
            return
        child, status = self._own_run(job, run), "FAILED"
        try:                                           # never left RUNNING
            self.store.write(child, key, parts, cached.pack_arm(run))
            status = "FINISHED"
        finally:
            self.store.client.set_terminated(child, status)

    def _own_run(self, job, run) -> str:
        """A run holding one (arm, seed) result outside the experiment command: the arm's own
        overrides as params (all ~80 config params cost ~0.2 s a run, measured; the whole
        config is `config.yaml`), its final metrics, and the command that retrains it."""
        from pipeline.tracking import records as R
        from pipeline.tracking.lessons import metric_key

        client = self.store.client
        name = f"{job.lesson.name} {run.arm}-seed{run.seed}"
        command = "python -m pipeline train " + " ".join(f"'{o}'" for o in job.overrides)
        tags = owned({"stage": "lesson_arm", "lesson.name": job.lesson.name,
                      "lesson.arm": run.arm, "lesson.seed": str(run.seed),
                      "blas.threads": str(run.blas_threads),
                      "lesson.train_command": command[:5000]})
        run_id = client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        R.log_params(run_id, dict(o.partition("=")[::2] for o in job.overrides), client)
        client.log_text(run_id, job.cfg_yaml, "config.yaml")
        R.log_metrics(run_id, {metric_key(f"final/{k}"): v for k, v in run.metrics.items()},
                      client=client)
        return run_id

    def summary(self, total: int) -> str:
        """One line: how many of `total` results were reused, and from which runs."""
        if not self.reused:
            return f"run cache: none of {total} (arm, seed) results reused"
        sources = sorted(set(self.reused.values()))
        shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3
                                          else "")
        return (f"run cache: {len(self.reused)} of {total} (arm, seed) results reused from "
                f"earlier identical runs ({shown})")


NOTEBOOK_EXPERIMENT = "notebook-lessons"


def lesson_cache(store: str | Path, *, read: bool = True,
                 experiment: str = NOTEBOOK_EXPERIMENT) -> LessonCache:
    """A cache for `run_lesson(..., cache=...)` outside the experiment command: `store` a
    tracking URI or a path to an SQLite file ($MLFLOW_TRACKING_URI wins, as for every
    command). New results are kept as runs of `experiment` in that store (artifacts in
    `mlruns/` beside an SQLite file, not in the working directory), so a notebook re-executed,
    or one running arms that `python -m pipeline experiment` ran on the same store, reuses
    them."""
    import os

    from pipeline.store_urls import tracking_uri
    from pipeline.tracking.store import experiment_id_of, seed_store, sqlite_path

    uri = tracking_uri(fallback=store if isinstance(store, str) and "://" in store
                       else f"sqlite:///{Path(store).resolve()}")
    seed_store(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one per reuse
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    db = sqlite_path(uri)
    where = None if db is None else (db.resolve().parent / "mlruns" / experiment).as_uri()
    # two notebooks (or kernels) opening a new store at once: the loser reads the id back
    experiment_id = (found.experiment_id if found
                     else experiment_id_of(client, experiment, artifact_location=where))
    return LessonCache(read=read, experiment_id=experiment_id, store=Store(client))


PACKAGED_CONF = Path(__file__).resolve().parents[1] / "conf"


def notebook_store(conf_dir: str | Path) -> tuple[str, Path]:
    """(tracking URI, directory) for a notebook that runs the commands: the store
    `notebook_cache` uses ($MLFLOW_TRACKING_URI, else the checkout's mlflow.db, or ./mlflow.db
    with the packaged config), so `mlflow ui` on it shows the runs; the directory is the SQLite
    file's (else the working one): commands run there keep a study's journal in its optuna/,
    as `python -m pipeline search` run from the checkout does."""
    import os

    from pipeline.tracking.store import sqlite_path

    conf = Path(conf_dir).resolve()
    db = (Path("mlflow.db").resolve() if conf == PACKAGED_CONF.resolve()
          else conf.parent / "mlflow.db")
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{db}"
    path = sqlite_path(uri)
    return uri, (Path(path).resolve().parent if path is not None else Path.cwd())


def notebook_cache(conf_dir: str | Path, *, read: bool = True) -> LessonCache:
    """The notebooks' cache: the store of the checkout whose `conf/` they read
    (`<checkout>/mlflow.db`, the one `python -m pipeline experiment` uses from there, so the
    two reuse each other's runs), or ./mlflow.db with the config shipped in the package."""
    conf = Path(conf_dir).resolve()
    packaged = conf == PACKAGED_CONF.resolve()
    return lesson_cache(Path("mlflow.db") if packaged else conf.parent / "mlflow.db", read=read)
