"""The stop request passed as an argument (pipeline/stop.py): its semantics, the signal
handlers, `fit`'s per-epoch check, and the one place a stop becomes an exit code (cli.main)."""

import signal

import numpy as np
import pytest

from pipeline.nn import Architecture, init_network
from pipeline.stop import Stop, Stopped
from pipeline.train import TrainSettings, fit


def test_check_raises_only_once_requested_and_the_first_request_decides():
    stop = Stop()
    stop.check()  # nothing requested: a no-op
    stop.request("received SIGINT", signal.SIGINT)
    stop.request("received SIGTERM", signal.SIGTERM)  # later requests do not change it
    with pytest.raises(Stopped) as info:
        stop.check()
    exc = info.value
    assert (exc.signum, exc.exit_code, exc.held) == (signal.SIGINT, 130, False)
    assert isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Exception)
    exc.outcome = "run r1 ended KILLED"
    assert exc.line() == "interrupted (Ctrl-C): run r1 ended KILLED"
    assert Stopped("x", signal.SIGTERM).exit_code == 143


def test_hold_finishes_the_work_then_raises_held():
    stop, done = Stop(), []
    with pytest.raises(Stopped) as info:
        with stop.hold():
            stop.request("received SIGTERM", signal.SIGTERM)
            stop.check()              # held: not raised inside
            done.append("recorded and printed")
    assert done == ["recorded and printed"] and info.value.held and info.value.exit_code == 143


def test_hold_raises_on_entry_when_already_requested_and_keeps_errors():
    stop = Stop()
    stop.request("received SIGINT", signal.SIGINT)
    with pytest.raises(Stopped) as info:
        with stop.hold():
            raise AssertionError("the held work must not start")
    assert not info.value.held
    other = Stop()
    with pytest.raises(ZeroDivisionError):  # an error inside the hold is not masked
        with other.hold():
            other.request("received SIGTERM")
            1 / 0


def test_signals_are_recorded_a_repeat_raises_and_the_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop = Stop()
    with stop.on_signals():
        signal.raise_signal(signal.SIGTERM)      # recorded, not raised where it lands
        assert stop.requested and stop.signum == signal.SIGTERM
        assert stop.reason == "received SIGTERM"
        signal.raise_signal(signal.SIGINT)       # another signal: still only recorded
        with pytest.raises(Stopped, match="twice"):
            signal.raise_signal(signal.SIGTERM)  # the same one again: at once
    held = Stop()
    with held.on_signals():
        with pytest.raises(Stopped) as info:
            with held.hold():
                signal.raise_signal(signal.SIGTERM)
                signal.raise_signal(signal.SIGTERM)  # inside a hold even a repeat waits
                finished = True
        assert finished and info.value.held
    assert {s: signal.getsignal(s) for s in before} == before


class _CountingStop(Stop):
    """Requested from the `at`-th read of `requested` on: fit reads it once per epoch."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.reads = at, 0

    @property
    def requested(self):
        self.reads += 1
        return self.reads >= self.at

    @requested.setter
    def requested(self, value):
        pass

    def check(self):
        self.checked_at = getattr(self, "checked_at", self.reads)  # the epoch fit checked at
        super().check()


def test_fit_stops_within_one_epoch_even_between_sparse_evaluations():
    arch = Architecture((2, 4, 1), "tanh")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    evaluated = []
    stop = _CountingStop(at=237)  # between the evaluations at 200 and 400
    settings = TrainSettings(epochs=20_000, eval_every=200)
    with pytest.raises(Stopped):
        fit(init_network(arch, "he", np.random.default_rng(1)), X, y, X, y, settings,
            np.random.default_rng(0), callbacks=[lambda e, m: evaluated.append(e)], stop=stop)
    assert stop.checked_at == 237 and evaluated == [200]
    # without a request it trains to the end
    done = fit(init_network(arch, "he", np.random.default_rng(1)), X, y, X, y,
               TrainSettings(epochs=300, eval_every=200), np.random.default_rng(0), stop=Stop())
    assert done.epochs_run == 300 and done.history["epoch"] == [200, 300]


def test_cli_main_maps_a_signal_to_its_exit_code_with_one_line(monkeypatch, capsys):
    from pipeline import cli
    from pipeline.commands import train

    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    seen = {}

    def stopped_run(args):
        seen["handler"] = signal.getsignal(signal.SIGTERM)
        signal.raise_signal(seen.pop("signum"))
        try:
            args.stop.check()
        except Stopped as exc:
            exc.outcome = "run r1 ended KILLED"
            raise

    monkeypatch.setattr(train, "run", stopped_run)
    before = signal.getsignal(signal.SIGTERM)
    for signum, code, what in ((signal.SIGTERM, 143, "terminated (SIGTERM)"),
                               (signal.SIGINT, 130, "interrupted (Ctrl-C)")):
        seen["signum"] = signum
        assert cli.main(["train"]) == code
        err = capsys.readouterr().err
        assert err == f"{what}: run r1 ended KILLED\n"
        assert seen["handler"] is not before and signal.getsignal(signal.SIGTERM) is before
