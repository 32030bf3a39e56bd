"""The full-covariance Gaussian density model (nprefgen/models/gaussian.py; derivations/splines.md,
SPL.17-SPL.18)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nprefgen.models.gaussian import GaussianDensity


def test_gaussian_matches_scipy_and_conditions(rng):
    """(SPL.17) log-density equals scipy's multivariate normal; (SPL.18) the conditional equals
    log p(y, c) - log p(c) of the joint fit; samples have the fitted mean within 5 standard
    errors."""
    a = rng.standard_normal((5, 5))
    data = rng.standard_normal((4000, 5)) @ a.T + np.arange(5)
    g = GaussianDensity(ridge=0.0).fit(data)
    np.testing.assert_allclose(g.mu_, data.mean(0), rtol=1e-12)
    cov = np.cov(data.T, bias=True)
    np.testing.assert_allclose(g.log_prob(data[:7]),
                               stats.multivariate_normal(data.mean(0), cov).logpdf(data[:7]),
                               rtol=1e-10)
    y, c = data[:, :3], data[:, 3:]
    gc = GaussianDensity(ridge=0.0).fit(y, c)
    gm = GaussianDensity(ridge=0.0).fit(c)
    np.testing.assert_allclose(gc.log_prob(y[:9], c[:9]), g.log_prob(data[:9]) - gm.log_prob(c[:9]),
                               rtol=1e-10)
    s = gc.sample(20_000, c[0], rng=rng)              # one (C,) row broadcast
    se = np.sqrt(np.diag(gc.cov_) / 20_000)
    mean_c = gc.mu_ + (c[0] - c.mean(0)) @ gc.gain_.T
    assert np.all(np.abs(s.mean(0) - mean_c) < 5 * se)


def test_fit_returns_self_history_and_spec7_rng(rng):
    """fit returns self and records the mean training negative log-likelihood as train_loss; sample's rng follows SPEC 7
    (an int seed repeats, None draws fresh); the parameter count is D + D(D+1)/2."""
    x = rng.standard_normal((200, 3))
    g = GaussianDensity()
    assert g.fit(x) is g
    np.testing.assert_allclose(g.history_["train_loss"][0], -g.log_prob(x).mean(), rtol=1e-14)
    np.testing.assert_array_equal(g.sample(4, rng=7), g.sample(4, rng=7))
    assert not np.array_equal(g.sample(4), g.sample(4))
    assert g.num_parameters() == 3 + 6


def test_save_load_round_trip(tmp_path, rng):
    """save/load keeps every value (conditional model too); a corrupt or foreign file raises
    ValueError naming path and leaves the target of a failed save untouched."""
    y, c = rng.standard_normal((100, 2)), rng.standard_normal((100, 2))
    for g, ctx in ((GaussianDensity().fit(y), None), (GaussianDensity().fit(y, c), c[:5])):
        path = tmp_path / "g.npz"
        g.save(path)
        h = GaussianDensity()
        assert h.load(path) is h
        np.testing.assert_array_equal(h.log_prob(y[:5], ctx), g.log_prob(y[:5], ctx))
        np.testing.assert_array_equal(h.sample(3, None if ctx is None else ctx[:3], rng=1),
                                      g.sample(3, None if ctx is None else ctx[:3], rng=1))
        assert h.history_ == g.history_
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="path"):
        GaussianDensity().load(tmp_path / "other.npz")
    np.savez(tmp_path / "bad.npz", mu=np.zeros(2), cov=np.array([[1.0, 2.0], [2.0, 1.0]]),
             ridge=np.array(0.0), history=np.array("{}"))
    with pytest.raises(ValueError, match="path"):
        GaussianDensity().load(tmp_path / "bad.npz")
    before = (tmp_path / "g.npz").read_bytes()
    with pytest.raises(ValueError, match="save"):
        GaussianDensity().save(tmp_path / "g.npz")
    assert (tmp_path / "g.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "g.npz", "other.npz"]


def test_bad_inputs_raise(rng):
    """Unfitted use, a context the model was not fitted with, bad shapes: ValueError naming the
    argument."""
    g = GaussianDensity()
    with pytest.raises(ValueError, match="fit"):
        g.log_prob(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="fit"):
        g.sample(2)
    g.fit(rng.standard_normal((5, 2)))
    with pytest.raises(ValueError, match="context"):
        g.log_prob(np.zeros((1, 2)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="y"):
        g.log_prob(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="rng"):
        g.sample(2, rng="x")
    with pytest.raises(ValueError, match="ridge"):
        GaussianDensity(ridge=-1.0)
    with pytest.raises(ValueError, match="y"):
        GaussianDensity(ridge=0.0).fit(np.ones((5, 2)))
