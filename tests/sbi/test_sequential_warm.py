"""Warm-started sequential rounds (derivations/sbi.md, SBI.28a): the flow of round r starts from
round r-1's weights, the z-scoring stays round 1's, validation rows stay validation rows, and
Adam is fresh every round unless ``keep_optimizer``. Small TSNPE runs on 2-D gaussian_linear (a
few tenths of a second each)."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nprefgen.flows.elementwise import Standardize
from nprefgen.nn.train import take
from nprefgen.sbi import MLPEmbedding, gaussian_linear
from nprefgen.sbi.sequential import SNLE, TSNPE

SMALL = dict(flow="maf", n_transforms=2, hidden=16, n_support=500)
FIT = dict(max_epochs=15, lr=3e-3, patience=5, batch_size=50)


def _task():
    task = gaussian_linear(dim=2, noise_var=0.001)
    _, x_o = task.observations(1, rng=3)
    return task, x_o[0]


def _run(num_simulations, rounds, rng=0, **kw):
    task, x_o = _task()
    with threadpool_limits(limits=1, user_api="blas"):
        seq = TSNPE(task.prior, task.simulator, **{**SMALL, "warm_start": True, **kw})
        seq.run(x_o, num_simulations=num_simulations, rounds=rounds, rng=rng, **FIT)
    return seq


def _zscore(flow):
    return next(b for b in flow.bijectors if isinstance(b, Standardize))


def test_round_two_starts_from_round_one_weights():
    """(SBI.28a) a 2-round run's round 1 is a 1-round run (same seed, same draws), so the
    validation loss of round 2's starting weights must be exactly round 1's final flow on round
    2's validation rows (a flow re-initialised in round 2 gives another number); the z-scoring
    stays round 1's."""
    one, two = _run(200, 1), _run(400, 2)
    np.testing.assert_array_equal(two.theta_[:200], one.theta_)
    start = two.history_["rounds"][1]["start_val_loss"]
    assert start == one.estimator_.flow.mean_nll(*take((two.theta_, two.x_), two.val_index_))
    # the round-2 weights moved on from there, the z-scoring did not
    assert two.history_["rounds"][1]["best_val_loss"] < start
    np.testing.assert_array_equal(_zscore(one.estimator_.flow).mean,
                                  _zscore(two.estimator_.flow).mean)
    np.testing.assert_array_equal(_zscore(one.estimator_.flow).std,
                                  _zscore(two.estimator_.flow).std)
    # retrained from scratch, round 2 reports no starting loss (a new flow each round)
    assert _run(400, 2, warm_start=False).history_["rounds"][1]["start_val_loss"] is None


def test_validation_rows_stay_validation_rows():
    """Each round holds out max(1, 10 %) of its own new pairs; earlier rounds' validation rows
    stay, and no training row of an earlier round is ever validated on."""
    seq = _run(450, 3)
    val = seq.val_index_
    assert val.size == 3 * 15 and np.unique(val).size == val.size
    for r in range(3):                 # 15 of each round's 150 new rows
        assert np.sum((val >= 150 * r) & (val < 150 * (r + 1))) == 15
    assert seq.history_["rounds"][-1]["n_total"] == 450


def test_keep_optimizer_continues_adam_and_default_starts_it_fresh():
    """Adam's step count t: with keep_optimizer it counts every round's steps, by default only
    the last round's (fresh moments every round, as sbi)."""
    def steps(seq):                    # minibatches of 50 over each round's training rows
        return [r["epochs"] * -(-(r["n_total"] - 15 * r["round"]) // 50)
                for r in seq.history_["rounds"]]

    kept, fresh = _run(450, 3, keep_optimizer=True), _run(450, 3)
    assert kept._opt.t == sum(steps(kept))
    assert fresh._opt.t == steps(fresh)[-1]


def test_warm_start_is_deterministic_per_seed():
    a, b = _run(400, 2, rng=5), _run(400, 2, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.theta_, b.theta_)
    for (p, _), (q, _) in zip(a.estimator_.flow.parameters(), b.estimator_.flow.parameters()):
        np.testing.assert_array_equal(p, q)
    assert a.history_["rounds"][1]["threshold"] == b.history_["rounds"][1]["threshold"]
    c = _run(400, 2, rng=6)
    assert not np.array_equal(a.theta_, c.theta_)


def test_defaults_are_the_measured_ones():
    """benchmarks/RESULTS.md (two_moons, 10^4): TSNPE retrains from scratch, SNLE warm-starts."""
    task, _ = _task()
    assert not TSNPE(task.prior, task.simulator).warm_start
    assert SNLE(task.prior, task.simulator).warm_start
    assert not SNLE(task.prior, task.simulator).keep_optimizer


def test_bad_warm_start_settings_name_the_argument():
    task, x_o = _task()
    with pytest.raises(ValueError, match="warm_start"):
        TSNPE(task.prior, task.simulator, warm_start="yes")
    with pytest.raises(ValueError, match="keep_optimizer"):
        SNLE(task.prior, task.simulator, warm_start=False, keep_optimizer=True)
    with pytest.raises(ValueError, match="warm_start"):
        TSNPE(task.prior, task.simulator, warm_start=True,
              embedding=MLPEmbedding(2, 2, hidden=(8,)))
    seq = TSNPE(task.prior, task.simulator, warm_start=True, **SMALL)
    with pytest.raises(ValueError, match="train_kwargs"):
        seq.run(x_o, num_simulations=30, rounds=1, rng=0, max_epoch=3)
