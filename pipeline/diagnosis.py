"""Bias/variance diagnosis from train and dev error, with an optional Bayes (human-level) error.

    avoidable bias = train_error - bayes_error     how far training is from the best possible
    variance       = dev_error - train_error       how much worse unseen data of the same kind is

Each gap is "high" when it exceeds `threshold` (absolute error, default 0.02 = 2 percentage
points). Two points is about the smallest gap that is not noise on a dev set of a few hundred
examples, and it separates the classic cases: 1%/11% (variance), 15%/16% (bias), 15%/30% (both),
0.5%/1% (fine), and 15%/16% with a 15% Bayes error (fine: the bias is not avoidable).
The recommendation is the first step of the basic recipe: fix bias before variance. It reads
the config: when the bias is high and regularization is on (L2, L1 or dropout), the
regularization is the first suspect (it adds bias by design), so the step is "less
regularization", not "bigger network".

The Bayes error is the floor of the training error. `diagnosis.bayes_error: auto` takes the
one the data set declares (a generator that flips labels on purpose knows the share it
flipped: `pipeline.data.Dataset.bayes_error`), else 0 (not known: said in the output).

Two cases come before the recipe, because its verdicts would mislead there:
- a network that never broke symmetry (every hidden unit identical, e.g. zero init) has
  high "bias" that no bigger network fixes: it must be re-initialized;
- dev clearly easier than train (dev error below train error by more than the threshold:
  e.g. noisy train labels, clean dev) means the two splits differ in distribution, so train
  error is not a measure of avoidable bias unless bayes_error says how noisy train is. With
  the bias still "high" against that Bayes error, the verdict is the mismatch, not "high bias",
  unless the data set declared the Bayes error of its training labels (then it is exact, and
  a high bias is one: e.g. lambda 30 on noisy_diagonal, 15.8% train error against 11.1%).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

RECOMMENDATIONS = {
    "high bias": "bigger network (more units or layers) or train longer / a better optimizer",
    "high variance": "more data (or augmentation) or more regularization (L2, dropout)",
    "high bias and high variance": "first reduce bias (bigger network, train longer), "
                                   "then variance (more data, regularization)",
    "fine": "no gap to close: evaluate once on the test set",
    "never broke symmetry": "every hidden unit is identical (zero or constant init), so the "
                            "network is one unit wide whatever its size: re-initialize randomly "
                            "(he for relu, xavier for tanh); a bigger network cannot help",
    "train/dev mismatch": "dev is easier than train, so train error overstates the avoidable "
                          "bias: set diagnosis.bayes_error to the train labels' noise level "
                          "(or hold out a train-dev split) before acting on bias",
}


@dataclass(frozen=True)
class Diagnosis:
    train_error: float
    dev_error: float
    bayes_error: float
    avoidable_bias: float
    variance: float
    verdict: str            # a key of RECOMMENDATIONS
    recommendation: str
    threshold: float
    bayes_source: str = "config"   # "config", "data set" (declared) or "unknown" (auto, 0)

    def as_tags(self) -> dict[str, str]:
        """Flat string tags for the tracking layer (`diagnosis.*`)."""
        return {
            "diagnosis.verdict": self.verdict,
            "diagnosis.recommendation": self.recommendation,
            "diagnosis.avoidable_bias": f"{self.avoidable_bias:.4f}",
            "diagnosis.variance": f"{self.variance:.4f}",
            "diagnosis.bayes_error": f"{self.bayes_error:.4f}",
            "diagnosis.bayes_source": self.bayes_source,
            "diagnosis.threshold": f"{self.threshold:.4f}",
            "diagnosis.distribution_mismatch": str(self.mismatch).lower(),
        }

    @property
    def mismatch(self) -> bool:
        """Dev clearly easier than train: the two splits do not come from one distribution
        (e.g. noisy train labels, clean dev), so "variance" is not only variance."""
        return self.variance < -self.threshold

    def format(self) -> str:
        text = (f"diagnosis: {self.verdict} (avoidable bias {self.avoidable_bias:+.2%}, "
                f"variance {self.variance:+.2%}, Bayes error {self.bayes_error:.2%}"
                f"{_SOURCES.get(self.bayes_source, '')})\n"
                f"next step: {self.recommendation}")
        if self.mismatch and self.verdict not in ("train/dev mismatch", "never broke symmetry"):
            text += ("\nnote: dev error is below train error: train and dev differ in "
                     "distribution (e.g. label noise in train only); " + (
                         "the bias above is judged against the train labels' declared noise"
                         if self.bayes_source == "data set" else
                         "set diagnosis.bayes_error to the train labels' noise level to judge "
                         "bias"))
        return text


_SOURCES = {"data set": ", declared by the data set",
            "unknown": ", not known: 0 assumed; set diagnosis.bayes_error"}


def resolve_bayes_error(configured: float | str, declared: float | None) -> tuple[float, str]:
    """(Bayes error, source) for `diagnosis.bayes_error`: a number is used as given; "auto"
    takes the data set's declared one, else 0 ("unknown")."""
    if configured != "auto":
        return float(configured), "config"
    if declared is None:
        return 0.0, "unknown"
    return float(declared), "data set"


