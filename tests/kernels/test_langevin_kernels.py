"""The annealed Langevin loop with an MLP score: numba loop vs NumPy twin, the stationary
variance of the discretised chain, divergence and bad input (derivations/score.md, SCORE.10-SCORE.13)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.kernels.langevin import (
    ACTIVATION_CODES, annealed_langevin_mlp, annealed_langevin_mlp_numpy, langevin_mlp,
    langevin_mlp_numpy, n_records,
)
from nprefgen.models.ncsn import NCSN
from nprefgen.testing.strategies import seeds, strided_arrays

pytestmark = pytest.mark.kernels


def random_mlp(rng, d, hidden, conditioning="scale", scale=0.5):
    widths = [d + (conditioning == "concat")] + list(hidden) + [d]
    w = [scale * rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(widths[:-1], widths[1:])]
    b = [0.1 * rng.standard_normal(o) for o in widths[1:]]
    return w, b


@given(seed=seeds(), data=st.data(), n=st.integers(1, 300), d=st.integers(1, 3),
       hidden=st.lists(st.integers(1, 9), max_size=2),
       activation=st.sampled_from(sorted(ACTIVATION_CODES)),
       conditioning=st.sampled_from(["scale", "concat"]), denoise=st.booleans(),
       record_every=st.sampled_from([0, 1, 3]))
def test_annealed_loop_parity(seed, data, n, d, hidden, activation, conditioning, denoise,
                              record_every):
    """(SCORE.12), (SCORE.13) numba loop == NumPy twin at rtol 1e-12 (same rng, same noise), for
    every activation, both conditionings, with and without the denoising step and the path,
    strided or contiguous starting particles, more and fewer particles than a cache block."""
    rng = np.random.default_rng(seed)
    w, b = random_mlp(rng, d, hidden, conditioning)
    x0 = data.draw(strided_arrays((n, d), scale=2.0))
    sigmas = np.array([2.0, 0.7, 0.25])
    kw = dict(activation=activation, conditioning=conditioning, eps=0.01, n_steps_each=4,
              denoise=denoise, record_every=record_every)
    x_ref, p_ref = annealed_langevin_mlp_numpy(x0, sigmas, w, b, rng=seed, **kw)
    x_fast, p_fast = annealed_langevin_mlp(x0, sigmas, w, b, rng=seed, **kw)
    np.testing.assert_allclose(x_fast, x_ref, rtol=1e-12, atol=1e-12)
    assert p_fast.shape == p_ref.shape == (n_records(3, 4, record_every), n, d)
    np.testing.assert_allclose(p_fast, p_ref, rtol=1e-12, atol=1e-12)
    if record_every:
        np.testing.assert_array_equal(p_ref[0], x0)
        if record_every == 1 and not denoise:
            np.testing.assert_array_equal(p_ref[-1], x_ref)


def test_float32_particles_and_plain_loop(rng):
    """float32 starting particles are computed in float64 by both; ``langevin_mlp`` is the
    annealed loop with one level (alpha = eps)."""
    w, b = random_mlp(rng, 2, [5])
    x0 = rng.standard_normal((40, 2)).astype(np.float32)
    a = langevin_mlp(x0, w, b, sigma=0.3, eps=0.05, n_steps=7, rng=1)[0]
    a_ref = langevin_mlp_numpy(x0, w, b, sigma=0.3, eps=0.05, n_steps=7, rng=1)[0]
    c = annealed_langevin_mlp(x0.astype(np.float64), [0.3], w, b, eps=0.05, n_steps_each=7, rng=1)[0]
    assert a.dtype == np.float64
    np.testing.assert_allclose(a, a_ref, rtol=1e-12)
    np.testing.assert_array_equal(a, c)


def test_the_loop_follows_the_update_rule(rng):
    """(SCORE.10), (SCORE.12) one step per level by hand: x + (alpha_i/2) f(x)/sigma_i + sqrt(alpha_i) z
    with alpha_i = eps sigma_i^2 / sigma_L^2 and z from the same generator."""
    w, b = random_mlp(rng, 2, [4], scale=1.0)
    x0 = rng.standard_normal((3, 2))
    sigmas, eps = np.array([1.5, 0.5]), 0.02
    x = x0.copy()
    gen = np.random.default_rng(7)
    for s in sigmas:
        alpha = eps * s**2 / sigmas[-1] ** 2
        f = np.maximum(x @ w[0].T + b[0], 0) + np.log1p(np.exp(-np.abs(x @ w[0].T + b[0])))
        f = f @ w[1].T + b[1]
        x = x + alpha / 2 * f / s + np.sqrt(alpha) * gen.standard_normal((1, 3, 2))[0]
    got = annealed_langevin_mlp(x0, sigmas, w, b, eps=eps, n_steps_each=1, rng=7)[0]
    np.testing.assert_allclose(got, x, rtol=1e-13)


def test_numba_loop_discretisation_bias():
    """(SCORE.10), (SCORE.11) a one-layer "network" f(x) = -x / s^2 (so the score of N(0, s^2 I)
    at sigma = 1) sampled by the numba loop: the stationary variance is s^2 / (1 - eps/(4 s^2)),
    not s^2. Start from the exact stationary law N(0, v) so no burn-in is needed; the sample
    variance of n * D draws has relative sd sqrt(2 / (n D)) (0.7 % here): tolerance 4 sd."""
    s2, eps, n, d = 2.0, 2.0, 10_000, 2                              # eps / (4 s^2) = 1/4
    v = s2 / (1 - eps / (4 * s2))
    x0 = np.sqrt(v) * np.random.default_rng(3).standard_normal((n, d))
    x, path = langevin_mlp(x0, [-np.eye(d) / s2], [np.zeros(d)], eps=eps, n_steps=50,
                           record_every=50, rng=4)
    sd = np.sqrt(2 / (n * d))
    assert abs(np.var(x) / v - 1) < 4 * sd
    assert abs(np.var(x) / s2 - 1) > 0.3                            # the bias is visible


def test_ncsn_sample_uses_the_numba_loop(rng):
    """NCSN.sample == the twin run on the network's arrays, and equals the Python-level forward:
    the score inside the loop is the network's score."""
    model = NCSN(2, hidden=(8, 8), sigmas=[1.0, 0.3], rng=rng)
    x0 = rng.standard_normal((20, 2))
    got = model.sample(20, x0=x0, eps=0.01, n_steps_each=3, denoise=False, rng=5)
    w, b = model.mlp_arrays()
    ref = annealed_langevin_mlp_numpy(x0, model.sigmas, w, b, conditioning="concat", eps=0.01,
                                      n_steps_each=3, rng=5)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    twin = model.sample(20, x0=x0, eps=0.01, n_steps_each=3, denoise=False, rng=5, method="numpy")
    np.testing.assert_array_equal(twin, ref)


