"""Pure glue from a Config to prepared data, a trained network, metrics and figures.

`train` (the command), the search objective and evaluate all call these same functions, so a
trial and a run with the same config give the same numbers. Randomness: one `seed` in the
config, split by `numpy.random.SeedSequence(seed).spawn` into one independent stream per
concern (STREAMS), so changing e.g. the init scheme never changes the split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pipeline import data as D
from pipeline.batch_choice import BatchChoice, choose_batch_size
from pipeline.diagnosis import Diagnosis, diagnose, regularizers, resolve_bayes_error
from pipeline.metrics import classification_metrics
from pipeline.nn import Architecture, Model, init_network, never_broke_symmetry
from pipeline.train import FitResult, TrainSettings, fit

# Append only: stream i is SeedSequence(seed).spawn's child i, whatever comes after it, so a
# new stream (holdout) leaves every existing draw unchanged bit for bit.
STREAMS = ("data", "target", "split", "augment", "init", "train", "holdout")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One fresh Generator per concern, derived from the config's seed (same seed, same draws)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


@dataclass(frozen=True)
class Prepared:
    train: D.Split             # standardized, augmented; what the network trains on
    dev: D.Split               # standardized
    test: D.SealedSplit | None  # RAW features, sealed; `open_test_split` opens it. None in the
                                # search's copy: a trial cannot reach it even by accident
    raw_train: D.Split         # raw, un-augmented (lineage, figures, input example)
    raw_dev: D.Split           # raw
    standardizer: D.Standardizer  # fitted on raw_train only (identity when data.standardize
                                  # is false); travels with the model
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    image_shape: tuple[int, int] | None
    name: str
    bayes_error: float | None = None  # the TRAIN source's declared Bayes error (None: unknown)

    @property
    def digests(self) -> dict[str, str]:
        """Digests of the RAW splits as drawn (train before augmentation); no "test" entry in
        the search's copy, which holds no test split (`test=None`)."""
        out = {"train": self.raw_train.digest, "dev": self.raw_dev.digest}
        if self.test is not None:
            out["test"] = self.test.digest
        return out


@dataclass(frozen=True)
class Trained:
    fit: FitResult             # history, stop reason, best epoch
    model: Model               # the returned network + standardizer + labels: predicts raw X
    metrics: dict[str, float]  # train_/dev_ loss, accuracy, error; best_epoch, epochs_run
    diagnosis: Diagnosis
    batch: BatchChoice | None = None  # the batch size chosen for a null training.batch_size
                                      # from the free memory (None: not chosen, as configured)


def prepare(cfg) -> Prepared:
    """Data -> split -> standardize (train statistics) -> augment train. The test stays sealed.

    The config is valid (every bound, name and cross-field rule is checked by `load_config`);
    what only data can tell (a table's columns, data.feature_scale's length against the
    features, a generator's parameter values) is a one-line ValueError here, and commands call
    this before they create any run, study or file."""
    rngs = streams(cfg.seed)
    dc = cfg.data
    source = _load_source(dc.name, dc.params, dc, rngs["data"], dc.feature_scale)
    t = resolve_target(dc)
    if t is not None:
        target = _load_source(t.name or dc.name, {**dc.params, **t.params}, t if t.name else dc,
                              rngs["target"], dc.feature_scale)
        # all of the source trains; the target is cut dev : test in the config's proportion
        total = dc.dev + dc.test
        splits = D.split_with_target(source, target, rngs["split"], dev=dc.dev / total,
                                     test=dc.test / total, dev_count=dc.dev_count,
                                     test_count=dc.test_count)
    else:
        splits = D.split_dataset(source, rngs["split"], train=dc.train, dev=dc.dev, test=dc.test,
                                 dev_count=dc.dev_count, test_count=dc.test_count)
    n = splits.train.X.shape[1]
    std = D.fit_standardizer(splits.train.X) if dc.standardize else D.Standardizer.identity(n)
    X_aug, y_aug = splits.train.X, splits.train.y
    if cfg.augment.copies and cfg.augment.names:
        X_aug, y_aug = D.augment(X_aug, y_aug, list(cfg.augment.names), copies=cfg.augment.copies,
                                 rng=rngs["augment"], image_shape=source.image_shape,
                                 **cfg.augment.params)
    train = D.Split.from_arrays(std.transform(X_aug), y_aug, "train")
    dev = D.Split.from_arrays(std.transform(splits.dev.X), splits.dev.y, "dev")
    return Prepared(train, dev, splits.test, splits.train, splits.dev, std, source.classes,
                    source.feature_names, source.image_shape, source.name, source.bayes_error)


