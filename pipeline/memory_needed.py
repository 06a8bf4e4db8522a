"""Refuse, before any run exists, a training the machine cannot hold: the memory `fit` will need
(pipeline/nn/footprint.py, from the config and the prepared data's shape) against the memory
available, which the command line reads (pipeline/commands/available_memory.py) and passes in.

Without it a network too large (model.hidden=[100000, 100000]: 10^10 parameters) died in its
first allocation with a MemoryError traceback, after its MLflow run was created: a FAILED run.
"""

from __future__ import annotations

from pipeline.batch_choice import size_text
from pipeline.nn.footprint import Footprint, estimate
from pipeline.stages import architecture


def footprint(cfg, prepared, batch=None) -> Footprint:
    """The estimate for this config on this data (the network `stages.train` builds); `batch`:
    the `stages.batch_choice` a null training.batch_size resolves to (None: the config's)."""
    sizes = architecture(cfg, prepared).layer_sizes    # (n_features, *hidden, n_out)
    reg, tr = cfg.regularization, cfg.training
    n_hidden = len(cfg.model.hidden)
    keep = reg.keep_prob if isinstance(reg.keep_prob, tuple) else (reg.keep_prob,) * n_hidden
    return estimate(sizes, prepared.train.X.shape[0], prepared.dev.X.shape[0],
                    batch_size=tr.batch_size if batch is None else batch.rows,
                    optimizer=tr.optimizer,
                    itemsize=8 if tr.dtype == "float64" else 4,
                    dropout=[p < 1.0 for p in keep], early_stopping=tr.patience is not None,
                    l1_prox=reg.l1 > 0 and tr.optimizer == "gd")


def check_memory(cfg, prepared, available: int | None, batch=None) -> Footprint:
    """The footprint, or ValueError (one line) when it exceeds `available` bytes: the key of
    the largest part first, the estimate and its parts, the memory available, what to lower.
    `available` None (unknown on this system): no check. `batch`: as for `footprint`."""
    need = footprint(cfg, prepared, batch)
    if available is None or need.total <= available:
        return need
    tr, m, m_dev = cfg.training, prepared.train.X.shape[0], prepared.dev.X.shape[0]
    rows = tr.batch_size if batch is None else batch.rows
    batch = m if rows is None else min(rows, m)
    parts = {
        "parameters": (need.parameters, f"model.hidden={list(cfg.model.hidden)}",
                       f"parameters, gradient and {tr.optimizer} state"
                       f" {size_text(need.parameters)}", "lower model.hidden"),
        "training": (need.training, f"training.batch_size={tr.batch_size or 'null'}",
                     f"training pass on batches of {batch} rows {size_text(need.training)}",
                     "lower training.batch_size" if tr.batch_size else
                     f"set training.batch_size (null trains on all {m} rows at once)"),
        "evaluation": (need.evaluation, f"data size ({m} train rows, {m_dev} dev rows)",
                       f"evaluation of {m} train + {m_dev} dev rows "
                       f"{size_text(need.evaluation)}",
                       "use fewer rows or a smaller model.hidden"),
    }
    _, key, _, advice = max(parts.values(), key=lambda part: part[0])
    detail = "; ".join(part[2] for part in parts.values())
    raise ValueError(f"{key}: the network needs about {size_text(need.total)} of memory to "
                     f"train ({detail}), but {size_text(available)} is available; {advice}")
