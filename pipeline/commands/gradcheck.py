"""`python -m pipeline gradcheck`: numerical gradient check of the network, per parameter block.

Builds a network from flags, optionally trains it for some steps on a small synthetic problem
(some bugs only show once the weights have grown), then compares backprop with two-sided
differences on a few samples (dropout with one fixed mask). Exit 0 when the overall and every
block verdict is correct or borderline (< 1e-5), 1 otherwise.
"""

from __future__ import annotations

import argparse

import numpy as np


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _floats(text: str):
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma list, got {text!r}")
    return values[0] if len(values) == 1 else values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=_ints, default=(2, 5, 3, 1),
                        help="layer sizes, e.g. 2,5,3,1 (n_out 1 -> sigmoid, >1 -> softmax)")
    parser.add_argument("--activation", default="relu", help="relu|leaky_relu|tanh|sigmoid")
    parser.add_argument("--init", default="he", help="zeros|random|he|xavier|glorot")
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--l1", type=float, default=0.0)
    parser.add_argument("--keep-prob", type=_floats, default=1.0,
                        help="one value or one per hidden layer; the mask is drawn once")
    parser.add_argument("--after-steps", type=int, default=0,
                        help="full-batch gradient-descent steps before checking")
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=8, help="samples used by the check")
    parser.add_argument("--epsilon", type=float, default=1e-7)
    parser.add_argument("--seed", type=int, default=0)


def _problem(rng: np.random.Generator, m: int, n_in: int, n_out: int):
    """Inputs N(0, 1); labels from a fixed random nonlinear rule (learnable, not trivial)."""
    X = rng.standard_normal((m, n_in))
    proj = rng.standard_normal((n_in, max(n_out, 2)))
    y = np.argmax(np.tanh(X @ proj) + 0.5 * (X ** 2) @ proj, axis=1)
    return X, (y % 2 if n_out == 1 else y)


def _bounded(flag: str, value: float, lo: float, hi: float | None = None, **open_) -> None:
    from pipeline.config.constraints import check_bound

    try:
        check_bound(value, lo, hi, **open_)
    except ValueError as exc:
        raise ValueError(f"{flag} {exc}") from None


def _keep_prob(value) -> None:
    from pipeline.config.sections import check_keep_prob

    try:
        check_keep_prob(value)
    except ValueError as exc:
        raise ValueError(f"keep-prob {exc}") from None


def run(args: argparse.Namespace) -> int:
    from pipeline.nn import Architecture, gradient_check, init_network
    from pipeline.train import TrainSettings, fit

    if args.samples < 1:
        raise ValueError(f"samples must be >= 1, got {args.samples}")
    if args.after_steps < 0:
        raise ValueError(f"after-steps must be >= 0, got {args.after_steps}")
    # this command is its own config edge (the core checks no hyperparameter bounds): the
    # config's own check_bound, so a flag and its config key admit the same values
    _keep_prob(args.keep_prob)
    _bounded("l2", args.l2, 0)
    _bounded("l1", args.l1, 0)
    _bounded("learning-rate", args.learning_rate, 0, lo_open=True)
    arch = Architecture(args.layers, args.activation)
    rng = np.random.default_rng(args.seed)
    net = init_network(arch, args.init, rng)
    if args.after_steps:
        X, y = _problem(rng, 200, arch.layer_sizes[0], arch.layer_sizes[-1])
        settings = TrainSettings(learning_rate=args.learning_rate, epochs=args.after_steps,
                                 l2=args.l2, l1=args.l1, keep_prob=args.keep_prob,
                                 eval_every=args.after_steps)
        result = fit(net, X, y, None, None, settings, rng)
        net = result.network
        print(f"trained {result.epochs_run} steps: {result.stop_message}, "
              f"train loss {result.history['train_loss'][-1]:.6g}" if result.history["epoch"]
              else f"training stopped: {result.stop_message}")
    X, y = _problem(rng, args.samples, arch.layer_sizes[0], arch.layer_sizes[-1])
    report = gradient_check(net, X, y, l2=args.l2, l1=args.l1,
                            keep_prob=args.keep_prob, rng=rng, epsilon=args.epsilon)
    dropout = "off" if np.min(args.keep_prob) >= 1 else f"keep_prob {args.keep_prob} (fixed mask)"
    print(f"gradient check: layers {','.join(map(str, arch.layer_sizes))}, hidden "
          f"{arch.hidden_activation}, output {arch.output}, l2 {args.l2}, l1 {args.l1}, "
          f"dropout {dropout}, {args.samples} samples, epsilon {args.epsilon:g}")
    print(report.format())
    print(f"verdict: {report.verdict} ({'PASS' if report.passed else 'FAIL'}; thresholds "
          f"1e-7 correct, 1e-5 borderline, 1e-3 suspicious, above: wrong)")
    return 0 if report.passed else 1


if __name__ == "__main__":  # `python -m pipeline.commands.gradcheck ...` works without the CLI
    _parser = argparse.ArgumentParser(prog="python -m pipeline gradcheck", description=__doc__)
    add_arguments(_parser)
    raise SystemExit(run(_parser.parse_args()))
