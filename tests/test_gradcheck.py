"""Gradient check: backprop agrees with two-sided differences, and a broken backward is caught."""

import subprocess
import sys

import numpy as np
import pytest

from pipeline.nn import Architecture, Network, gradient_check, init_network

ACTS = ["relu", "leaky_relu", "tanh", "sigmoid"]


def _setup(act: str, n_out: int, seed: int = 0, m: int = 6):
    rng = np.random.default_rng(seed)
    arch = Architecture((3, 4, 3, n_out), act)
    net = init_network(arch, "xavier", rng)
    for l in (1, 2, 3):  # nonzero biases: an exactly-zero relu pre-activation is a kink
        net.params[f"b{l}"][...] = rng.uniform(0.1, 0.3, net.params[f"b{l}"].shape)
    X = rng.standard_normal((m, 3))
    y = rng.integers(0, max(n_out, 2), m)
    return net, X, y, rng


@pytest.mark.parametrize("keep_prob", [1.0, 0.7], ids=["no_dropout", "fixed_mask"])
@pytest.mark.parametrize("l2", [0.0, 0.7])
@pytest.mark.parametrize("n_out", [1, 3], ids=["sigmoid_bce", "softmax_ce"])
@pytest.mark.parametrize("act", ACTS)
def test_backprop_matches_numerical_gradient(act, n_out, l2, keep_prob):
    net, X, y, rng = _setup(act, n_out)
    report = gradient_check(net, X, y, l2=l2, keep_prob=keep_prob, rng=rng)
    assert report.relative_error < 1e-7, report.format()
    assert report.verdict == "correct"
    assert [b.name for b in report.blocks] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert all(b.relative_error < 1e-5 for b in report.blocks), report.format()


def test_l1_gradient_matches():
    net, X, y, rng = _setup("tanh", 3)
    assert gradient_check(net, X, y, l1=0.5).relative_error < 1e-7


def test_fixed_mask_really_drops_units():
    # the dropout case must actually zero some units, otherwise it tests nothing
    net, X, y, rng = _setup("tanh", 1)
    cache = net.forward(X, keep_prob=0.5, rng=rng, training=True)[1]
    assert np.any(cache.masks[0] == 0) and np.any(cache.masks[0] == 2.0)


def test_forgotten_l2_term_is_caught_in_its_block():
    net, X, y, rng = _setup("tanh", 1)

    def broken(net, buf, y, *, l2=0.0, l1=0.0):
        grads = net.gradient(buf, y, l2=l2, l1=l1)
        grads["W2"] = grads["W2"] - l2 / buf.m * net.params["W2"]  # bug: no L2 term on W2
        return grads

    report = gradient_check(net, X, y, l2=5.0, gradient_fn=broken)
    errors = {b.name: b.relative_error for b in report.blocks}
    assert errors["W2"] > 1e-3 and max(errors, key=errors.get) == "W2"
    assert {b.name for b in report.blocks if b.verdict == "wrong"} == {"W2"}
    assert report.verdict == "wrong" and not report.passed


def test_forgotten_dropout_mask_in_backward_is_caught_below_the_dropped_layer():
    net, X, y, rng = _setup("tanh", 1)

    def broken(net, buf, y, *, l2=0.0, l1=0.0):
        buf.masks[1] = None  # bug: layer-2 mask applied forward but not backward
        return net.gradient(buf, y, l2=l2, l1=l1)

    report = gradient_check(net, X, y, keep_prob=0.5, rng=rng, gradient_fn=broken)
    verdicts = {b.name: b.verdict for b in report.blocks}
    assert verdicts["W2"] == "wrong" and verdicts["W1"] == "wrong"
    assert verdicts["W3"] == "correct" and verdicts["b3"] == "correct"


def test_verdict_bands():
    from pipeline.nn.gradcheck import verdict
    assert [verdict(e) for e in (1e-9, 1e-6, 1e-4, 1e-2, float("nan"))] == [
        "correct", "borderline", "suspicious", "wrong", "wrong"]


def _run(args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=120)


CLI_ARGS = ["gradcheck", "--layers", "2,5,3,1", "--activation", "tanh", "--l2", "0.7",
            "--keep-prob", "0.8", "--after-steps", "200", "--seed", "0", "--samples", "8"]


def _check_cli_output(proc):
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("trained 200 steps")
    table = {ln.split()[0]: ln.split() for ln in lines if ln.split() and
             ln.split()[0] in ("W1", "b1", "W2", "b2", "W3", "b3", "overall")}
    assert list(table) == ["W1", "b1", "W2", "b2", "W3", "b3", "overall"]
    for name, cols in table.items():
        assert float(cols[-2]) < 1e-7 and cols[-1] == "correct", (name, cols)
    assert lines[-1].startswith("verdict: correct (PASS")


def test_gradcheck_command_module():
    _check_cli_output(_run(["pipeline.commands.gradcheck", *CLI_ARGS[1:]]))


def test_gradcheck_command_via_cli():
    _check_cli_output(_run(["pipeline", *CLI_ARGS]))


def test_gradcheck_command_exit_1_on_wrong(monkeypatch, capsys):
    # the command's exit code follows the report: break backward for the whole process
    import pipeline.commands.gradcheck as cmd
    import pipeline.nn.gradcheck as gc

    real = Network.gradient

    def broken(net, buf, y, *, l2=0.0, l1=0.0):
        grads = real(net, buf, y, l2=l2, l1=l1)
        grads["b1"] *= 2.0
        return grads

    monkeypatch.setattr(gc.gradient_check, "__kwdefaults__",
                        {**gc.gradient_check.__kwdefaults__, "gradient_fn": broken})
    import argparse
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    assert cmd.run(parser.parse_args(["--activation", "tanh"])) == 1
    out = capsys.readouterr().out
    assert "b1" in out and "wrong" in out and "FAIL" in out
