"""The numeric core: a fully-connected network in NumPy (numpy only; no mlflow, no optuna).

Samples-first at the public boundary: X (m, n_features), integer labels y (m,),
Z = A_prev @ W + b. One `Network` (architecture + one flat parameter vector), one pass
(layers.py, each step's forward beside its backward), one `Model` for prediction and serving.
"""

from pipeline.nn.activations import ACTIVATIONS, get_activation, sigmoid
from pipeline.nn.gradcheck import (BlockResult, GradCheckReport, gradient_check,
                                   relative_error, verdict)
from pipeline.nn.initializers import INITIALIZERS, init_network
from pipeline.nn.layers import keep_per_layer
from pipeline.nn.losses import (Penalty, cross_entropy_from_logits, cross_entropy_from_probs,
                                labels_from_probs, penalty, weight_sparsity)
from pipeline.nn.model import Model, source_digest
from pipeline.nn.network import Architecture, Network, Params
from pipeline.nn.optim import OPTIMIZERS, make_optimizer
from pipeline.nn.signal import hidden_signal
from pipeline.nn.symmetry import distinct_units, never_broke_symmetry, symmetric_units

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "OPTIMIZERS", "Architecture", "BlockResult",
    "GradCheckReport", "Model", "Network", "Params", "Penalty", "cross_entropy_from_logits",
    "cross_entropy_from_probs", "distinct_units", "get_activation", "gradient_check", "hidden_signal",
    "init_network", "keep_per_layer", "labels_from_probs", "make_optimizer",
    "never_broke_symmetry", "penalty", "relative_error", "sigmoid", "source_digest",
    "symmetric_units", "verdict", "weight_sparsity",
]
