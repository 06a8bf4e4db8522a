"""Issue 20: memory proportional to the data.

Evaluation and prediction run in chunks carved from the training buffers' arena, and a null
batch_size becomes a mini-batch only when the full batch's buffers exceed the budget computed
from the free memory the command line passes in. Small data stays full batch, bit for bit.
"""

import dataclasses

import numpy as np
import pytest

from pipeline import stages, train as train_module
from pipeline.batch_choice import BUFFER_CAP, FREE_SHARE, choose_batch_size
from pipeline.config import load_config
from pipeline.nn import Architecture, init_network
from pipeline.nn.layers import Buffers, buffer_rows, eval_chunk_rows
from pipeline.train import TrainSettings, fit

from tests.test_overhead import CONF

ARCH = Architecture((3, 16, 8, 1))


def _data(m, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 3))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


@pytest.mark.parametrize("keep", [None, 0.5, (1.0, 0.7)])
def test_one_arena_holds_every_buffer_and_smaller_batches_are_carved_from_it(keep):
    big = Buffers(ARCH, 50, np.float64, keep)
    assert big.arena.size == buffer_rows(ARCH, keep) * 50
    arrays = big.A[1:] + big.Z + big.D + [big.P]
    assert all(np.shares_memory(a, big.arena) for a in arrays)
    small = Buffers(ARCH, 48, np.float64, keep, arena=big.arena)
    assert small.arena is big.arena and small.Z[0].shape == (16, 48)
    small.A[1][:] = 7.0                    # 17 x 48 items: over big's ones row (16 x 50 on)...
    assert not (big.A[1][-1] == 1.0).all()
    assert (big.ones().A[1][-1] == 1.0).all()  # ...which `ones` rewrites
    with pytest.raises(ValueError, match=r"cannot hold \d+ float64 items \(60 samples\)"):
        Buffers(ARCH, 60, np.float64, keep, arena=big.arena)


def test_full_batch_while_the_buffers_fit_else_equal_batches_within_the_budget():
    per_row = buffer_rows(ARCH, 1.0) * 8
    roomy = choose_batch_size(ARCH, 1000, "float64", 1.0, FREE_SHARE * per_row * 1000)
    assert roomy.rows is None and roomy.param == "full"
    tight = choose_batch_size(ARCH, 1000, "float64", 1.0, FREE_SHARE * per_row * 300)
    assert tight.rows * per_row <= tight.budget
    batches = -(-1000 // tight.rows)
    assert batches == -(-1000 // 300) and tight.rows * (batches - 1) < 1000  # fewest, equal
    assert tight.param == str(tight.rows) and "set training.batch_size" in tight.describe()
    # a machine with a lot of free memory is still capped: buffers follow the data
    huge = choose_batch_size(ARCH, 10**7, "float64", 1.0, 10**15)
    assert huge.budget == BUFFER_CAP and huge.rows * per_row <= BUFFER_CAP


def test_evaluation_in_chunks_trains_the_same_weights_and_scores_the_same(monkeypatch):
    X, y = _data(600)
    Xd, yd = _data(250, seed=1)
    net = init_network(ARCH, "he", np.random.default_rng(0))
    settings = TrainSettings(learning_rate=0.1, epochs=30, eval_every=5, batch_size=64,
                             optimizer="adam", keep_prob=0.8)
    whole = fit(net, X, y, Xd, yd, settings, np.random.default_rng(3))
    monkeypatch.setattr(train_module, "eval_chunk_rows", lambda arch, dtype: 70)
    chunked = fit(net, X, y, Xd, yd, settings, np.random.default_rng(3))
    # evaluation never touches the training: the weights are the same bits
    assert np.array_equal(whole.network.theta, chunked.network.theta)
    for key, values in whole.history.items():
        np.testing.assert_allclose(chunked.history[key], values, rtol=1e-12, atol=1e-15,
                                   err_msg=key)


def test_prediction_in_chunks_equals_one_pass():
    net = init_network(ARCH, "xavier", np.random.default_rng(0))
    rows = eval_chunk_rows(ARCH, np.float64)
    X = np.random.default_rng(2).standard_normal((2 * rows + 17, 3))   # 3 chunks, one short
    P = net.predict_proba(X)
    assert P.shape == (X.shape[0], 1)
    np.testing.assert_allclose(P, net.forward(X)[0], rtol=1e-13, atol=1e-15)


def test_small_data_stays_full_batch_bit_for_bit_and_tight_memory_chooses_a_batch():
    cfg = load_config(["training.epochs=40"], conf_dir=CONF)
    prepared = stages.prepare(cfg)
    plain = stages.train(cfg, prepared)
    roomy = stages.train(cfg, prepared, free_memory=16 * 2**30)
    assert plain.batch is None and roomy.batch.rows is None
    assert np.array_equal(plain.model.network.theta, roomy.model.network.theta)
    assert plain.fit.history == roomy.fit.history and plain.metrics == roomy.metrics
    m = prepared.train.X.shape[0]
    keep = cfg.regularization.keep_prob
    per_row = buffer_rows(stages.architecture(cfg, prepared), keep) * 8
    tight = stages.train(cfg, prepared, free_memory=FREE_SHARE * per_row * (m // 3))
    assert tight.batch.rows is not None and tight.batch.rows <= m // 3
    # the chosen batch is what trained: the same run as the config setting it
    explicit = stages.train(cfg.with_overrides({"training.batch_size": tight.batch.rows}),
                            prepared)
    assert np.array_equal(tight.model.network.theta, explicit.model.network.theta)
    # a batch size the config sets is never overridden
    set_cfg = cfg.with_overrides({"training.batch_size": 50})
    assert stages.train(set_cfg, prepared, free_memory=1).batch is None
    assert dataclasses.replace(tight.batch, rows=None).param == "full"


@pytest.mark.slow
def test_train_says_logs_and_reproduces_the_batch_it_chose(tmp_path, monkeypatch, capsys):
    """Little free memory (patched: the command's reading) makes the default data mini-batch:
    one line says so, the run logs the rows as training.batch_size_chosen, and `reproduce`
    retrains with them (bit for bit) whatever the free memory is then."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.cli import main

    cfg = load_config([], conf_dir=CONF)
    prepared = stages.prepare(cfg)
    per_row = buffer_rows(stages.architecture(cfg, prepared), cfg.regularization.keep_prob) * 8
    free = FREE_SHARE * per_row * 250                    # room for batches of 250 rows
    expected = stages.batch_choice(cfg, prepared, free)
    assert expected.rows is not None
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    monkeypatch.setattr("pipeline.commands.train.available_memory", lambda: free)
    assert main(["train", "--quiet", "--conf-dir", str(CONF), "training.epochs=60",
                 "tracking.log_model=false", "tracking.log_figures=false"]) == 0
    out, err = capsys.readouterr()
    assert err.count(f"batch size: {expected.rows} rows chosen") == 1
    assert f"batch size: {expected.rows} rows chosen" in out       # and in the report
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("nn-pipeline").experiment_id])
    assert run.data.params["training.batch_size_chosen"] == str(expected.rows)
    assert run.data.params["training.batch_size"] == "null"          # the config as given
    assert main(["reproduce", run.info.run_id, "--quiet"]) == 0, capsys.readouterr().out
