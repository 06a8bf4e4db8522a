"""A new local SQLite store is a copy of a template: MLflow's migrations run once per version.

Creating an MLflow SQLite store runs every alembic migration of its schema history (~60
revisions): 1.6-3 s here, 20-35% of a default `train` command that starts in a new directory
(measured in benchmarks/bench_overhead.py). The schema depends only on the MLflow version,
so the first store built on a machine is kept, without its Default experiment (whose artifact
location names the directory it was created in), as `<cache>/mlflow-<version>-store.db`, and
every later new store starts as a copy of it. MLflow then finds its tables at the head
revision, verifies the schema as it does for any store, and creates the Default experiment
for the new location itself.

The cache is `$NN_PIPELINE_CACHE`, else `$XDG_CACHE_HOME/nn-pipeline`, else
`~/.cache/nn-pipeline`. Any failure (read-only home, a URI that is not a local file) falls back
to MLflow's own creation: the template is an optimization, never a requirement.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from pathlib import Path

PREFIX = "sqlite:///"


def cache_dir() -> Path:
    if os.environ.get("NN_PIPELINE_CACHE"):
        return Path(os.environ["NN_PIPELINE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nn-pipeline"


def sqlite_path(uri: str | None) -> Path | None:
    """The file of a plain `sqlite:///<path>` URI; None for anything else."""
    if not uri or not uri.startswith(PREFIX) or "?" in uri or uri == PREFIX + ":memory:":
        return None
    return Path(uri[len(PREFIX):])


def seed_store(uri: str | None) -> bool:
    """Create the SQLite file of `uri` from the template when it does not exist yet.

    True when the store was created from the template; False when nothing was done (the
    store exists, the URI is not a local SQLite file, or the template could not be built)."""
    path = sqlite_path(uri)
    if path is None or path.exists() or not path.parent.is_dir():
        return False
    try:
        template = _template()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(template, tmp)
        try:
            os.link(tmp, path)            # create-if-absent: a concurrent creator wins cleanly
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - any problem: MLflow creates the store itself
        return False
    return True


def _template() -> Path:
    import mlflow

    cache = cache_dir()
    target = cache / f"mlflow-{mlflow.__version__}-store.db"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    build = cache / f".{target.name}.{os.getpid()}.tmp"
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    schema = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database
    level = schema.level  # tables..." on stderr: a store the user did not ask for
    schema.setLevel(logging.WARNING)
    try:
        store = SqlAlchemyStore(f"{PREFIX}{build}", str(cache / "unused-artifacts"))
    finally:
        schema.setLevel(level)
    store.engine.dispose()
    con = sqlite3.connect(build)
    try:  # the Default experiment names the template's directory: MLflow recreates it per store
        with con:
            con.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            con.execute("DELETE FROM experiments WHERE experiment_id = 0")
        con.execute("VACUUM")
    finally:
        con.close()
    os.replace(build, target)
    return target


# Words of the errors a store gives the loser of a create race (SQLAlchemy's IntegrityError
# wrapped by MLflow as RESOURCE_ALREADY_EXISTS, or a server's message): the winner's row is
# there, so reading it back (or trying once more) succeeds.
# what a create lost to another process says: SQLite "UNIQUE constraint failed", PostgreSQL
# "duplicate key value violates unique constraint", MLflow "already exists" / IntegrityError
_LOST = ("already exists", "unique", "duplicate", "integrityerror")


def lost_create_race(exc: BaseException) -> bool:
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_ALREADY_EXISTS" or any(w in str(exc).lower() for w in _LOST)


def retry_lost_create(make, *, pause: float = 0.2):
    """`make()`, again after `pause`, `pause + 1` seconds while it fails by losing a create race
    to another process writing the same row at the same moment; any other error is raised."""
    from pipeline.races import retry_lost_race

    return retry_lost_race(make, lost_create_race, pause=pause)


def experiment_id_of(client, name: str, **create) -> str:
    """The id of experiment `name`, created (with `create`: artifact_location, tags) if it
    does not exist. Safe when several processes create it at once: the loser's "already
    exists" error means the winner's row is there, and its id is read back."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, **create)
    except Exception as exc:
        if not lost_create_race(exc):
            raise
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def run_status(run_id: str) -> str | None:
    """The run's status, None when this store has no such run."""
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient().get_run(run_id).info.status
    except Exception as exc:  # RESOURCE_DOES_NOT_EXIST; a dead server is raised as such
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
