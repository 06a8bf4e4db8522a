"""Rows of bench_overhead.py (imported by it): start-up, and two that split a run's time.

startup  `--help` of every command, and a config error (`regularization.keep_prob=1.5`)

floor  MLflow's own fixed costs, each in a fresh process, medians: `import mlflow`; that plus
       its SQL store module (every local store needs it); that plus a run and a bare
       `mlflow.pyfunc.log_model` of a trivial model from code with explicit pip requirements
       and no input example, on three stores: a new one MLflow creates (its ~60 schema
       migrations included), a new one copied from the template store as the project makes
       every new store (pipeline/tracking/store.py), and an existing one (reused). No code of
       ours runs there: it is what a tracked run cannot go below, whatever this project does.
steps  the default `train` command's sequence in-process, once, each step's wall time.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT = "import mlflow"
STORE = IMPORT + "; import mlflow.store.tracking.sqlalchemy_store"
TRIVIAL = '''
import mlflow.pyfunc
class M(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input
mlflow.models.set_model(M())
'''
# argv: the store's directory, the code's directory, and a template store to copy first ("-":
# none): the copy is what pipeline/tracking/store.py seed_store does for a new local store
LOG_MODEL = STORE + '''
import time, pathlib, shutil, mlflow
t0 = time.perf_counter()
if sys.argv[3] != "-":
    shutil.copyfile(sys.argv[3], sys.argv[1] + "/mlflow.db")
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1] + "/mlflow.db")
code = pathlib.Path(sys.argv[2]) / "trivial.py"
with mlflow.start_run():
    t = time.perf_counter()
    mlflow.pyfunc.log_model(name="model", python_model=str(code), pip_requirements=["numpy"])
    print(t - t0, time.perf_counter() - t)
'''
TEMPLATE = "from pipeline.tracking.store import _template; print(_template())"


def _timed(code: str, tmp: str, env: dict, *args: str) -> tuple[float, float, str]:
    """Wall and CPU (user + sys) seconds of a fresh process, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import sys; " + code, tmp, *args], env=env,
                         capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, out


def bench_startup(repeats: int, conf: str, env_for, wall) -> None:
    cmds = {f"{c} --help": ["-m", "pipeline", c, "--help"]
            for c in ("train", "search", "evaluate", "reproduce", "gradcheck")}
    cmds["train keep_prob=1.5"] = ["-m", "pipeline", "train", "--conf-dir", conf,
                                   "regularization.keep_prob=1.5"]
    cmds["search keep_prob=1.5"] = ["-m", "pipeline", "search", "--conf-dir", conf,
                                    "regularization.keep_prob=1.5"]
    cmds["python -c pass"] = ["-c", "pass"]
    times = {k: [] for k in cmds}
    with tempfile.TemporaryDirectory() as tmp:
        env = env_for(Path(tmp))
        for _ in range(repeats):
            for k, args in cmds.items():
                times[k].append(wall([sys.executable, *args], tmp, env, ok=(0, 2)))
        created = sorted(os.listdir(tmp))
    print(f"startup: wall time of a fresh process, medians of {repeats} (files created: "
          f"{created or 'none'})")
    for k, xs in times.items():
        print(f"  {k:<24} {statistics.median(xs):6.2f} s")


def bench_floor(repeats: int, env_for, load) -> None:
    """The rows interleaved, each repeat; the three store variants differ only in the store:
    "new" is an empty directory every repeat (MLflow runs its schema migrations), "template"
    an empty directory every repeat where the template store is copied first (inside the
    timed process), "reused" one directory whose store the first (unmeasured) run created."""
    stores = {"new store (MLflow migrates)": "-", "new store from the template": None,
              "reused store": "-"}
    rows = {"python -c pass": "pass", IMPORT: IMPORT, "+ SQL store module": STORE,
            **{f"+ a run, bare log_model, {k}": LOG_MODEL for k in stores}}
    times = {k: [] for k in rows}
    cpu = {k: [] for k in rows}
    inner = {k: ([], []) for k in stores}  # in-process: store + start_run, log_model
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "trivial.py").write_text(TRIVIAL)
        env = env_for(Path(tmp))
        env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        env["NN_PIPELINE_CACHE"] = str(Path(tmp) / "cache")   # the template, built once here
        stores["new store from the template"] = subprocess.run(
            [sys.executable, "-c", TEMPLATE], env=env, capture_output=True, text=True,
            check=True).stdout.strip()
        reused = Path(tmp) / "reused"
        reused.mkdir()
        _timed(LOG_MODEL, str(reused), env, tmp, "-")      # creates the reused store
        for r in range(repeats):
            for label, code in rows.items():
                kind = label.rsplit(", ", 1)[-1]
                if code is LOG_MODEL:
                    where = reused
                    if kind != "reused store":  # a new, empty directory for this process
                        where = Path(tmp) / f"repeat{r}-{list(stores).index(kind)}"
                        where.mkdir()
                    seconds, used, out = _timed(code, str(where), env, tmp, stores[kind])
                    run_s, model_s = out.strip().splitlines()[-1].split()
                    inner[kind][0].append(float(run_s))
                    inner[kind][1].append(float(model_s))
                else:
                    seconds, used, out = _timed(code, tmp, env)
                times[label].append(seconds)
                cpu[label].append(used)
    print(f"floor: MLflow's own fixed costs, fresh processes, interleaved, medians of {repeats} "
          f"({load()})")
    for label, xs in times.items():
        print(f"  {label:<58} {statistics.median(xs):6.2f} s wall "
              f"{statistics.median(cpu[label]):6.2f} s CPU")
    for kind, (run_s, model_s) in inner.items():
        print(f"  in-process, {kind:<30} store + start_run {statistics.median(run_s):5.2f} s, "
              f"bare log_model {statistics.median(model_s):5.2f} s")


