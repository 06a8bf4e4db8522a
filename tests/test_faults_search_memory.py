"""A search whose base network does not fit in memory is refused before a study or a run
exists (issue 17 item 12: it was a MemoryError traceback with a FAILED parent and trial)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_search_of_a_network_too_large_for_memory_is_refused_up_front(tmp_path):
    store = tmp_path / "m.db"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "search", "--quiet", "--conf-dir", str(ROOT / "conf"),
         f"tracking.uri=sqlite:///{store}", f"search.storage=journal:{tmp_path / 'j.log'}",
         "search.study=huge", "n_trials=1", "model.hidden=[100000,100000]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(err) == 1 and err[0].startswith("error: model.hidden=[100000, 100000]: the "
                                               "network needs about"), err
    assert "Traceback" not in done.stderr and "available" in err[0]
    assert not store.exists() and not (tmp_path / "j.log").exists()  # no study, no run
