"""The model registry side of `evaluate`: one registered model per task, a new version as
`challenger`, `champion` moved only by the rules of `pipeline.promotion.decide`, and the
decision with the numbers behind it recorded on the version and the run.

Every version carries the evidence a later decision reads back: `test_error`, `test_digest`
(the sealed test split it was scored on) and `task.digest`; a version registered by hand has
none of them, so it is never compared, only guarded by its input signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.promotion import Contender, Decision, Task, decide
from pipeline.tracking import notes


@dataclass(frozen=True)
class Registration:
    name: str           # the registered model (one per task)
    version: str
    decision: Decision
    champion: str | None  # the version holding the champion alias afterwards


def register(run_id: str, task: Task, settings, *, test_error: float, test_digest: str,
             gate: str | None, note: str = "") -> Registration | None:
    """Register the run's logged model under its task's registered model and apply the rules.
    `settings`: the config's `evaluate` section (registered_model prefix, alias,
    challenger_alias, min_improvement); `gate`: None when the dev gate passed, else its text.
    None when the run logged no model (tracking.log_model=false)."""
    client = MlflowClient()
    outputs = getattr(client.get_run(run_id), "outputs", None)
    models = [m.model_id for m in (outputs.model_outputs if outputs else [])]
    if not models:
        client.set_tag(run_id, "registry.version", "none (no model logged)")
        return None
    name = task.model_name(settings.registered_model)
    evidence = {"test_error": repr(float(test_error)), "test_digest": test_digest,
                "task.digest": task.digest, "stage": "final_test",
                "gate": "failed" if gate else "passed"} | ({"gate.detail": gate} if gate else {})
    version = str(mlflow.register_model(f"models:/{models[-1]}", name, tags=evidence).version)
    _describe_model(client, name, task, settings)
    new = _contender(client, name, version)
    aliases = dict(client.get_registered_model(name).aliases)
    holders = [(a, _contender(client, name, str(v))) for a, v in aliases.items()
               if a in (settings.alias, settings.challenger_alias)]
    champion = dict(holders).get(settings.alias)
    decision = decide(new, champion, holders, gate=gate, margin=settings.min_improvement)
    if decision.take_aliases:
        client.set_registered_model_alias(name, settings.challenger_alias, version)
    if decision.promote:
        client.set_registered_model_alias(name, settings.alias, version)
    now = version if decision.promote else champion and champion.version
    _record(client, run_id, name, new, champion, decision, settings, note)
    return Registration(name, version, decision, now)


def _describe_model(client: MlflowClient, name: str, task: Task, settings) -> None:
    """The task identity as tags on the registered model, and its description once."""
    for key, value in _task_tags(task).items():
        client.set_registered_model_tag(name, key, value)
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, notes.registered_model_note(
            name, settings.alias, settings.challenger_alias, task.dataset))


def _task_tags(task: Task) -> dict[str, str]:
    return {"task.dataset": task.dataset, "task.digest": task.digest,
            "task.features": json.dumps(list(task.features))[:100_000],
            "task.classes": json.dumps(list(task.classes))[:100_000]}


def _contender(client: MlflowClient, name: str, version: str) -> Contender:
    """A version's evidence from its tags, and its input signature from its MLmodel file."""
    tags = client.get_model_version(name, version).tags
    error = tags.get("test_error")
    return Contender(version, float(error) if error else None, tags.get("test_digest"),
                     tags.get("task.digest"), _input_schema(name, version))


def _input_schema(name: str, version: str) -> str | None:
    """The version's input schema as JSON; None when it has none or its MLmodel cannot be
    read (a version registered by hand from elsewhere): an unknown schema never matches, so
    such a holder keeps its alias."""
    try:
        info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    except (MlflowException, OSError):
        return None
    return info.signature.inputs.to_json() if info.signature else None


def _record(client: MlflowClient, run_id: str, name: str, new: Contender,
            champion: Contender | None, decision: Decision, settings, note: str) -> None:
    """The decision and the numbers behind it on the version, and where it went on the run."""
    missing = "none"
    tags = {"decision": decision.word, "reason": decision.reason,
            "challenger_test_error": repr(new.test_error),
            "champion_version": champion.version if champion else missing,
            "champion_test_error": repr(champion.test_error) if champion else missing,
            "champion_test_digest": (champion.test_digest or missing) if champion else missing}
    for key, value in tags.items():
        client.set_model_version_tag(name, new.version, key, str(value))
    taken = [a for a, on in ((settings.challenger_alias, decision.take_aliases),
                             (settings.alias, decision.promote)) if on]
    client.update_model_version(name, new.version, description=(
        f"{note} Registry: {decision.word}, {decision.reason}.").strip())
    for key, value in {"registry.version": f"{name}/{new.version}", "registry.model": name,
                       "registry.decision": decision.word, "registry.reason": decision.reason,
                       "registry.alias": ", ".join(taken) or "none"}.items():
        client.set_tag(run_id, key, value)
