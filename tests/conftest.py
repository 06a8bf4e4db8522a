"""Shared fixtures. Helpers append below; keep each fixture small and explain why it exists."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# One BLAS thread, as every command sets (pipeline/cli.py main): the tests' matrices are
# small, and with busy cores a second OpenBLAS thread spins (25x slower trainings measured).
for _key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_key, "1")

import numpy as np  # noqa: E402 - after the thread settings, which numpy reads at import
import pytest

# MLflow phones home unless told not to; tests must not depend on the network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# Temporary files (tmp_path, and those of the commands the tests start) in memory when the
# machine has a writable /dev/shm and no TMPDIR was chosen: every MLflow SQLite commit and
# every Optuna journal append is an fsync, 3 ms each on this machine's disk, and three test
# files alone make 3,340 of them (strace -c). The tests check what is written, not that the
# disk survives a power cut; the durability path is the same code on either filesystem.
def _roomy_shm() -> bool:
    """A writable /dev/shm with room for the suite's stores (a container's default is 64 MB,
    which would end tests in a full disk that is not theirs)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return False
    return os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize >= 2 << 30


if "TMPDIR" not in os.environ and _roomy_shm():
    os.environ["TMPDIR"] = "/dev/shm"
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again (pytest's tmp_path root too)
# New SQLite stores are copies of a template built once (pipeline/tracking/store.py); tests
# keep that template in a temporary directory of their own, never in the user's cache.
os.environ.setdefault("NN_PIPELINE_CACHE", tempfile.mkdtemp(prefix="nn-pipeline-cache-"))


# Rough seconds of the slow tests that take longest, on a quiet 2-core machine under xdist
# (--durations; a loaded machine scales them all). Only the order of the run depends on this
# table (pytest_collection_modifyitems below); a slow test not listed counts as UNLISTED.
# Keys are prefixes of node ids. Tests in an xdist_group run as their group's unit, which
# xdist schedules before every single test (largest group first), so they are not listed.
LONGEST = {
    "test_scaleout_server.py::test_an_independent_worker": 60,   # suitea: the costliest one
    "test_faults_lesson_pool.py::test_a_dead_worker": 55,
    "test_scaleout_faults.py::test_child_runs": 60,
    "test_faults_tracking.py::test_the_server_dies": 60,
    "test_faults_search_parent.py::": 60,
    "test_scaleout_faults.py::test_kill_9": 60,
    "test_notebooks.py::test_notebook_runs_in_a_kernel_shows_its_figures_and_its_claims_hold"
    "[07-search-and-evaluate.ipynb]": 22,
    "test_notebooks.py::test_notebook_runs_in_a_kernel_shows_its_figures_and_its_claims_hold"
    "[03-bias-variance.ipynb]": 16,
    "test_notebooks.py::test_notebook_runs_in_a_kernel_shows_its_figures_and_its_claims_hold"
    "[09-early-stopping.ipynb]": 15,
    # shorter than an unlisted slow test: these run last of the slow ones
    "test_notebooks.py::test_notebook_runs_in_a_kernel_shows_its_figures_and_its_claims_hold"
    "[06-gradient-checking.ipynb]": 8,
    "test_notebooks.py::test_notebook_runs_in_a_kernel_shows_its_figures_and_its_claims_hold"
    "[04-normalization.ipynb]": 7,
    "test_daily_commands.py::test_an_undeclared_p_is_explained": 7,
    "test_run_cache.py::test_the_experiment_command_reuses_arms": 6,
    "test_notebooks.py::test_notebook_runs_in_a_kernel_shows_its_figures_and_its_claims_hold"
    "[01-initialization.ipynb]": 6,
    "test_cli.py::test_wheel_ships_the_config": 5,
    "test_train.py::test_benchmark_quick_code_path": 5,
    "test_daily_commands.py::test_a_missing_declared_parameter": 4,
    "test_daily_commands.py::test_search_parents_of_one_study": 4,
    "test_lessons.py::test_two_workers_give_the_same_numbers_as_one": 3.5,
    "test_lesson_earlystop.py::test_the_tradeoff_direction": 3,
    "test_lesson_earlystop.py::test_early_stopping_direction": 1.6,
    "test_overhead.py::": 1.4,
    "test_memory_scaling.py::": 1.2,
    "test_run_cache.py::test_a_search_never_looks_in_the_cache": 0.6,
}
UNLISTED = 10


def _expected_seconds(item) -> float:
    return next((v for k, v in LONGEST.items() if k in item.nodeid), UNLISTED)


def pytest_collection_modifyitems(config, items):
    """Under xdist, the slow tests longest first (LONGEST), then the rest (stable order
    otherwise). xdist hands work out in collection order (after the xdist_group groups,
    largest first) and queues up to 3 tests on a worker, so the minute-long end-to-end tests
    start early and the hundreds of sub-second tests fill in at the end, instead of two long
    tests deciding the suite's last minutes on one worker while the other waits. A run
    without xdist keeps the file order (each module's tests together, so a module fixture is
    built once)."""
    if hasattr(config, "workerinput"):  # an xdist worker: its order is the one scheduled
        items.sort(key=lambda item: (item.get_closest_marker("slow") is None,
                                     -_expected_seconds(item)))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator per test: tests never share random state."""
    return np.random.default_rng(0)


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


def _mlflow_state_restorer():
    """Snapshot MLflow's process-global state; return a function that puts it back.

    `mlflow.set_tracking_uri` and `mlflow.set_experiment` change module globals AND export
    environment variables, so a test (or a module-scoped store fixture) that points MLflow at
    its own store would otherwise leak that store into every later test: a later
    `MlflowClient()` then reads another test's runs.
    """
    import sys

    env = {k: os.environ.get(k) for k in _MLFLOW_ENV}
    utils = sys.modules.get("mlflow.tracking._tracking_service.utils")
    fluent = sys.modules.get("mlflow.tracking.fluent")
    uri = getattr(utils, "_tracking_uri", None)
    experiment = getattr(fluent, "_active_experiment_id", None)

    def restore() -> None:
        mlflow = sys.modules.get("mlflow")
        if mlflow is None:
            return
        while mlflow.active_run():
            mlflow.end_run()
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # Private attributes, touched in tests only: there is no public "unset".
        sys.modules["mlflow.tracking._tracking_service.utils"]._tracking_uri = uri
        sys.modules["mlflow.tracking.fluent"]._active_experiment_id = experiment

    return restore


@pytest.fixture(autouse=True, scope="module")
def _isolate_mlflow_per_module():
    restore = _mlflow_state_restorer()
    yield
    restore()


@pytest.fixture(autouse=True)
def _isolate_mlflow_per_test():
    restore = _mlflow_state_restorer()
    yield
    restore()


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """A real MLflow SQLite store in a temp dir (the file:// store is refused by MLflow 3.17).

    The test also runs in that dir: with a SQLite store MLflow puts artifacts (figures,
    models) in ./mlruns of the working directory, which was the checkout."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow  # a URI set by mlflow.set_tracking_uri elsewhere would win over the env var

    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(scope="session")
def new_store():
    """`new_store(uri)`: create the SQLite store of `uri` as the commands do, a copy of the
    session's template (pipeline/tracking/store.py), and return `uri`. A test that opens a
    store with MlflowClient itself, before any command, otherwise runs MLflow's ~60
    migrations (1.6 s on a quiet core, 6-8 s at load 10) for a store whose schema it does not
    test. Session-scoped so module-scoped store fixtures can use it too."""
    from pipeline.tracking.store import seed_store

    def make(uri: str) -> str:
        seed_store(uri)
        return uri

    return make


@pytest.fixture(scope="session")
def _lesson_cache_store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('lesson-run-cache') / 'mlflow.db'}"


@pytest.fixture
def lesson_run_cache(_lesson_cache_store, monkeypatch) -> str:
    """The tracking URI of one run-cache store per test process (pipeline/tracking/cache.py),
    also set as $MLFLOW_TRACKING_URI for the test (which every command and the notebooks'
    `notebook_cache` read). A full lesson test and the notebook of the same lesson at its
    defaults train the same (arm, seed) jobs; in the same xdist group ("lesson_run_cache")
    whichever runs second reuses the first one's results, bit for bit, as a user re-running a
    notebook does. Each still trains alone when run alone (-k, -n 0 on one file)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _lesson_cache_store)
    return _lesson_cache_store


@pytest.fixture
def gone_owner() -> str:
    """The owner text (`host:pid:start`) of a process that has exited: a worker killed
    mid-trial wrote it first thing in its trial. An unowned trial is a live worker's for
    a minute (search/storage.py UNOWNED_GRACE), so a test of a dead one sets this owner."""
    from pipeline.owner import owner

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    text = owner(child.pid)
    child.kill()
    child.wait()
    return text


@pytest.fixture
def search_cfg(tmp_path):
    """A factory of tiny search configs (200 points, 60 epochs: a trial takes ~0.1 s) whose
    study lives in a journal file in tmp_path. `space=` writes a search-space YAML there;
    `search_cfg.args(...)` gives the same settings as key=value strings for the CLI. MLflow
    goes wherever $MLFLOW_TRACKING_URI points (use the tracking_uri fixture)."""
    from pathlib import Path

    from pipeline.config import load_config

    conf = Path(__file__).resolve().parents[1] / "conf"

    def args(*overrides: str, space: str | None = None) -> list[str]:
        base = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=60",
                "training.eval_every=5",
                "training.patience=4", f"search.storage={tmp_path / 'study.journal'}",
                "search.study=tiny"]
        if space is not None:
            path = tmp_path / f"space{abs(hash(space))}.yaml"
            path.write_text(space)
            base.append(f"search.space={path}")
        return [*base, *overrides]

    def make(*overrides: str, space: str | None = None):
        return load_config(args(*overrides, space=space), conf_dir=conf)

    make.args = args
    return make


_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
# Left by Python, pytest and pip themselves, not by a test.
_HARMLESS = ("__pycache__", ".pytest_cache", ".egg-info")


def _untracked(root) -> set[str] | None:
    """Untracked and ignored files of the checkout, one by one (so a new run directory inside
    an existing mlruns/ counts); None without git."""
    import subprocess

    try:
        done = subprocess.run(["git", "status", "--porcelain", "--ignored", "-uall"], cwd=root,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    paths = {line[3:] for line in done.stdout.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if not any(h in p for h in _HARMLESS)}


@pytest.fixture(autouse=True, scope="session")
def _checkout_stays_clean():
    """Tests write only under their tmp dirs: a run directory in the checkout's mlruns/ (an
    MLflow SQLite store puts artifacts in ./mlruns of the working directory), an mlflow.db or
    an optuna/ journal left by the suite fails it, naming the paths."""
    before = _untracked(_ROOT)
    yield
    after = _untracked(_ROOT)
    if before is not None and after is not None and after - before:
        pytest.fail(f"the test suite wrote into the checkout {_ROOT}: {sorted(after - before)} "
                    "(write under tmp_path; chdir there before MLflow or Optuna calls)",
                    pytrace=False)


# Real PostgreSQL database and `mlflow server` fixtures for the scale-out tests (tests/servers.py).
from servers import pg_database, tracking_server  # noqa: E402,F401


def pytest_terminal_summary(terminalreporter):
    """Say plainly, last, what a machine without Chromium skipped and how to run it: the
    README's test command is the whole suite, and a skip hidden in the counts reads as a pass."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "chromium" in str(getattr(r, "longrepr", "")).lower()]
    if skipped:
        terminalreporter.write_line(
            f"NOTE: {len(skipped)} MLflow UI browser test(s) SKIPPED: no Chromium on this "
            "machine; run `apt-get install -y chromium` (as .ci/run does) to run them.",
            yellow=True, bold=True)


@pytest.fixture(autouse=True)
def _sys_path_restored():
    """Loading a pyfunc model puts its logged code first on sys.path (MLflow's code_paths) for
    good: a later test's spawned workers (lessons, searches) then imported that copy of
    `pipeline` instead of the checkout's. Every test gets its path and `pipeline` modules back
    (tests/test_daily_commands.py's `own_sys_path` did this for its own tests only)."""
    path = list(sys.path)
    ours = {k: v for k, v in sys.modules.items() if k == "pipeline" or k.startswith("pipeline.")}
    yield
    sys.path[:] = path
    for name in [k for k in sys.modules if k == "pipeline" or k.startswith("pipeline.")]:
        # only a module loaded from elsewhere (a model's logged code/) goes: one of the
        # checkout's imported during the test stays, as later tests patch it by name
        if not str(getattr(sys.modules[name], "__file__", "") or "").startswith(_PACKAGE_DIR):
            del sys.modules[name]
    sys.modules.update(ours)


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1] / "pipeline")
