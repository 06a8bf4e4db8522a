"""Draw one picture per built-in data set into docs/img/datasets/ (run from the repo root).

    python docs/make_dataset_figures.py

Seed 0 and each generator's default parameters, so the pictures show what a config that only
names the data set gets. noisy_diagonal is drawn twice: the noisy training variant and the
clean variant used for dev/test.
"""

import sys
from pathlib import Path

import numpy as np

# Works without `pip install -e .` too: the package sits next to docs/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data import augment, make_dataset  # noqa: E402
from pipeline.plots.data import plot_dataset  # noqa: E402

OUT = Path(__file__).resolve().parent / "img" / "datasets"
PICTURES = {
    "rings": ("rings", {}),
    "noisy_diagonal": ("noisy_diagonal", {}),
    "noisy_diagonal_clean": ("noisy_diagonal", {"variant": "clean"}),
    "circles": ("circles", {}),
    "moons": ("moons", {}),
    "flower": ("flower", {}),
    "spirals": ("spirals", {}),
    "blobs": ("blobs", {}),
    "digits": ("digits", {}),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for file, (name, params) in PICTURES.items():
        ds = make_dataset(name, np.random.default_rng(0), **params)
        title = f"{name} ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else name
        plot_dataset(ds, title=title).savefig(OUT / f"{file}.png", dpi=80)
        print(OUT / f"{file}.png", ds.X.shape, np.bincount(ds.y).tolist())
    # What the image augmentations do: the first row of each digit, shifted and rotated copies.
    ds = make_dataset("digits", np.random.default_rng(0))
    Xa, ya = augment(ds.X[:10], ds.y[:10], ["shift", "small_rotate"], copies=5,
                     rng=np.random.default_rng(0), image_shape=ds.image_shape)
    order = np.argsort(ya, kind="stable")  # each digit: original first, then its 5 copies
    grid = type(ds)(Xa[order], ya[order], ds.classes, ds.feature_names, "digits", ds.image_shape)
    plot_dataset(grid, title="digits: original, then 5 copies (shift + small_rotate)").savefig(
        OUT / "digits_augmented.png", dpi=80)
    print(OUT / "digits_augmented.png", Xa.shape)


if __name__ == "__main__":
    main()
