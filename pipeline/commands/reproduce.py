"""`python -m pipeline reproduce <run_id>`: rerun a logged run in-process and compare.

Works on training runs, final-test runs, the trial child runs of a search and the child runs of
a lesson (which log every evaluation: compared at their logged steps). A parent, pointer or
unfinished run is refused in one line saying what it is (tracking/readback.not_reproducible).
A check of something the run never recorded (an older lesson child logged no git or versions)
is listed "not recorded" and left out of the verdict, which names it. Reads the run's
config (the `config.yaml` artifact, or a trial's `config.json` tag: tracking/reproducible.py)
and tags, checks the code (git commit, and the digest of the uncommitted changes when the tree
was dirty), the package versions, the BLAS library and the data digests against the current
checkout and freshly prepared data, retrains in-process with the BLAS thread count the run
logged (`blas.threads`, applied with threadpoolctl: pipeline/threads.py) and compares every
final metric, the best epoch, the stop reason and the train/dev loss curves, exactly (bit for
bit). A PRUNED trial has no final numbers: its curves are compared up to the epoch it was
pruned at. A FAILED or unfinished trial has nothing to compare (exit 2).
Run directly it only reads the tracking store (no new MLflow run) and never touches the working
tree. Under `mlflow run . -e reproduce -P run_id=<id>`, MLflow's runner has already opened a run
before this command starts; that run becomes the record of the check: named
`reproduce-<first 8 of id>`, tags `reproduce.of`, `reproduce.match` (true/false),
`reproduce.differs` (the names of what differs), a description, and `reproduce/report.txt`.
Exit 0 when everything matches, 1 when something differs (each difference named), 2 on a
missing run or artifact.
"""

from __future__ import annotations

import io
import os
import sys

CURVES = ("train_loss", "dev_loss", "dev_accuracy")


def add_arguments(parser) -> None:
    parser.add_argument("run_id", help="the MLflow run to reproduce")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict")


def run(args, out=None) -> int:
    from pipeline import threads
    from pipeline.commands.available_memory import prepare_in_memory
    from pipeline.config import config_from_yaml
    from pipeline.tracking.readback import read_run

    logged = read_run(args.run_id, CURVES)
    trial = logged["tags"].get("stage") == "search_trial"
    pruned_at = trial_state(args.run_id, logged) if trial else None
    cfg = config_from_yaml(logged["config"], f"config of run {args.run_id}")
    rows = param_checks(logged["params"], cfg) + environment_checks(logged)
    cfg = with_chosen_batch(cfg, logged["params"])
    prepared = prepare_in_memory(cfg)         # too large: one line, not a MemoryError mid-way
    rows += data_checks(logged["tags"], prepared, trial) + file_checks(logged["tags"], cfg)
    count, notes = blas_plan(logged["tags"])
    with threads.limit(count):
        rows += blas_checks(logged["tags"])   # measured while the limit is in effect
        trained = retrain(args, cfg, prepared)
    if pruned_at is not None:
        notes.append(f"a PRUNED trial (at epoch {pruned_at}): it has no final numbers; its "
                     "curves are compared up to that epoch")
    rows += metric_checks(logged, trained, logged_points(cfg, trial), trial=trial,
                          until=pruned_at, objective=cfg.search.objective,
                          at_logged_steps=logged["tags"].get("stage") == "lesson_arm")
    return print_verdict(args, rows, notes, out)


def with_chosen_batch(cfg, params):
    """A null batch_size the run resolved from its free memory (param
    `training.batch_size_chosen`): rerun with the same batch, whatever memory is free now."""
    chosen = params.get("training.batch_size_chosen", "full")
    return cfg if chosen == "full" else cfg.with_overrides({"training.batch_size": int(chosen)})


def data_checks(tags, prepared, trial: bool) -> list[tuple[str, object, object]]:
    """The logged digest of each split against the freshly prepared data's."""
    return [(f"data digest {split}", tags.get(f"data.digest.{split}"), digest)
            for split, digest in prepared.digests.items()
            if not (trial and split == "test")]  # a trial never held the test split


def retrain(args, cfg, prepared):
    """The run's training again, in-process (a stop leaves no verdict and records nothing)."""
    from pipeline import stages
    from pipeline.commands import stop_of
    from pipeline.stop import Stopped

    try:
        return stages.train(cfg, prepared, stop=stop_of(args))
    except Stopped as exc:  # cli.main prints it and exits 143/130
        exc.outcome = (f"the rerun of run {args.run_id} was stopped: no verdict, nothing "
                       "recorded")
        raise


