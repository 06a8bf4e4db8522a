"""`python -m pipeline reproduce <run_id>`: rerun a logged run in-process and compare.

Reads the run's `config.yaml` artifact and tags, checks the code (git commit, and the logged
diff when the tree was dirty), the package versions and the data digests against the current
checkout and freshly prepared data, retrains in-process and compares every final metric, the
best epoch, the stop reason and the full train/dev loss curves, exactly (bit for bit).
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
    from pipeline import stages
    from pipeline.config import config_from_yaml

    from pipeline.tracking.readback import read_run

    logged = read_run(args.run_id, CURVES)
    cfg = config_from_yaml(logged["config"], f"config.yaml of run {args.run_id}")
    rows = environment_checks(logged)
    prepared = stages.prepare(cfg)
    for split, digest in prepared.digests.items():
        rows.append((f"data digest {split}", logged["tags"].get(f"data.digest.{split}"), digest))
    from pipeline.commands import stop_of
    from pipeline.stop import Stopped

    try:
        trained = stages.train(cfg, prepared, stop=stop_of(args))
    except Stopped as exc:  # cli.main prints it and exits 143/130
        exc.outcome = f"the rerun of run {args.run_id} was stopped: no verdict, nothing recorded"
        raise
    rows += metric_checks(logged, trained, stride=curve_stride_of(cfg))
    full = io.StringIO()
    code = report(args.run_id, rows, full)
    text = full.getvalue()
    print(text.splitlines()[-1] if args.quiet else text.rstrip("\n"), file=out or sys.stdout)
    if os.environ.get("MLFLOW_RUN_ID") and os.environ["MLFLOW_RUN_ID"] != args.run_id:
        record_in_project_run(os.environ["MLFLOW_RUN_ID"], args.run_id, rows, text)
    return code


def record_in_project_run(project_run_id: str, run_id: str, rows, text: str) -> None:
    """Under `mlflow run` the runner's run describes this check instead of staying empty."""
    from pipeline.tracking.project_run import describe_project_run

    differ = [what for what, a, b in rows if a != b]
    verdict = ("reproduces bit for bit" if not differ else
               f"does NOT reproduce: {len(differ)} of {len(rows)} checks differ")
    describe_project_run(
        project_run_id, name=f"reproduce-{run_id[:8]}",
        note=f"Reproduction check of run {run_id}: {verdict}. The run was retrained in-process "
             f"from its logged config.yaml; reproduce/report.txt lists all {len(rows)} checks. "
             "This run holds no training of its own.",
        tags={"stage": "reproduce", "reproduce.of": run_id,
              "reproduce.match": str(not differ).lower(),
              "reproduce.differs": ", ".join(differ)[:5000] or "none"},
        texts={"reproduce/report.txt": text})


def environment_checks(logged: dict) -> list[tuple[str, object, object]]:
    """(what, logged, now) rows for the code and the package versions."""
    from pipeline.tracking import git_state, package_versions

    tags = logged["tags"]
    state = git_state() or {"commit": "none (not a git checkout)", "dirty": "unknown", "diff": ""}
    rows = [("git commit", tags.get("git.commit"), state["commit"]),
            ("git dirty", tags.get("git.dirty"), state["dirty"])]
    if "true" in (tags.get("git.dirty"), state["dirty"]):
        # the same uncommitted changes (diff + untracked file digests) are the same code
        rows.append(("uncommitted changes (diff digest)", _digest(logged["diff"]),
                     _digest(state["diff"])))
    for key, version in package_versions().items():
        rows.append((key, tags.get(key), version))
    return rows


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16] if text else "none"


def curve_stride_of(cfg) -> int:
    from pipeline import stages
    from pipeline.tracking import curve_stride

    settings = stages.settings(cfg)
    return curve_stride(settings.epochs, settings.eval_every)


def metric_checks(logged: dict, trained, stride: int = 1) -> list[tuple[str, object, object]]:
    """Final metrics, stop reason, and the curves at the evaluations the run logged (every
    `stride`-th, the last and the best: `kept_indices`)."""
    from pipeline.tracking import final_metrics, kept_indices

    rows = [(f"metric {k}", logged["metrics"].get(k), v)
            for k, v in final_metrics(trained).items()]
    rows.append(("stop_reason", logged["tags"].get("stop_reason"), trained.fit.stop_reason))
    epochs = trained.fit.history.get("epoch", [])
    best = epochs.index(trained.fit.best_epoch) if trained.fit.best_epoch in epochs else None
    keep = kept_indices(len(epochs), stride, best)
    for key in CURVES:
        values = trained.fit.history.get(key, [])
        now = [float(values[i]) for i in keep if i < len(values)]
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


def report(run_id: str, rows, out, *, quiet: bool = False) -> int:
    differ = [(what, a, b) for what, a, b in rows if a != b]
    if not quiet:
        width = max(len(r[0]) for r in rows)
        print(f"reproducing run {run_id}", file=out)
        for what, a, b in rows:
            mark = "match" if a == b else "DIFFERS"
            print(f"  {what:<{width}}  {mark:<7}  logged {a}  now {b}", file=out)
    if not differ:
        print(f"run {run_id} reproduces: all {len(rows)} checks match bit for bit", file=out)
        return 0
    names = ", ".join(what for what, _, _ in differ)
    print(f"run {run_id} does NOT reproduce: {len(differ)} of {len(rows)} checks differ: {names}",
          file=out)
    return 1