def resolve_target(dc):
    """The dev/test source of a DataConfig, or None (split one data set three ways)."""
    if dc.target != "auto":
        return dc.target
    from pipeline.config import SourceConfig

    has_variant = dc.name != "table" and "variant" in D.dataset_params(dc.name)
    return SourceConfig(params={"variant": "clean"}) if has_variant else None


def table_paths(cfg) -> dict[str, str]:
    """{"data.path": ..., "data.target.path": ...}: the files a config reads (absolute, as
    the config holds them), keyed by their config key."""
    dc, t = cfg.data, resolve_target(cfg.data)
    paths = {"data.path": dc.path} if dc.name == "table" else {}
    if t is not None and t.name == "table":
        paths["data.target.path"] = t.path
    return paths


def draw_holdout(cfg, prepared: Prepared, n_samples: int) -> D.Split:
    """A second held-out set: `n_samples` fresh rows from the source dev is cut from (the
    target, e.g. noisy_diagonal's clean variant, else the data set itself), drawn from its own
    stream ("holdout"), standardized with the training statistics. Nothing in training sees
    it (early stopping chooses on dev), and it is not the sealed test split, so a lesson can
    score an arm that selected on dev here without optimism. Needs a generator that draws new
    points: a table or digits (a fixed pool of rows) would repeat train/dev/test rows."""
    dc = cfg.data
    t = resolve_target(dc)
    name = (t.name or dc.name) if t is not None else dc.name
    if name in ("table", "digits"):
        raise ValueError(f"holdout needs a generated data set that draws new points, got "
                         f"data {name!r} (a fixed pool of rows would repeat train/dev/test rows)")
    params = {**dc.params, **t.params} if t is not None else dict(dc.params)
    rng = streams(cfg.seed)["holdout"]
    ds = _load_source(name, {**params, "n_samples": n_samples}, dc, rng, dc.feature_scale)
    rows = rng.permutation(ds.n_samples)[:n_samples]  # noisy_diagonal draws n + noise rows
    X, y = ds.X[rows], ds.y[rows]
    return D.Split.from_arrays(prepared.standardizer.transform(X), y, "holdout")


def _load_source(name, params, where, rng, scale=None):
    if name == "table":  # the config made sure a table source has its path and label
        frame = D.read_table(where.path)
        ds = D.dataset_from_frame(frame, label=where.label, features=where.features,
                                  name=str(where.path))
    else:
        ds = D.make_dataset(name, rng, **params)
    return ds if scale is None else _scaled(ds, scale)


def _scaled(ds, scale: tuple[float, ...]):
    """`data.feature_scale`: multiply raw feature j by scale[j] (before split and statistics)."""
    if len(scale) != ds.n_features:
        raise ValueError(f"data.feature_scale needs one multiplier per feature ({ds.n_features} "
                         f"for {ds.name}), got {len(scale)}: {list(scale)}")
    return dataclasses.replace(ds, X=ds.X * np.asarray(scale))  # (m, n)


def settings(cfg) -> TrainSettings:
    """The config's training and regularization sections as TrainSettings: each field is taken
    by name (TrainSettings' fields ARE those sections' keys), already validated by the config;
    only eval_every's "auto" is resolved to a number of epochs here."""
    from pipeline.config import eval_cadence

    values = {**dict(cfg.training), **dict(cfg.regularization),
              "eval_every": eval_cadence(cfg.training.eval_every, cfg.training.epochs)}
    return TrainSettings(**{f.name: values[f.name] for f in dataclasses.fields(TrainSettings)})


def architecture(cfg, prepared: Prepared):
    """(n_features, *hidden, n_out): one sigmoid output for 2 classes, else softmax."""
    k = len(prepared.classes)
    n_out = 1 if k == 2 else k
    return Architecture((prepared.train.X.shape[1], *cfg.model.hidden, n_out),
                        cfg.model.activation)


