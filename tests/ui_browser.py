"""The MLflow UI in a real browser, one code path for the check and for the README's pictures.

A store made by the pipeline itself (two trainings, a 3-trial search, its one-time evaluation)
in a temporary directory; `mlflow server` on a free loopback port; headless Chromium (the Debian
package, driven by Playwright: the UI is a React app, the DOM exists only after its JS ran).

    tests/test_ui_browser.py         asserts what `look()` saw (pytest -m slow -k ui_browser)
    python tests/ui_browser.py       the same, then writes docs/img/ui/runs.png and run.png

Every wait is bounded; the server's process group is ended in a `finally`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Labels only the GenAI sidebar shows, and the one only the model-training sidebar shows.
GENAI_ONLY = ("Evaluation runs", "Judges", "Prompts")
TRAINING_ONLY = "Model registry"
WAIT_MS = 90_000  # a loaded 2-core machine renders the first page in 10-40 s

# Run in a child process: the same commands a user types, and MLflow's process-global state
# (tracking URI, active experiment) stays out of the caller.
_STORE = r"""
import json, sys
from mlflow.tracking import MlflowClient
from pipeline.cli import main

conf, quick = sys.argv[1], ["--quiet", "--conf-dir", sys.argv[1]]
for l2 in (0, 3):                             # the L2 lesson, short; the model only once
    assert main(["train", *quick, "training.epochs=400", f"regularization.l2={l2}",
                 "tracking.log_model=false"]) == 0
assert main(["search", *quick, "n_trials=3", "training.epochs=150", "study=demo"]) == 0
assert main(["evaluate", "--conf-dir", conf, "study=demo"]) == 0
client = MlflowClient()
train = client.get_experiment_by_name("nn-pipeline")
search = client.get_experiment_by_name("demo-search")
runs = lambda e: [{"id": r.info.run_id, "name": r.info.run_name,
                   "stage": r.data.tags.get("stage")} for r in client.search_runs([e])]
print(json.dumps({"train_experiment": train.experiment_id, "train_runs": runs(train.experiment_id),
                  "search_experiment": search.experiment_id,
                  "search_runs": runs(search.experiment_id)}))
"""


def make_store(root: Path, timeout: float = 600) -> dict:
    """Fill `root` (mlflow.db, mlruns/, optuna/) with the pipeline; returns the ids and names."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
           "MLFLOW_DISABLE_TELEMETRY": "true", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-c", _STORE, str(ROOT / "conf")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"making the store failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(root: Path, timeout: float = 180):
    """`mlflow server` on a free loopback port over the store in `root`; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
           "--artifacts-destination", str(root / "mlartifacts")]
    log = open(root / "server.log", "w")
    # without MLflow 3's job runner and its ~7 huey consumer processes (GenAI server jobs, not
    # used here): ~20 s of CPU less per start (tests/servers.py NO_JOBS)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # its own group: uvicorn forks a worker
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while get(f"{base}/health")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer on {base}: "
                                   f"{(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except OSError as exc:  # refused while starting, or an HTTP error status
        return getattr(exc, "code", 0) or 0, b""


@contextmanager
def browser(width: int = 1600, height: int = 900):
    """A headless Chromium page with a fresh profile (so no earlier UI state applies)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": width, "height": height})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            context.close()


_CLOSED: set = set()  # pages whose assistant panel was closed once


def close_assistant(page, wait_ms: int = 4000) -> None:
    """The assistant side panel opens on a first visit and hides a third of the page. Once
    closed it stays closed in that browser (seen 2026-12-07: on the next three pages it never
    came back), so later pages only glance for it instead of waiting 4 s each."""
    button = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    try:
        button.first.wait_for(state="visible", timeout=300 if id(page) in _CLOSED else wait_ms)
    except Exception:  # playwright's TimeoutError: the panel is not open
        return
    button.first.click()
    _CLOSED.add(id(page))
    page.wait_for_timeout(300)


def show(page, url: str, *texts: str) -> str:
    """Open `url` in a fresh document (a hash change alone would keep the old DOM), wait until
    every text is on the page, close the assistant; returns the page's visible text."""
    page.goto("about:blank")
    page.goto(url, timeout=WAIT_MS)
    for text in texts:
        page.get_by_text(text, exact=False).first.wait_for(state="visible")
    close_assistant(page)
    return page.locator("body").inner_text()


def links(base: str, experiment_id: str, run_id: str | None = None) -> dict[str, str]:
    """The links the commands print (pipeline.tracking.ui.ui_links)."""
    from pipeline.tracking.ui import ui_links

    return ui_links(base, experiment_id, run_id)


def look(base: str, info: dict, shots: Path | None = None) -> dict:
    """Open the UI as a user would and report what it shows; with `shots`, save the README's
    screenshots runs.png and run.png there."""
    seen: dict = {}
    train_e, search_e = info["train_experiment"], info["search_experiment"]
    train_names = [r["name"] for r in info["train_runs"]]
    run = next(r for r in info["train_runs"] if r["stage"] == "train")
    with browser(width=1990) as page:
        # 1. A plain link without the mode: what the tag alone achieves in a fresh browser.
        plain = f"{base}/#/experiments/{train_e}/runs"
        seen["plain"] = show(page, plain, train_names[0])
        # 2. The printed link: model-training mode and the shared view's columns.
        seen["runs"] = show(page, links(base, train_e)["runs"], *train_names)
        seen["runs_columns"] = page.locator("[col-id]").evaluate_all(
            "els => [...new Set(els.map(e => e.getAttribute('col-id')))]")
        if shots:
            page.wait_for_timeout(1500)
            _save(page, shots / "runs.png", height=470)
        # 3. The search experiment: the parent (trials nested under it).
        parent = next(r["name"] for r in info["search_runs"] if r["stage"] == "search")
        seen["search"] = show(page, links(base, search_e)["runs"], parent)
        # 4. A run's charts: section titles in page order.
        charts = links(base, train_e, run["id"])["run"].replace("?", "/model-metrics?")
        text = show(page, charts, "train_objective")
        seen["chart_sections"] = re.findall(r"^(curves|final|gradients|hidden|Model metrics)"
                                            r"\s*\(\d+\)", text, re.M)
        if shots:
            page.wait_for_timeout(2500)  # the charts draw after their data arrive
            page.set_viewport_size({"width": 1600, "height": 1000})
            page.wait_for_timeout(1500)
            _save(page, shots / "run.png", height=990)
    status, body = get(f"{base}/get-artifact?path=plots/boundary_dev.png&run_uuid={run['id']}")
    seen["artifact"] = (status, body[:8])
    return seen


def _save(page, path: Path, height: int) -> None:
    """A screenshot of the top of the page, reduced to a 256-colour palette (small to commit)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": page.viewport_size["width"],
                                          "height": height})
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def main(out: Path = ROOT / "docs" / "img" / "ui") -> None:
    """Make the store, serve it, check it, write the screenshots; prints what it saw."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nn-pipeline-ui-") as tmp:
        info = make_store(Path(tmp))
        with mlflow_server(Path(tmp)) as base:
            seen = look(base, info, shots=out)
    print(json.dumps({k: v for k, v in seen.items() if k in ("chart_sections", "artifact")},
                     default=str))
    print(f"screenshots in {out} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
