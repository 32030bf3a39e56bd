"""NPE and NLE trained in float32 (``train(dtype="float32")``, issue 12 performance): the
arithmetic of training is float32, the returned flow is float64 holding float32 values, and the
result agrees with float64 training to float32 precision.

Tolerance: float32 rounds each operation to a relative 6e-8; a validation loss of O(1) summed
over a few hundred rows after a few dozen Adam steps (lr 5e-4, a step's size bounded by lr, so
rounding in the gradient moves a weight by at most ~lr per step and the loss by far less) stays
within 1e-5 of the float64 run (measured 1e-8 - 2e-7 over 4 epochs, NPE and NLE). A wrong path (statistics computed after
the cast, a flow left in float32, data not cast) changes the loss by 1e-2 or more or fails the
dtype checks below.
"""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.sbi import NLE, NPE, MLPEmbedding, two_moons
from nprefgen.sbi.simulate import simulate_from_prior

TASK = two_moons()


def _sims(n=400):
    return simulate_from_prior(TASK.prior, TASK.simulator, n, rng=np.random.default_rng(0))


@pytest.mark.parametrize("cls", [NPE, NLE])
def test_float32_training_matches_float64_to_float32_precision(cls):
    sims = _sims()
    kw = dict(flow="maf", n_transforms=2, hidden=[16, 16])
    extra = dict(n_chains=2, n_warmup=2) if cls is NLE else {}
    runs = {}
    for dt in ("float64", "float32"):
        est = cls(TASK.prior, **kw, **extra)
        est.train(sims.theta, sims.x, rng=1, max_epochs=4, dtype=dt, progress=False)
        runs[dt] = est
    f64, f32 = runs["float64"], runs["float32"]
    for (_, p32), (_, p64) in zip(f32.flow.parameters(), f64.flow.parameters()):
        assert p32.dtype == np.float64                                  # cast back for sampling
        np.testing.assert_array_equal(p32.astype(np.float32).astype(np.float64), p32)  # float32 values
    v64, v32 = np.array(f64.history_["val_loss"]), np.array(f32.history_["val_loss"])
    assert np.all(np.abs(v32 - v64) < 1e-5)
    assert not np.array_equal(v32, v64)                # the arithmetic really was float32
    assert all(np.asarray(v).dtype != np.float32 for v in f32.flow.state_dict().values())


@pytest.mark.filterwarnings("ignore:DirectPosterior.*leaks mass")   # a 2-epoch flow does
def test_float32_posterior_samples_in_float64():
    sims = _sims()
    est = NPE(TASK.prior, flow="maf", n_transforms=2, hidden=[16, 16])
    post = est.train(sims.theta, sims.x, rng=1, max_epochs=2, dtype=np.float32, progress=False)
    draws = post.sample(50, sims.x[0], rng=2)
    assert draws.dtype == np.float64 and draws.shape == (50, 2) and np.all(np.isfinite(draws))


@pytest.mark.parametrize("bad", ["float16", np.int64, "double precision"])
def test_bad_dtype_names_the_argument(bad):
    sims = _sims(50)
    with pytest.raises(ValueError, match="dtype"):
        NPE(TASK.prior, flow="maf", n_transforms=1, hidden=8).train(
            sims.theta, sims.x, rng=0, max_epochs=1, dtype=bad, progress=False)


def test_float32_with_embedding_is_refused():
    sims = _sims(50)
    est = NPE(TASK.prior, flow="maf", n_transforms=1, hidden=8,
              embedding=MLPEmbedding(2, 2, (4,), rng=0))
    with pytest.raises(ValueError, match="dtype: float32 .* embedding"):
        est.train(sims.theta, sims.x, rng=0, max_epochs=1, dtype="float32", progress=False)
