"""Where a lesson lives in MLflow and what its parent run shows first.

Experiment: each lesson has its own, `<tracking.experiment>-lesson-<lesson>`
(`nn-pipeline-lesson-initialization`), beside the training experiment as a search's
`<study>-search` is. One per lesson rather than one for all lessons: a lesson's reruns (more
seeds, other overrides) sit side by side with the same arms and the same parent metrics, so
*Compare* lines them up; the shared view's columns are that lesson's claim metrics; one
lesson's 195 arm runs never push another lesson's parents behind "Load more"; and the
experiment list is the list of lessons run.

Parent run: the description leads with the verdict, then the per-arm table and a pointer to the
comparison figure, then the checks; the table is also an MLflow table (`lesson/table.json`,
`log_table`) beside `table.md`/`table.csv`. Metrics are the few a claim rests on: for each
check, the mean of its metric for every arm it names (`<arm>.<metric>_mean`), plus
`lesson.held`, `lesson.checks_met` and `lesson.seconds`, not every column of the table.
"""

from __future__ import annotations

import json
import math
from typing import Mapping

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

from pipeline.redact import redact
from pipeline.tracking import notes, records, ui
from pipeline.tracking.lessons import metric_key
from pipeline.tracking.search_runs import _beside
from pipeline.tracking.store import retry_lost_create

NOTE_LIMIT = 8000   # MLflow's longest tag value: a longer description drops the table
FIGURE = "lesson/comparison.png"
TABLE = "lesson/table.json"


def experiment_name(base: str, lesson: str) -> str:
    return f"{base}-lesson-{lesson}"


def lesson_experiment(main_experiment_id: str, base: str, lesson) -> str:
    """The lesson's experiment id (created, or restored if deleted), its description and
    shared view; the training experiment gets a tag `lesson.<name>` naming it. Two lessons
    starting at once may both try to create it: the loser finds the winner's."""
    client = MlflowClient()
    main = client.get_experiment(main_experiment_id)
    name = experiment_name(base, lesson.name)

    def make() -> str:
        experiment_id = _get_or_create(client, name, main, main_experiment_id)
        view = ui.view_state(metrics=_view_metrics(lesson),
                             tags=("lesson.arm", "lesson.seed", "diagnosis.verdict"))
        ui.set_experiment_ui(experiment_id, notes.lesson_experiment_note(
            lesson.name, lesson.title, lesson.claim.text, main.name, main_experiment_id),
            view=view, client=client)
        if main.tags.get(f"lesson.{lesson.name}") != experiment_id:
            client.set_experiment_tag(main_experiment_id, f"lesson.{lesson.name}", experiment_id)
        return experiment_id

    return retry_lost_create(make, pause=0.5)