def print_verdict(args, rows, notes, out=None) -> int:
    """The table and verdict (only the verdict when --quiet); under `mlflow run` also recorded
    on the runner's run. Returns the exit code: 0 all match, 1 something differs."""
    full = io.StringIO()
    code = report(args.run_id, rows, full, notes=notes)
    text = full.getvalue()
    print(text.splitlines()[-1] if args.quiet else text.rstrip("\n"), file=out or sys.stdout)
    if os.environ.get("MLFLOW_RUN_ID") and os.environ["MLFLOW_RUN_ID"] != args.run_id:
        from pipeline.commands.project_params import note_default_experiment

        note_default_experiment(os.environ.get("MLFLOW_EXPERIMENT_ID"))
        record_in_project_run(os.environ["MLFLOW_RUN_ID"], args.run_id, rows, text)
    return code


def file_checks(tags, cfg) -> list[tuple[str, object, object]]:
    """The digest of each table file the run read (tag `<key>.digest`) against the file at
    the logged absolute path now: an edited file is named, not only its changed splits."""
    from pipeline import stages
    from pipeline.data.digest import file_digest

    return [(f"file digest {key} ({path})", tags.get(f"{key}.digest"), file_digest(path))
            for key, path in stages.table_paths(cfg).items()]


def trial_state(run_id: str, logged: dict) -> int | None:
    """Of a trial's run: None when COMPLETE, the last logged epoch when PRUNED. A trial that
    FAILED or never ended has no numbers to compare: ValueError (exit 2)."""
    tags = logged["tags"]
    state = tags.get("optuna.state")
    if state == "PRUNED":
        return max((max(s) for s in logged["steps"].values() if s), default=0)
    if state != "COMPLETE":
        raise ValueError(f"run {run_id} is trial {tags.get('optuna.trial_number')} of study "
                         f"{tags.get('optuna.study_name')}, which ended {state}: it has no "
                         "numbers to reproduce")
    return None


