"""How much memory `fit` will hold at its peak, from the shapes alone (no array is made).

Counted from what `fit` (pipeline/train.py) and the network allocate, in bytes:
- parameter-sized vectors (P = number of parameters): the initial network and the copy that
  trains, each with its float64 weight mask (network.Layout); the gradient; the penalty's three
  vectors (l2/m, l1/m, a scratch; a fourth for L1 with plain gd); the optimizer's state (gd 1,
  momentum 2, adam 3); the last finite parameters; the best-dev copy with early stopping; the
  returned copy with its mask;
- the training pass: one `Buffers` (activations kept for backprop, dropout masks, deltas) per
  batch size (a last, shorter batch has its own), the inputs and targets features-first, and a
  shuffled copy of both when mini-batches are drawn (plus the buffer np.take fills it through);
- the evaluation: the train set's `Buffers` in evaluation mode (shared with the training pass
  for a full batch without dropout) and the dev set's, with the dev inputs features-first, and
  the temporaries of the activation statistics (two of the widest hidden layer's size) and of
  the loss (three of the output's). Equal train and dev sizes share one `Buffers`.

The test (tests/test_faults_hostile.py) holds this against tracemalloc's peak of a real `fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

OPTIMIZER_STATE = {"gd": 1, "momentum": 2, "adam": 3}   # parameter-sized buffers of each step


@dataclass(frozen=True)
class Footprint:
    """Bytes: parameters (weights and everything their size), the training pass and the
    evaluation; `total` is what the estimate refuses on."""
    parameters: int
    training: int
    evaluation: int

    @property
    def total(self) -> int:
        return self.parameters + self.training + self.evaluation


def n_parameters(layer_sizes: Sequence[int]) -> int:
    """sum over layers of (n_{l-1} + 1) n_l: weights and biases."""
    return sum((a + 1) * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def buffers_elements(layer_sizes: Sequence[int], m: int, dropout: Sequence[bool]) -> int:
    """Elements of one `layers.Buffers` for a batch of m: A (hidden inputs with their ones
    row), Z and D per layer, H and a mask per dropout layer, P, and the backward's scratch."""
    hidden, n_out = list(layer_sizes[1:-1]), layer_sizes[-1]
    per_sample = (sum(n + 1 for n in hidden) + 2 * (sum(hidden) + n_out) + n_out
                  + 2 * sum(n for n, d in zip(hidden, dropout) if d) + max(layer_sizes[1:]))
    return m * per_sample


def estimate(layer_sizes: Sequence[int], m_train: int, m_dev: int, *,
             batch_size: int | None = None, optimizer: str = "gd", itemsize: int = 8,
             dropout: bool | Sequence[bool] = False, early_stopping: bool = False,
             l1_prox: bool = False) -> Footprint:
    """The peak of `fit` on (m_train, n0) rows evaluated on m_dev dev rows. `layer_sizes`:
    (n0, *hidden, n_out); `itemsize`: 8 for float64, 4 for float32; `dropout`: one flag for
    every hidden layer or one per layer (keep_prob < 1)."""
    n_hidden = len(layer_sizes) - 2
    drop = [bool(dropout)] * n_hidden if isinstance(dropout, bool) else list(dropout)
    P, n0, n_out = n_parameters(layer_sizes), layer_sizes[0], layer_sizes[-1]
    vectors = (8 + OPTIMIZER_STATE[optimizer] + early_stopping + l1_prox)
    parameters = P * (3 * 8 + vectors * itemsize)      # 3 float64 masks + the vectors
    batch = m_train if batch_size is None else min(batch_size, m_train)
    sizes = {batch} | ({m_train % batch} - {0})        # a shorter last batch has its own
    # shuffled copies when mini-batches are drawn; np.take(..., out=) buffers its output once more
    data = (n0 + 1 + n_out) * m_train * (1 if batch == m_train else 3)
    training = sum(buffers_elements(layer_sizes, n, drop) for n in sizes) + data
    shared = batch == m_train and not any(drop)       # the training pass IS the evaluation's
    plain = [False] * n_hidden
    temporaries = (2 * max(layer_sizes[1:-1], default=0) * m_train   # activation statistics
                   + 3 * n_out * max(m_train, m_dev))                # the loss's
    evaluation = ((0 if shared else buffers_elements(layer_sizes, m_train, plain))
                  + (0 if m_dev == m_train else buffers_elements(layer_sizes, m_dev, plain))
                  + (n0 + 1) * m_dev + temporaries)    # one Buffers per size: equal m share
    return Footprint(parameters, training * itemsize, evaluation * itemsize)
