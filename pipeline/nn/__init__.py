"""The numeric core: a fully-connected network in NumPy (numpy only; no mlflow, no optuna).

Samples-first: X (m, n_features), integer labels y (m,), Z = A_prev @ W + b.
"""

from pipeline.nn.activations import ACTIVATIONS, get_activation, sigmoid
from pipeline.nn.dropout import draw_mask, normalize_keep_prob
from pipeline.nn.gradcheck import (BlockResult, GradCheckReport, gradient_check,
                                   relative_error, verdict)
from pipeline.nn.initializers import INITIALIZERS, init_params
from pipeline.nn.kernels import Workspace
from pipeline.nn.losses import (cross_entropy_from_logits, cross_entropy_from_probs, penalty,
                                weight_sparsity)
from pipeline.nn.model import (Architecture, Params, ParamLayout, backward, compute_loss,
                               compute_loss_from_logits, forward, params_to_vector, predict,
                               predict_proba, vector_to_params)
from pipeline.nn.optim import OPTIMIZERS, make_optimizer
from pipeline.nn.symmetry import distinct_units, never_broke_symmetry, symmetric_units

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "OPTIMIZERS", "Architecture", "BlockResult",
    "GradCheckReport", "ParamLayout", "Params", "backward", "compute_loss",
    "compute_loss_from_logits", "cross_entropy_from_logits", "cross_entropy_from_probs",
    "distinct_units", "draw_mask", "forward", "get_activation", "gradient_check", "init_params",
    "make_optimizer", "never_broke_symmetry", "normalize_keep_prob", "params_to_vector", "penalty", "predict",
    "predict_proba", "relative_error", "sigmoid", "symmetric_units", "vector_to_params", "verdict",
    "weight_sparsity", "Workspace",
]
