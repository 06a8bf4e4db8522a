"""The local copy of what a run could not send to a tracking server that went away.

`save` writes `mlflow-unsent/<run_id>.json` in the working directory: the tracking URI (password
masked), the reason, the config, the curve points not yet sent and the final metrics when
training had finished. `replay_pending` (called by the next train/search/evaluate against the
same server, once it answers) sends them, ends the run FAILED instead of RUNNING, and renames
the file to `.replayed.json` so it is kept but not sent twice. A file that is not such a record
(cut short, edited, another program's) is renamed `<name>.bad` with one line saying why, and
the command goes on: one bad file blocked every train and search in the directory.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from pipeline.redact import redact

DIR = "mlflow-unsent"


def save(run_id: str, uri: str, reason: str, cfg_yaml: str, rows: list, final: dict | None,
         final_step: int = 0, workdir: Path = Path(".")) -> Path:
    path = workdir / DIR / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "run_id": run_id, "tracking_uri": redact(uri), "reason": reason,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": redact(cfg_yaml), "metric_rows": rows, "final_metrics": final,
        "final_step": final_step}, indent=1))
    return path


def replay_pending(uri: str, workdir: Path = Path("."), err=None) -> list[str]:
    """Replay every kept file of this tracking URI; returns the run ids ended FAILED. A file
    that cannot be replayed (run deleted, server down again) stays for the next command."""
    directory = workdir / DIR
    if not directory.is_dir():
        return []
    from pipeline.tracking.unsent import replay  # mlflow stays behind the tracking edge

    done = []
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".replayed.json"):
            continue
        kept = _read_record(path, err or sys.stderr)
        if kept is None or kept.get("tracking_uri") != redact(uri):
            continue
        try:
            status = replay(kept["run_id"], kept["metric_rows"], kept["final_metrics"],
                            f"tracking server went away mid-run ({kept['reason']}); "
                            f"replayed from {path}", uri, kept["final_step"])
        except Exception as exc:  # the next command tries again
            print(f"note: could not replay {path}: {type(exc).__name__}", file=err or sys.stderr)
            continue
        path.rename(path.with_name(path.stem + ".replayed.json"))
        print(f"note: run {kept['run_id']} (left behind when the tracking server went away): "
              f"{len(kept['metric_rows'])} kept curve points sent from {path}, run {status}",
              file=err or sys.stderr)
        done.append(kept["run_id"])
    return done


# What `save` writes and `replay` reads: key -> accepted types (final_metrics may be null).
_FIELDS = {"run_id": (str,), "tracking_uri": (str,), "reason": (str,), "metric_rows": (list,),
           "final_metrics": (dict, type(None)), "final_step": (int,)}


def _read_record(path: Path, err) -> dict | None:
    """The kept record, or None after renaming a malformed file `<name>.bad` (one line)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        why = _malformed(kept)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if why is None:
        return kept
    bad = path.with_name(path.name + ".bad")
    try:
        path.rename(bad)
        where = f"set aside as {bad}"
    except OSError as exc:  # another command set it aside first, or a read-only directory
        where = f"left in place ({type(exc).__name__} renaming it)"
    print(f"note: {path} is not a record of unsent MLflow writes ({why}); {where}, not "
          "replayed", file=err)
    return None


def _malformed(kept) -> str | None:
    if not isinstance(kept, dict):
        return f"a JSON {type(kept).__name__}, not an object"
    for key, types in _FIELDS.items():
        if not isinstance(kept.get(key), types) or isinstance(kept.get(key), bool):
            return f"{key} missing or not {'/'.join(t.__name__ for t in types)}"
    rows = kept["metric_rows"]
    if not all(isinstance(r, list) and len(r) == 4 and isinstance(r[0], str)
               and all(isinstance(x, (int, float)) for x in r[1:]) for r in rows):
        return "metric_rows must be [key, value, timestamp, step] rows"
    if not all(isinstance(k, str) and isinstance(v, (int, float))
               for k, v in (kept["final_metrics"] or {}).items()):
        return "final_metrics must map names to numbers"
    return None