def _get_or_create(client: MlflowClient, name: str, main, main_id: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(
            name, artifact_location=_beside(main.artifact_location, main_id, name),
            tags={"train_experiment_id": main_id})
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def _view_metrics(lesson) -> tuple[str, ...]:
    """Runs-table columns: the parent's verdict, then the children's claim metrics."""
    out = ["lesson.held", "lesson.checks_met"]
    for m in [c.metric for c in lesson.claim.checks] + ["dev_accuracy"]:
        if f"final/{m}" not in out:
            out.append(f"final/{m}")
    return tuple(out)


def kept_metrics(result, seconds: float) -> dict[str, float]:
    """`<arm>.<metric>_mean` for each check's metric and the arms it names (NaN left out: an
    undefined mean is in the table as n/a), and the lesson's verdict and wall time."""
    values: dict[str, float] = {}
    for check in result.lesson.claim.checks:
        for arm in check.arms():
            column = f"{check.metric}_mean"
            if arm in result.table.index and column in result.table.columns:
                v = float(result.table.loc[arm, column])
                if not math.isnan(v):
                    values[metric_key(f"{arm}.{column}")] = v
    values["lesson.held"] = float(result.verdict.held)
    values["lesson.checks_met"] = float(sum(c.passed for c in result.verdict.checks))
    values["lesson.seconds"] = seconds
    return values


def table_frame(result):
    """The per-arm table as shown: arm, seeds, then mean/std/min/max of the displayed metrics
    (the claim's first), and the diagnosis of a grid cell."""
    from pipeline.lessons.runner import display_metrics
    from pipeline.lessons.table import STATS

    t = result.table  # every mean first: the comparison is readable before scrolling right
    cols = ["n_seeds"] + [f"{m}_{s}" for s in STATS for m in display_metrics(result.lesson)
                          if f"{m}_{s}" in t.columns]
    frame = t[cols].reset_index()
    if result.diagnoses:
        frame["diagnosis"] = [result.diagnoses[a].verdict for a in frame["arm"]]
    return frame


def log_table(run_id: str, frame, path: str, client: MlflowClient) -> None:
    """What `MlflowClient.log_table` writes (a pandas "split" JSON and the tag that makes the
    UI's artifact view show it as a table; `mlflow.load_table` reads it), with every digit:
    log_table's JSON keeps 10 decimal places, so a relative error of 3.98e-09 read back as
    4e-09 and a gradient norm of 1e-12 as 0 (measured with MLflow 3.17)."""
    def value(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and math.isnan(v) else v

    data = [[value(v) for v in row] for row in frame.itertuples(index=False)]
    client.log_text(run_id, json.dumps({"columns": list(frame.columns), "data": data}), path)
    logged = json.loads(client.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
    if {"path": path, "type": "table"} not in logged:
        logged.append({"path": path, "type": "table"})
        client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps(logged))


def parent_note(result, experiment_id: str, run_id: str) -> str:
    """Verdict, figure, table, checks: the comparison before anything else. The UI shows the
    first lines (verdict, figure link) and folds the rest under "Show more". The figure is
    linked, not embedded: the UI's markdown draws an image at its full 1600-pixel width and
    ignores a width attribute, which pushed the run page sideways (seen in the browser)."""
    verdict = result.verdict
    figure = (f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/{FIGURE}"
              f"?{notes.MODE}")
    head = [f"**{verdict.line}**", "",
            f"Comparison figure: [{FIGURE}]({figure}) (*Artifacts*); every arm and seed is a "
            "child run nested under this one.", ""]
    checks = ["Checks:", ""] + [f"- {'met' if c.passed else 'NOT met'}: {c.text}"
                                for c in verdict.checks]
    table = _table_markdown(result)
    text = "\n".join(head + [table, ""] + checks)
    if len(text) > NOTE_LIMIT:  # a large grid: the table stays in its artifacts
        text = "\n".join(head + [f"The per-arm table: *Artifacts* → `lesson/table.md` "
                                 f"(`{TABLE}` as an MLflow table).", ""] + checks)
    return text[:NOTE_LIMIT]


def _table_markdown(result) -> str:
    """The table of `lesson/table.md` without its title and verdict (they lead the note)."""
    text = result.texts.get("lesson/table.md", "")
    body = text.split("\n\n", 1)[-1] if text.startswith("# ") else text
    return body.split("\n\nverdict:", 1)[0].strip()


def log_summary(parent_run_id: str, result, *, lesson_yaml: str, seconds: float) -> None:
    """Kept metrics, the MLflow table, texts, figures, then the verdict and description."""
    client = MlflowClient()
    records.log_metrics(parent_run_id, kept_metrics(result, seconds), client=client)
    log_table(parent_run_id, table_frame(result), TABLE, client)
    for path, text in result.texts.items():
        client.log_text(parent_run_id, redact(text), path)
    client.log_text(parent_run_id, redact(lesson_yaml), "lesson/lesson.yaml")
    records.log_figures(parent_run_id, result.figures, client)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    client.log_batch(parent_run_id, tags=[
        RunTag("lesson.verdict", result.verdict.line[:5000]),
        RunTag("lesson.held", str(result.verdict.held).lower()),
        RunTag(ui.NOTE, parent_note(result, experiment_id, parent_run_id))])


def link_pointer(pointer_run_id: str, *, lesson: str, experiment_id: str, parent_run_id: str,
                 verdict: str | None = None, held: bool | None = None) -> None:
    """Under `mlflow run -e experiment` the runner's run (in the experiment the runner chose)
    points at the lesson's parent run, which lives in the lesson's experiment."""
    from pipeline.tracking.project_run import describe_project_run

    link = ui.ui_links("", experiment_id, parent_run_id)["run"].lstrip("/")
    text = f"**{verdict}**\n\n" if verdict else f"Lesson **{lesson}** (running).\n\n"
    tags: Mapping[str, str] = {"stage": "lesson_pointer", "lesson.name": lesson,
                               "lesson.experiment_id": experiment_id,
                               "lesson.parent_run_id": parent_run_id}
    if verdict:
        tags = {**tags, "lesson.verdict": verdict, "lesson.held": str(held).lower()}
    describe_project_run(pointer_run_id, name=f"lesson-{lesson}", tags=tags, note=(
        f"{text}The lesson's parent run and its arm runs are in experiment "
        f"`{MlflowClient().get_experiment(experiment_id).name}`: "
        f"[open the parent run]({link})."))
    if held is not None:
        records.log_metrics(pointer_run_id, {"lesson.held": float(held)})