def logged_threads(tags) -> int | None:
    """The run's `blas.threads` tag as a count, or None when it logged none (or no count)."""
    value = tags.get("blas.threads", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def blas_plan(tags) -> tuple[int, list[str]]:
    """The BLAS thread count to rerun with, and the line saying so."""
    from pipeline import threads

    logged = logged_threads(tags)
    if logged is not None:
        return logged, [f"rerun with {logged} BLAS thread(s), as logged (blas.threads)"]
    count = threads.chosen()
    return count, [f"the run logged no BLAS thread count: rerun with {count} BLAS thread(s) "
                   "(this process's choice); a different count can change the last digits"]


def blas_checks(tags) -> list[tuple[str, object, object]]:
    """Rows for the BLAS thread count in effect now and the BLAS library, when logged."""
    from pipeline import threads

    rows = []
    if logged_threads(tags) is not None:
        rows.append(("blas threads", tags["blas.threads"], str(threads.in_effect())))
    if "blas.library" in tags:
        rows.append(("blas library", tags["blas.library"], threads.library()))
    return rows


def record_in_project_run(project_run_id: str, run_id: str, rows, text: str) -> None:
    """Under `mlflow run` the runner's run describes this check instead of staying empty."""
    from pipeline.tracking.project_run import describe_project_run

    differ = [what for what, _, _ in differing(rows)]
    verdict = ("reproduces bit for bit" if not differ else
               f"does NOT reproduce: {len(differ)} of {len(rows)} checks differ")
    describe_project_run(
        project_run_id, name=f"reproduce-{run_id[:8]}",
        note=f"Reproduction check of run {run_id}: {verdict}. The run was retrained in-process "
             f"from its logged config; reproduce/report.txt lists all {len(rows)} checks. "
             "This run holds no training of its own.",
        tags={"stage": "reproduce", "reproduce.of": run_id,
              "reproduce.match": str(not differ).lower(),
              "reproduce.differs": ", ".join(differ)[:5000] or "none"},
        texts={"reproduce/report.txt": text})


def param_checks(params: dict, cfg) -> list[tuple[str, object, object]]:
    """The run's params against the config it is rerun from: one row per config key whose
    param differs (named), or one row when all agree (a run has ~70-170 params). Params that
    are no config key are not compared: `mlflow run` logs its `-P` values (`epochs`, `l2`)."""
    from pipeline.tracking.records import PARAM_LIMIT  # what logging cut each value to

    flat = {k: v[:PARAM_LIMIT] for k, v in cfg.flat().items()}
    differ = [(f"param {k}", params.get(k), v) for k, v in flat.items() if params.get(k) != v]
    return differ or [(f"params ({len(flat)}) as in the config", "identical", "identical")]


def environment_checks(logged: dict) -> list[tuple[str, object, object]]:
    """(what, logged, now) rows for the code and the package versions."""
    from pipeline.tracking import git_state, package_versions
    from pipeline.tracking.records import NO_GIT
    from pipeline.tracking.reproducible import diff_digest

    tags = logged["tags"]
    state = git_state() or NO_GIT
    rows = [("git commit", tags.get("git.commit"), state["commit"]),
            ("git dirty", tags.get("git.dirty"), state["dirty"])]
    if "true" in (tags.get("git.dirty"), state["dirty"]):
        # the same uncommitted changes (diff + untracked file digests) are the same code
        # (not recorded when the run recorded no git state at all)
        rows.append(("uncommitted changes (diff digest)",
                     logged["diff_digest"] if "git.dirty" in tags else None,
                     diff_digest(state["diff"])))
    for key, version in package_versions().items():
        rows.append((key, tags.get(key), version))
    return rows


def logged_points(cfg, trial: bool):
    """The rule the run's writer kept its curve points by (pipeline/curve_points.py)."""
    from pipeline import stages
    from pipeline.curve_points import CurvePoints

    settings = stages.settings(cfg)
    return CurvePoints.of_trial(settings) if trial else CurvePoints.of_training(settings)


def metric_checks(logged: dict, trained, points=None, *, trial: bool = False,
                  until: int | None = None, objective: str = "dev_loss",
                  at_logged_steps: bool = False):
    """(what, logged, now) rows: final metrics and stop reason (a trial's: `trial.stop_reason`
    and its `objective`), then the curves at the evaluations the run logged: those `points`
    (a `CurvePoints`, default every evaluation) keeps. `until`: the epoch a PRUNED trial
    stopped at (no final numbers; curves up to it). `at_logged_steps`: compare at the steps
    the run logged (a lesson child logs every evaluation; a trial also the steps it reported
    to the pruner)."""
    from pipeline.curve_points import CurvePoints
    from pipeline.tracking import final_metrics

    rows = []
    if until is None:
        rows = [(f"metric {k}", logged["metrics"].get(k), v)
                for k, v in final_metrics(trained).items()]
        if trial:
            rows.append(("metric objective", logged["metrics"].get("objective"),
                         float(trained.metrics[objective])))
        rows.append(("stop_reason", logged["tags"].get("trial.stop_reason" if trial else
                                                       "stop_reason"), trained.fit.stop_reason))
    epochs = [e for e in trained.fit.history.get("epoch", []) if until is None or e <= until]
    keep = (points or CurvePoints()).kept(epochs, trained.fit.best_epoch)
    where = {e: i for i, e in enumerate(trained.fit.history.get("epoch", []))}
    for key in CURVES:
        values = trained.fit.history.get(key, [])
        # a trial keeps ~100 points per curve plus the steps reported to Optuna (which depend
        # on the pruner: tracking/search_runs.py), so its curves are compared at its logged steps
        at = ([where[s] for s in logged["steps"][key] if s in where]
              if (trial or at_logged_steps) and logged.get("steps", {}).get(key) else keep)
        now = [float(values[i]) for i in at if i < len(values)]
        was = logged["curves"][key]
        rows.append((f"curve {key} ({len(now)} points)", _curve_text(was, now, logged=True),
                     _curve_text(was, now, logged=False)))
    return rows


def _curve_text(was: list, now: list, *, logged: bool) -> str:
    """Equal curves print the same text; otherwise the first differing point is named."""
    if was == now:
        return "identical"
    for i, (a, b) in enumerate(zip(was, now)):
        if a != b:
            return f"point {i}: {a!r}" if logged else f"point {i}: {b!r}"
    return f"{len(was)} points" if logged else f"{len(now)} points"


def differing(rows) -> list[tuple[str, object, object]]:
    """The rows whose logged value differs from now's; a value the run never logged (None) is
    not recorded, and not a difference: nothing says it was otherwise."""
    return [(what, a, b) for what, a, b in rows if a is not None and a != b]


def report(run_id: str, rows, out, *, quiet: bool = False, notes=()) -> int:
    """The table (unless quiet), the `notes` (how it was rerun), and the verdict line last.
    Checks of what the run never recorded are listed as such and left out of the verdict's
    count; the verdict names them, since they were not checked."""
    differ = differing(rows)
    unrecorded = [what for what, a, _ in rows if a is None]
    if not quiet:
        width = max(len(r[0]) for r in rows)
        print(f"reproducing run {run_id}", file=out)
        for what, a, b in rows:
            mark = "n/a" if a is None else "match" if a == b else "DIFFERS"
            shown = "not recorded" if a is None else a
            print(f"  {what:<{width}}  {mark:<7}  logged {shown}  now {b}", file=out)
        for note in notes:
            print(f"  ({note})", file=out)
    checked = len(rows) - len(unrecorded)
    unchecked = (f" ({len(unrecorded)} not recorded by the run, so not checked: "
                 f"{', '.join(unrecorded)})" if unrecorded else "")
    if not differ:
        print(f"run {run_id} reproduces: all {checked} recorded checks match bit for bit"
              f"{unchecked}", file=out)
        return 0
    names = ", ".join(what for what, _, _ in differ)
    print(f"run {run_id} does NOT reproduce: {len(differ)} of {checked} checks differ: "
          f"{names}{unchecked}", file=out)
    return 1