def bench_steps(conf: str, overrides) -> None:
    """One default run's sequence as commands/train.py runs it, each step timed."""
    marks = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    from pipeline import stages
    from pipeline.config import load_config

    cfg = load_config(list(overrides), conf_dir=conf)
    prepared = getattr(stages, "prepare_checked", stages.prepare)(cfg)  # renamed on main
    mark("config + data")
    import mlflow  # noqa: F401
    mark("import mlflow")
    from pipeline import tracking
    from pipeline.tracking import records as R
    from pipeline.tracking.model import log_model
    from pipeline.tracking.training import log_training
    mark("import the rest of pipeline.tracking")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        tracking.configure(cfg.tracking)
        mark("store + experiment (new store)")
        with tracking.run("steps") as active:
            run_id = active.info.run_id
            mark("start the run")
            settings = stages.settings(cfg)
            buffer = train_buffer(tracking, run_id, settings)
            trained = stages.train(cfg, prepared, callbacks=[buffer])
            mark("training")
            points = len(buffer.points)
            buffer.flush()
            buffer.finish(trained.fit.history, trained.fit.best_epoch)
            mark(f"curves ({points} points)")
            log_training(run_id, cfg, prepared, trained, curves=False, figures=False,
                         model=False)
            mark("params, tags, note, source, final metrics, datasets")
            drawn = stages.figures(cfg, prepared, trained)
            mark(f"figures: draw {len(drawn)} (first one imports matplotlib)")
            R.log_figures(run_id, drawn, buffer.client)
            mark("figures: render PNGs + upload")
            with getattr(tracking.runs, "without_ipython_probe", contextlib.nullcontext)():
                log_model(run_id, prepared, trained)  # as log_training calls it
            mark("log_model")
        mark("end the run")
        os.environ.pop("MLFLOW_TRACKING_URI")
    width = max(len(name) for name, _ in marks)
    print(f"steps: one `train {' '.join(overrides)}` in-process, wall s")
    for (_, t0), (name, t1) in zip(marks, marks[1:]):
        print(f"  {name:<{width}} {t1 - t0:6.2f}")
    print(f"  {'total (interpreter start not included)':<{width}} {marks[-1][1] - marks[0][1]:6.2f}")


def _trial_seconds(study) -> list[float]:
    return [(t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
            if t.datetime_complete is not None and t.state.name == "COMPLETE"]


def bench_trial(repeats: int, n_trials: int, conf: str, env_for, load) -> None:
    """Median trial duration of `search` (pruner none, 1 worker: a child run per trial) against
    the same seeded study without MLflow in-process (the same trial parameters): the
    difference is what a trial costs beyond its training."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from pipeline import stages
    from pipeline.config import load_config
    from pipeline.search.objective import make_objective
    from pipeline.search.space import load_space
    from pipeline.search.study import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    overrides = ["search.pruner.name=none", f"search.n_trials={n_trials}"]
    cfg = load_config(overrides, conf_dir=conf)
    space, _ = load_space(cfg.search.space, Path(conf))
    prepared = stages.prepare(cfg)
    tracked, bare = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            journal = Path(tmp) / "s.journal"
            subprocess.run([sys.executable, "-m", "pipeline", "search", "--quiet", "--conf-dir",
                            conf, *overrides, "study=bench", f"storage={journal}"], cwd=tmp,
                           env=env_for(Path(tmp)), capture_output=True, check=True)
            tracked += _trial_seconds(optuna.load_study(study_name="bench", storage=JournalStorage(
                JournalFileBackend(str(journal)))))
        study = optuna.create_study(direction="minimize", sampler=make_sampler(cfg))
        study.optimize(make_objective(cfg, space, prepared), n_trials=n_trials)
        bare += _trial_seconds(study)
    t, b = statistics.median(tracked), statistics.median(bare)
    print(f"trial: {n_trials} trials x {repeats}, default space, pruner none, 1 worker, median "
          f"trial seconds ({load()})")
    print(f"  with its child run {t:6.3f} s, training only {b:6.3f} s: overhead "
          f"{t - b:+.3f} s per trial ({(t - b) / b:+.0%} of the training)")


def train_buffer(tracking, run_id: str, settings):
    """The curve buffer as commands/train.py builds it. Older checkouts (the same script
    measures e.g. `git archive main`): before pipeline/curve_points.py the strides were
    arguments, and before the diagnostic stride there was one."""
    try:
        from pipeline.curve_points import CurvePoints
    except ImportError:
        stride = tracking.curve_stride(settings.epochs, settings.eval_every)
        extra = ({"diagnostic_stride": tracking.diagnostic_stride(settings.epochs,
                                                                  settings.eval_every)}
                 if hasattr(tracking, "diagnostic_stride") else {})
        return tracking.MetricBuffer(run_id, stride=stride, **extra)
    return tracking.MetricBuffer(run_id, CurvePoints.of_training(settings))