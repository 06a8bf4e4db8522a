"""What the MLflow UI shows first: experiment mode, descriptions, default columns, links.

Measured in MLflow 3.17's UI (headless Chromium, tests/test_ui_browser.py), not assumed:

- The sidebar's GenAI / Model training mode is a per-browser switch (URL `?workflowType=`, else
  the browser's localStorage, default GenAI). The experiment tag `mlflow.experimentKind` is
  written anyway (the UI of other MLflow builds reads it) but 3.17's open-source UI ignores it,
  so every link this project prints carries `workflowType=machine_learning`.
- The runs table's columns are browser state too. The one server-side lever is a shared view:
  an experiment tag `mlflow.sharedViewState.<key>` holding the view as JSON, opened by a link
  with `?viewStateShareKey=<key>`. We store one per experiment (the knobs and headline metrics
  as columns) and put its key in every runs-table link.
- Descriptions are the tag `mlflow.note.content` (markdown) on experiments and runs, and the
  description field of registered models and model versions.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.data.digest import short_digest

NOTE = "mlflow.note.content"
KIND = ("mlflow.experimentKind", "custom_model_development")
VIEW_KEY = "nn-pipeline"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
# The digest of the description we wrote last: a note the user edited differs and is kept.
NOTE_DIGEST = "nn_pipeline.note_digest"

# The knobs a user compares, then the headline metrics: first in the table (column ids are
# the UI's `<type>.`<key>``). Everything else stays in params and config.yaml.
KNOBS = ("data.name", "model.init", "regularization.l2", "regularization.keep_prob",
         "training.learning_rate", "model.hidden", "seed")
TRAIN_METRICS = ("final/dev_accuracy", "final/train_accuracy", "final/dev_loss", "test_accuracy")
TRAIN_TAGS = ("diagnosis.verdict", "stage")
SEARCH_METRICS = ("objective", "final/dev_accuracy", "final/train_accuracy", "best_value")
SEARCH_TAGS = ("optuna.state", "stage")


def _col(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"


def view_state(search: bool = False, *, metrics=None, tags=None) -> dict:
    """The shared view: the run name wide enough to read its knobs, then the headline metrics,
    the knobs and a few tags as columns (the UI keeps metrics, params and tags in that order),
    newest runs first. Widths apply only to the columns named in `columnOrder`. `metrics` and
    `tags` replace the training (or search) ones, e.g. a lesson's claim metrics."""
    default = (SEARCH_METRICS, SEARCH_TAGS) if search else (TRAIN_METRICS, TRAIN_TAGS)
    metrics, tags = metrics or default[0], tags or default[1]
    chosen = ([_col("metrics", k) for k in metrics] + [_col("params", k) for k in KNOBS]
              + [_col("tags", k) for k in tags])
    order = [_col("attributes", "Run Name"), "runDateAndNestInfo", *chosen]
    widths = {order[0]: 340, "runDateAndNestInfo": 130,
              **{c: 125 if c.startswith("metrics") else 100 for c in chosen},
              _col("params", "data.name"): 125}
    return {"selectedColumns": chosen, "columnOrder": order, "columnWidths": widths,
            "orderByKey": "attributes.start_time", "orderByAsc": False}


def set_experiment_ui(experiment_id: str, note: str, *, search: bool = False,
                      view: dict | None = None, client: MlflowClient | None = None) -> None:
    """Kind tag, shared view (`view`, else that of training or `search`) and description of
    an experiment. The description is rewritten only while it is still ours (missing, or
    unchanged since we wrote it)."""
    client = client or MlflowClient()
    tags = client.get_experiment(experiment_id).tags
    if tags.get(KIND[0]) is None:
        client.set_experiment_tag(experiment_id, *KIND)
    state = json.dumps(view or view_state(search), separators=(",", ":"))
    if tags.get(VIEW_TAG) != state:
        client.set_experiment_tag(experiment_id, VIEW_TAG, state)
    current = tags.get(NOTE)
    if current != note and (current is None or short_digest(current) == tags.get(NOTE_DIGEST)):
        client.set_experiment_tag(experiment_id, NOTE, note)
        client.set_experiment_tag(experiment_id, NOTE_DIGEST, short_digest(note))


def set_run_note(run_id: str, note: str, client: MlflowClient | None = None) -> None:
    (client or MlflowClient()).set_tag(run_id, NOTE, note)


def ui_links(ui_url: str | None, experiment_id: str, run_id: str | None = None) -> dict[str, str]:
    """{"runs": the experiment's runs table (model-training mode, our columns), "run": the
    run's page} in the MLflow UI at `ui_address(ui_url)` ("" gives relative links)."""
    from pipeline.redact import redact

    address = ui_url if ui_url == "" else ui_address(ui_url)
    base = f"{redact(address).rstrip('/')}/#/experiments/{experiment_id}/runs"  # printed
    mode = "workflowType=machine_learning"
    links = {"runs": f"{base}?{mode}&viewStateShareKey={VIEW_KEY}"}
    if run_id:
        links["run"] = f"{base}/{run_id}?{mode}"
    return links


# where `mlflow ui` and `mlflow server` listen unless told otherwise
MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"


def ui_address(ui_url: str | None, tracking_uri: str | None = None) -> str:
    """The one rule for where printed links point: `tracking.ui_url` when set; else, for a
    tracking server (an http(s) store), that server itself, which serves the UI (without any
    user:password); else `mlflow ui`'s own default address."""
    if ui_url:
        return ui_url
    parts = urlsplit(tracking_uri or mlflow.get_tracking_uri())
    if parts.scheme in ("http", "https") and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"
    return MLFLOW_UI_DEFAULT


def ui_command(ui_url: str | None, tracking_uri: str) -> str | None:
    """`mlflow ui --backend-store-uri <store>` serving where the links point (`--host` and
    `--port` when the address is not mlflow ui's default); None for a tracking server, which
    is its own UI."""
    from pipeline.redact import redact

    if urlsplit(tracking_uri).scheme in ("http", "https"):
        return None
    parts, default = urlsplit(ui_address(ui_url, tracking_uri)), urlsplit(MLFLOW_UI_DEFAULT)
    command = f"mlflow ui --backend-store-uri {redact(tracking_uri)}"
    if parts.hostname and parts.hostname != default.hostname:
        command += f" --host {parts.hostname}"
    if (parts.port or 80) != default.port:
        command += f" --port {parts.port or 80}"
    return command


def experiment_of(run_id: str) -> str:
    """The experiment a run of the current store belongs to."""
    return MlflowClient().get_run(run_id).info.experiment_id


def open_hint(ui_url: str | None, experiment_id: str, run_id: str | None = None,
              tracking_uri: str | None = None) -> list[str]:
    """What every command that recorded runs prints last: the store, how to open it in the UI
    and the links (runs table; the run, given one)."""
    from pipeline.redact import redact

    uri = tracking_uri or mlflow.get_tracking_uri()
    links = ui_links(ui_address(ui_url, uri), experiment_id, run_id)
    command = ui_command(ui_url, uri)
    lines = [f"  store: {redact(uri)}",
             f"  UI:    {command}   then open {links['runs']}" if command
             else f"  UI:    {links['runs']}   (the tracking server serves the UI)"]
    if run_id:
        lines.append(f"         this run: {links['run']}")
    return lines
