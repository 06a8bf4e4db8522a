"""A resumed study must log into the tracking store that holds its runs.

A journal (or any Optuna storage) keeps the study apart from MLflow: resumed with another
`tracking.uri`, or after the MLflow database was deleted, the study still names its parent
runs and its best trial's run, which this store does not hold. The search then trained every
trial and failed at the summary with "Run with id=... not found", leaving a FAILED parent and
the new trials' runs in the wrong store. Checked before anything is written, it is one line.

Refused rather than continued under a new parent in this store: the study's runs would then
be split over two stores, and its best trial, which `evaluate` and `reproduce` start from,
would name a run this store cannot show. A user who really wants a fresh start in this store
chooses a new study name (the old one stays as it is in the journal).
"""

from __future__ import annotations

from pipeline.redact import redact
from pipeline.search.record import StudyRecord

_LOOKED_UP = 20  # the latest parents asked for: one found is enough, none of 20 is a verdict


def check_home_store(study, spec_label: str, tracking_uri: str | None) -> None:
    """Raise ValueError (one line) when `study` has parent runs and the tracking store (the
    given `tracking.uri`, else MLflow's default) holds none of them. A new study, or one
    whose searches never opened a parent, passes."""
    from pipeline.tracking.present import first_present, resolved_uri

    parents = [p.run_id for p in StudyRecord.load(study).parent_runs]
    if not parents:
        return
    uri = resolved_uri(tracking_uri)
    if first_present(uri, parents[::-1][:_LOOKED_UP]) is not None:
        return
    name = study.study_name
    raise ValueError(
        f"search.study {name!r} ({spec_label}) was tracked in another MLflow store: "
        f"{redact(uri)} holds none of its {len(parents)} parent run(s) (last {parents[-1]}); "
        "set tracking.uri (or MLFLOW_TRACKING_URI) to the store the study used, or choose a "
        "new search.study to start afresh here; nothing was run or changed")