def regularizers(l2: float = 0.0, l1: float = 0.0, keep_prob=1.0) -> dict[str, str]:
    """The regularization that is on, as {"lambda": "3", "keep_prob": "0.4"} (keep_prob: one
    value or one per hidden layer): what the recommendation names as adding bias."""
    out = {}
    if l2 > 0:
        out["lambda"] = f"{l2:g}"
    if l1 > 0:
        out["l1"] = f"{l1:g}"
    probs = keep_prob if isinstance(keep_prob, (tuple, list)) else (keep_prob,)
    if any(p < 1 for p in probs):
        out["keep_prob"] = ",".join(f"{p:g}" for p in probs)
    return out


def _less_regularization(active: Mapping[str, str]) -> str:
    knobs = " / ".join(f"{k}={v}" for k, v in active.items())
    return f"less regularization ({knobs} adds bias)"


def recommend(verdict: str, active: Mapping[str, str]) -> str:
    """The recipe's next step for a verdict, given the regularization that is on."""
    if not active or verdict not in ("high bias", "high bias and high variance"):
        return RECOMMENDATIONS[verdict]
    less = _less_regularization(active)
    if verdict == "high bias":
        return f"{less}; if the bias stays, a bigger network or train longer"
    return f"first reduce bias: {less}, then variance (more data)"


def diagnose(train_error: float, dev_error: float, *, bayes_error: float = 0.0,
             threshold: float = 0.02, symmetric: bool = False,
             regularization: Mapping[str, str] | None = None,
             bayes_source: str = "config") -> Diagnosis:
    """Verdict and next step from errors in [0, 1] (not percentages). `symmetric`: the
    trained network never broke symmetry (`pipeline.nn.never_broke_symmetry`).
    `regularization`: what is on (`regularizers(...)`); with a high bias it is named as the
    cause. `bayes_source`: where `bayes_error` came from (`resolve_bayes_error`).
    `bayes_error` and `threshold` are the config's `diagnosis` section, bounded there; the
    errors are measured, so only their range is checked here."""
    for key, value in (("train_error", train_error), ("dev_error", dev_error)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {value}")
    bias = train_error - bayes_error
    variance = dev_error - train_error
    # a tiny tolerance so that 0.15 - 0.13 (= 0.0199999...) counts as exactly the threshold
    high_bias = bias > threshold + 1e-12
    high_variance = variance > threshold + 1e-12
    verdict = {(True, True): "high bias and high variance", (True, False): "high bias",
               (False, True): "high variance", (False, False): "fine"}[(high_bias, high_variance)]
    if symmetric:
        verdict = "never broke symmetry"
    elif variance < -threshold - 1e-12 and high_bias and bayes_source != "data set":
        # a floor the data set declared is the train labels' own noise: the bias stands
        verdict = "train/dev mismatch"
    return Diagnosis(float(train_error), float(dev_error), float(bayes_error), float(bias),
                     float(variance), verdict, recommend(verdict, regularization or {}),
                     float(threshold), bayes_source)