def initial_network(cfg, prepared: Prepared):
    """The network `train` starts from: the config's init drawn from the seed's "init" stream
    (that stream draws nothing else, so this is the very network that trains; a gradient check
    at initialization checks exactly this one)."""
    return init_network(architecture(cfg, prepared), cfg.model.init, streams(cfg.seed)["init"],
                        scale=cfg.model.init_scale, dtype=np.dtype(cfg.training.dtype).type)


def batch_choice(cfg, prepared: Prepared, free_memory: int | None) -> BatchChoice | None:
    """The batch size for a null `training.batch_size` given the free memory in bytes (read
    by the command line), or None when the config sets one or no free memory is known."""
    if cfg.training.batch_size is not None or free_memory is None:
        return None
    return choose_batch_size(architecture(cfg, prepared), prepared.train.X.shape[0],
                             cfg.training.dtype, cfg.regularization.keep_prob, free_memory)


def train(cfg, prepared: Prepared, callbacks: Sequence[Callable] = (), stop=None,
          free_memory: int | None = None) -> Trained:
    """Init -> fit with early stopping on dev -> the model -> train/dev metrics -> diagnosis.
    `stop`: a `pipeline.stop.Stop` that `fit` checks every epoch (None: never stops).
    `free_memory` (bytes, read by the command line): a null batch_size becomes the full batch
    only when its buffers fit (`batch_choice`); None keeps the config's (null = full batch)."""
    rngs = streams(cfg.seed)
    arch = architecture(cfg, prepared)
    net = initial_network(cfg, prepared)
    batch, chosen = batch_choice(cfg, prepared, free_memory), settings(cfg)
    if batch is not None:
        chosen = dataclasses.replace(chosen, batch_size=batch.rows)
    result = fit(net, prepared.train.X, prepared.train.y, prepared.dev.X, prepared.dev.y,
                 chosen, rngs["train"], callbacks=callbacks, stop=stop)
    std = prepared.standardizer
    model = Model(result.network, std.mean, std.std, tuple(prepared.classes),
                  tuple(prepared.feature_names))
    metrics = {**_scores(model, prepared.train), **_scores(model, prepared.dev),
               "best_epoch": float(result.best_epoch), "epochs_run": float(result.epochs_run)}
    bayes, source = resolve_bayes_error(cfg.diagnosis.bayes_error, prepared.bayes_error)
    reg = cfg.regularization
    diagnosis = diagnose(metrics["train_error"], metrics["dev_error"], bayes_error=bayes,
                         threshold=cfg.diagnosis.threshold,
                         symmetric=never_broke_symmetry(result.params, arch.n_hidden),
                         regularization=regularizers(reg.l2, reg.l1, reg.keep_prob),
                         bayes_source=source)
    return Trained(result, model, metrics, diagnosis, batch)


def split_metrics(trained: Trained, split) -> dict[str, float]:
    """{<split.name>_loss, _accuracy, _error} of the trained network on a STANDARDIZED split."""
    return _scores(trained.model, split)


def _scores(model: Model, split) -> dict[str, float]:
    return classification_metrics(model.network.predict_proba(split.X), split.y, split.name)


def open_test_split(prepared: Prepared, purpose: str):
    """Unseal the test split and standardize it with the training statistics (evaluate only)."""
    raw = prepared.test.unseal(purpose)
    return D.Split.from_arrays(prepared.standardizer.transform(raw.X), raw.y, raw.name)


def figures(cfg, prepared: Prepared, trained: Trained) -> dict:
    """{"plots/<name>.png": Figure}: boundaries (2-D) or confusion matrices, curves, grad norms."""
    from pipeline.plots import training as P  # matplotlib only when figures are wanted

    figs = {"plots/learning_curves.png": P.learning_curves(trained.fit.history,
                                                           trained.fit.best_epoch),
            "plots/gradient_norms.png": P.gradient_norms(trained.fit.history)}
    for split in (prepared.raw_train, prepared.raw_dev):
        if split.X.shape[1] == 2:
            figs[f"plots/boundary_{split.name}.png"] = P.decision_boundary(
                trained.model.predict, split.X, split.y, prepared.classes,
                title=f"{prepared.name}: decision boundary over {split.name} ({split.n} points)")
        else:
            y_pred = trained.model.predict(split.X)
            figs[f"plots/confusion_{split.name}.png"] = P.confusion(
                split.y, y_pred, prepared.classes, title=f"{prepared.name}: {split.name}")
    return figs

