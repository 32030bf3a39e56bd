"""SLCP and gaussian_linear_uniform (derivations/sbi.md, TASK.1-TASK.3): the reference posteriors
made here agree with an independent second sampler.

The second sampler is plain rejection from the prior with the likelihood written out again here
and bounded by its maximum over all Gaussians (SLCP: the sample mean and covariance of the four
points; gaussian_linear: theta = x), so both samplers are exact and share nothing but the model.
C2ST between two samples of one distribution, n draws each, 5-fold CV: the held-out accuracy
over 2n points has standard deviation sqrt(0.25 / (2n)) around 0.5 (the folds cover every point
once); the check allows 4 of them. Each check is shown able to fail on a planted bug.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from nprefgen.metrics.c2st import c2st
from nprefgen.sbi.tasks import get_task
from nprefgen.sbi.tasks_more import (
    SLCPSimulator, gaussian_linear_uniform, slcp, slcp_log_likelihood, slcp_reference,
    truncated_gaussian_linear_reference,
)

N = 500
THRESHOLD = 0.5 + 4.0 * np.sqrt(0.25 / (2 * N))


def _slcp_loglik_direct(theta, pts):
    """log prod_k N(x_k; m, Sigma) written with explicit 2x2 inverses, per row (slow, for tests)."""
    out = np.empty(theta.shape[0])
    for i, t in enumerate(theta):
        s1, s2, r = t[2] ** 2, t[3] ** 2, np.tanh(t[4])
        cov = np.array([[s1 ** 2 + 1e-6, r * s1 * s2], [r * s1 * s2, s2 ** 2 + 1e-6]])
        d = pts - t[:2]
        out[i] = (-0.5 * np.einsum("ki,ij,kj->", d, np.linalg.inv(cov), d)
                  - 2.0 * np.log(np.linalg.det(cov)) - 4.0 * np.log(2 * np.pi))
    return out


def _slcp_prior_rejection(x_obs, n, rng):
    pts = x_obs.reshape(4, 2)
    dev = pts - pts.mean(0)
    log_bound = -4.0 * np.log(2 * np.pi) - 2.0 * np.log(np.linalg.det(dev.T @ dev / 4.0)) - 4.0
    out, have = [], 0
    while have < n:
        th = rng.uniform(-3, 3, size=(200_000, 5))
        keep = np.log(rng.uniform(size=th.shape[0])) < slcp_log_likelihood(th, x_obs) - log_bound
        out.append(th[keep])
        have += int(keep.sum())
    return np.concatenate(out)[:n]


def _broad_slcp_observation():
    """An SLCP observation from the prior predictive whose posterior is broad enough for plain
    rejection from the prior (acceptance > 1e-3), fixed by the seed."""
    task = slcp()
    theta, x = task.observations(20, rng=np.random.default_rng(7))
    for xi in x:
        dev = xi.reshape(4, 2) - xi.reshape(4, 2).mean(0)
        if np.linalg.det(dev.T @ dev / 4.0) > 0.5:
            return xi
    raise AssertionError("no broad observation among 20")


def test_slcp_simulator_and_likelihood(rng):
    """(TASK.1) the simulator's points have mean m and covariance Sigma; the vectorised
    likelihood equals the one written with explicit inverses."""
    theta = np.array([[0.5, -1.0, 1.2, -0.9, 0.7]])
    x = SLCPSimulator()(np.repeat(theta, 40_000, axis=0), rng).reshape(-1, 2)
    s1, s2, r = 1.2 ** 2, 0.9 ** 2, np.tanh(0.7)
    cov = np.array([[s1 ** 2, r * s1 * s2], [r * s1 * s2, s2 ** 2]])
    n = x.shape[0]
    np.testing.assert_allclose(x.mean(0), theta[0, :2], atol=5 * np.sqrt(np.diag(cov) / n).max())
    np.testing.assert_allclose(np.cov(x.T), cov, atol=5 * np.sqrt(2.0 / n) * np.diag(cov).max())
    th = rng.uniform(-3, 3, size=(20, 5))
    xo = SLCPSimulator()(th[:1], rng)[0]
    np.testing.assert_allclose(slcp_log_likelihood(th, xo), _slcp_loglik_direct(th, xo.reshape(4, 2)),
                               rtol=1e-10)


def test_slcp_reference_against_prior_rejection(rng, monkeypatch):
    """(TASK.2) C2ST(reference, rejection from the prior) within 4 sd of 0.5; the four mirror
    copies have mass 1/4 each (binomial 4-sd band). A planted bug, skipping the g(Sigma) test
    (every proposed covariance kept), is caught by the same C2ST."""
    x_obs = _broad_slcp_observation()
    task = get_task("slcp")
    ref = task.reference_posterior(x_obs, N, rng=rng)
    other = _slcp_prior_rejection(x_obs, N, rng)
    assert c2st(ref, other, rng=0) < THRESHOLD
    quadrant = (ref[:, 2] > 0).astype(int) * 2 + (ref[:, 3] > 0)
    counts = np.bincount(quadrant, minlength=4)
    assert np.all(np.abs(counts - N / 4) < 4 * np.sqrt(N * 0.25 * 0.75)), counts

    module = importlib.import_module("nprefgen.sbi.tasks_more")
    monkeypatch.setattr(module, "_log_g", lambda a, *rest: np.full(a.shape, 1e300))
    wrong = slcp_reference(x_obs[None, :], N, task.prior, rng=rng)
    assert c2st(wrong, other, rng=0) > THRESHOLD


def test_gaussian_linear_uniform_reference(rng):
    """(TASK.3) near the box's walls (x_obs at 0.9, -0.95 and 0.2) the truncated reference agrees
    with rejection from the prior; the untruncated Gaussian (a planted bug) does not."""
    task = gaussian_linear_uniform(dim=3)
    x_obs = np.array([0.9, -0.95, 0.2])
    ref = task.reference_posterior(x_obs, N, rng=rng)
    assert np.all(task.prior.in_support(ref))
    out, have = [], 0
    while have < N:
        th = rng.uniform(-1, 1, size=(20_000, 3))
        keep = np.log(rng.uniform(size=th.shape[0])) < -0.5 * np.sum((x_obs - th) ** 2, 1) / 0.1
        out.append(th[keep])
        have += int(keep.sum())
    other = np.concatenate(out)[:N]
    assert c2st(ref, other, rng=0) < THRESHOLD
    untruncated = x_obs + np.sqrt(0.1) * rng.standard_normal((N, 3))
    assert c2st(untruncated, other, rng=0) > THRESHOLD
    iid = truncated_gaussian_linear_reference(np.array([[0.5, 0.5, 0.5], [0.7, 0.1, 0.3]]), 4000,
                                              task.prior, 0.1, rng=rng)
    np.testing.assert_allclose(iid.mean(0), [0.6, 0.3, 0.4], atol=4 * np.sqrt(0.05 / 4000) + 0.02)


def test_new_tasks_by_name_and_bad_inputs(rng):
    for name, p, dx in (("slcp", 5, 8), ("gaussian_linear_uniform", 10, 10)):
        task = get_task(name)
        theta, x = task.observations(3, rng=rng)
        assert theta.shape == (3, p) and x.shape == (3, dx) and task.dim_x == dx
    with pytest.raises(ValueError, match="^theta"):
        SLCPSimulator()(np.zeros((2, 4)), rng)
    with pytest.raises(ValueError, match="^x_obs"):
        get_task("slcp").reference_posterior(np.zeros((2, 8)), 5, rng=rng)
    with pytest.raises(ValueError, match="^x_obs"):
        get_task("slcp").reference_posterior(np.zeros(8), 5, rng=rng)      # collinear points
    with pytest.raises(ValueError, match="^dim"):
        gaussian_linear_uniform(dim=0)
