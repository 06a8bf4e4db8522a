"""Strip outputs and execution counts from notebooks in place (they are committed without).

    python notebooks/strip_outputs.py [paths ...]     (default: every notebooks/*.ipynb)
"""

import json
import sys
from pathlib import Path


def strip(path: Path) -> bool:
    """True if the file changed. Plain JSON (no nbformat needed), written as nbformat does."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if text == path.read_text():
        return False
    path.write_text(text)
    return True


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path(__file__).parent.glob("*.ipynb"))
    for p in paths:
        print(f"{p}: {'stripped' if strip(p) else 'clean'}")