def test_divergence_names_level_and_step(rng):
    """A chain that blows up stops with the level and step (1-based) in the message."""
    w, b = [np.eye(2) * 50.0], [np.zeros(2)]                         # s = 50 x / sigma: explodes
    for f in (annealed_langevin_mlp, annealed_langevin_mlp_numpy):
        with pytest.raises(RuntimeError, match=r"non-finite at level 1 of 2 \(sigma = 1\), step \d+ of 400"):
            f(rng.standard_normal((5, 2)), [1.0, 0.5], w, b, eps=0.5, n_steps_each=400, rng=0)


@pytest.mark.parametrize("f", [annealed_langevin_mlp, annealed_langevin_mlp_numpy])
@pytest.mark.parametrize("change, match", [
    (dict(sigmas=[1.0, 0.0]), "sigmas"),
    (dict(sigmas=[0.5, 1.0]), "sigmas"),
    (dict(eps=0.0), "eps"),
    (dict(eps=-1.0), "eps"),
    (dict(x0=np.array([[0.0, np.nan]])), "x0"),
    (dict(n_steps_each=0), "n_steps_each"),
    (dict(record_every=-1), "record_every"),
    (dict(activation="gelu"), "activation"),
    (dict(conditioning="film"), "conditioning"),
    (dict(weights=[np.zeros((2, 3))]), "weights"),
    (dict(weights=[np.zeros((3, 2))], biases=[np.zeros(3)]), "weights"),
    (dict(biases=[np.zeros(3)]), "biases"),
    (dict(denoise=1), "denoise"),
    (dict(rng="seed"), "rng"),
])
def test_bad_input(f, change, match):
    kw = dict(x0=np.zeros((4, 2)), sigmas=[1.0, 0.5], weights=[np.eye(2)], biases=[np.zeros(2)],
              eps=0.1, n_steps_each=2)
    kw.update(change)
    with pytest.raises(ValueError, match=f"^{match}"):
        f(kw.pop("x0"), kw.pop("sigmas"), kw.pop("weights"), kw.pop("biases"), **kw)
