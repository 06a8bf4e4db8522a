"""How much memory `fit` will hold at its peak, from the shapes alone (no array is made).

Counted from what `fit` (pipeline/train.py) and the network allocate, in bytes:
- parameter-sized vectors (P = number of parameters): the initial network and the copy that
  trains, each with its float64 weight mask (network.Layout); the gradient; the penalty's three
  vectors (l2/m, l1/m, a scratch; a fourth for L1 with plain gd); the optimizer's state (gd 1,
  momentum 2, adam 3); the last finite parameters; the best-dev copy with early stopping; the
  returned copy with its mask;
- the training pass: one `Buffers` arena (activations kept for backprop, dropout masks,
  deltas) for the batch size (a last, shorter batch is carved from it), the inputs and targets
  features-first, and a shuffled copy of both when mini-batches are drawn (plus the buffer
  np.take fills it through);
- the evaluation, in chunks of max(batch, min(the larger split, `layers.eval_chunk_rows`))
  samples: carved from the training arena when the chunk is no larger than the batch, else
  one evaluation-mode arena of a chunk; the dev inputs features-first; and per chunk the
  temporaries of the activation statistics (two of the widest hidden layer's size) and of the
  loss (three of the output's).

The test (tests/test_faults_hostile.py) holds this against tracemalloc's peak of a real `fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.nn.layers import buffer_rows, eval_chunk_rows
from pipeline.nn.network import Architecture

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
    """Elements of one `layers.Buffers` for a batch of m (`layers.buffer_rows` per sample: A,
    Z and D per layer, H and a mask per dropout layer, P, and the backward's scratch)."""
    return m * buffer_rows(Architecture(tuple(layer_sizes)), dropout=dropout)


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
    # shuffled copies when mini-batches are drawn; np.take(..., out=) buffers its output once more
    data = (n0 + 1 + n_out) * m_train * (1 if batch == m_train else 3)
    training = buffers_elements(layer_sizes, batch, drop) + data  # a shorter batch is carved
    chunk = max(batch, min(max(m_train, m_dev), eval_chunk_rows(
        Architecture(tuple(layer_sizes)), np.float64 if itemsize == 8 else np.float32)))
    plain = [False] * n_hidden
    temporaries = (2 * max(layer_sizes[1:-1], default=0) * chunk     # activation statistics
                   + 3 * n_out * chunk)                              # the loss's
    evaluation = ((0 if chunk <= batch else buffers_elements(layer_sizes, chunk, plain))
                  + (n0 + 1) * m_dev + temporaries)  # chunks <= the batch share its arena
    return Footprint(parameters, training * itemsize, evaluation * itemsize)
