"""A finished training as files, and back: what the run cache stores so that a hit returns the
same `stages.Trained` (train) or `lessons.execute.ArmRun` (a lesson arm) without training.

One `.npz` file, no pickle (one download: a folder costs the store a listing too): the
parameter vector, the standardizer and every history series as arrays, so weights and curves
come back with their dtypes and bits, and `meta`, JSON bytes (metrics, stop, diagnosis, the
model's description, an arm's report): Python's JSON writes a float as its shortest round-trip
repr (NaN and inf included), so metrics come back bit for bit too.
What the data gives (the raw training split of an arm's figure) is not stored: the caller
prepared the data to compute the key and passes it back in.

Core module: json and numpy only.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np

from pipeline.diagnosis import Diagnosis
from pipeline.nn import Architecture, Model, Network

FILE = "result.npz"
HISTORY = "history/"


def _model_file(model: Model, history: dict, meta: dict) -> bytes:
    meta = {**meta, "model": model.describe()}
    arrays = {"theta": model.network.theta, "mean": model.mean, "std": model.std,
              "meta": np.frombuffer(json.dumps(meta, default=float).encode(), dtype=np.uint8)}
    arrays.update({HISTORY + k: np.asarray(v) for k, v in history.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _read(data: bytes) -> tuple[dict, Model, dict]:
    """(meta, model, history) from the file's bytes; any damage raises (the caller retrains)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    d = meta["model"]
    net = Network(Architecture(tuple(d["layer_sizes"]), d["hidden_activation"]), arrays["theta"])
    model = Model(net, arrays["mean"], arrays["std"], tuple(d["classes"]),
                  tuple(d["feature_names"]))
    history = {k[len(HISTORY):]: v.tolist() for k, v in arrays.items() if k.startswith(HISTORY)}
    return meta, model, history


def pack_trained(trained) -> bytes:
    """A `stages.Trained` as the bytes of FILE."""
    fit = trained.fit
    meta = {"kind": "train", "metrics": trained.metrics, "best_epoch": fit.best_epoch,
            "stop_reason": fit.stop_reason, "stop_message": fit.stop_message,
            "epochs_run": fit.epochs_run,
            "diagnosis": None if trained.diagnosis is None
            else dataclasses.asdict(trained.diagnosis)}
    return _model_file(trained.model, fit.history, meta)


def unpack_trained(data: bytes):
    """The `stages.Trained` that `pack_trained` stored."""
    from pipeline.stages import Trained
    from pipeline.train import FitResult

    meta, model, history = _read(data)
    fit = FitResult(model.network, history, meta["best_epoch"], meta["stop_reason"],
                    meta["stop_message"], meta["epochs_run"])
    diagnosis = None if meta["diagnosis"] is None else Diagnosis(**meta["diagnosis"])
    return Trained(fit, model, meta["metrics"], diagnosis)


# An ArmRun's fields that the file holds: every one but those the job, the data or the reuse
# give back (so a field added to ArmRun is stored without a second list to keep in step)
NOT_STORED = ("arm", "seed", "history", "overrides", "cfg_yaml", "model", "reused_from",
              "digests")


def arm_fields() -> tuple[str, ...]:
    from pipeline.lessons.execute import ArmRun

    return tuple(f.name for f in dataclasses.fields(ArmRun) if f.name not in NOT_STORED)


def pack_arm(run) -> bytes:
    """A lesson's `ArmRun` as the bytes of FILE (its model's network and standardizer; the
    raw training points come from the data when it is read back)."""
    meta = {"kind": "lesson_arm", **{f: getattr(run, f) for f in arm_fields()},
            "data_name": run.model.data_name}
    return _model_file(run.model.trained, run.history, meta)


def unpack_arm(data: bytes, job, prepared, reused_from: str = ""):
    """The `ArmRun` of `job` that `pack_arm` stored; `prepared` is the job's data."""
    from pipeline.lessons.execute import ArmRun, BoundaryModel as ArmModel

    meta, model, history = _read(data)
    figure_model = ArmModel(model, prepared.raw_train.X, prepared.raw_train.y,
                            prepared.classes, meta["data_name"])
    kept = {f: meta[f] for f in arm_fields()}
    return ArmRun(job.arm, job.seed, history=history, overrides=job.overrides,
                  cfg_yaml=job.cfg_yaml, model=figure_model, reused_from=reused_from,
                  digests=prepared.digests, **kept)
