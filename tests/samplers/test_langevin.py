"""Langevin samplers with a score callable: the lecture's toy (plain Langevin cannot see the mode
weights, annealed Langevin recovers them), the discretisation bias, the Python loop against the
numba loop, and bad input (derivations/score.md, SCORE.10-SCORE.14)."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.ncsn import NCSN, geometric_sigmas
from nprefgen.models.score import gaussian_score, mode_weights, song_ermon_mixture
from nprefgen.samplers.langevin import LangevinResult, annealed_langevin, langevin

N_TOY = 1280


def mode_fraction(x: np.ndarray) -> float:
    """(SCORE.14) fraction of particles in the (5, 5) mode: x_1 + x_2 > 0; agrees with
    ``mode_weights`` (nearest centre)."""
    frac = float(np.mean(x.sum(axis=1) > 0))
    assert mode_weights(x, song_ermon_mixture().means)[0][1] == frac
    return frac


@pytest.fixture(scope="module")
def toy_start():
    """N_TOY particles uniform on the box [-8, 8]^2 and their initial split."""
    x0 = np.random.default_rng(2019).uniform(-8.0, 8.0, size=(N_TOY, 2))
    return x0, mode_fraction(x0)


def test_plain_langevin_keeps_the_initial_split(toy_start):
    """(SCORE.10), (SCORE.14) with the exact score, Langevin from a uniform box sends each particle
    to its nearest mode and stays there: the (5, 5) mode holds the box's initial share (about
    1/2, within 0.05), nowhere near its weight 0.8, although every particle has converged
    (within 5 of a mode centre)."""
    x0, split = toy_start
    toy = song_ermon_mixture()
    res = langevin(toy, x0, eps=0.1, n_steps=300, rng=1)
    frac = mode_fraction(res.samples)
    assert abs(frac - split) < 0.05, (frac, split)
    assert abs(frac - 0.8) > 0.2
    dist = np.min(np.linalg.norm(res.samples[:, None] - toy.means[None], axis=2), axis=1)
    assert np.max(dist) < 5.0


def test_annealed_langevin_recovers_mode_weights(toy_start):
    """(SCORE.12), (SCORE.14) Song & Ermon's Algorithm 1 with the exact perturbed score (SCORE.3):
    L = 10 levels geometric from 20 to 1, T = 100, eps = 0.1. The fraction in the (5, 5) mode is
    0.80 within 0.03 (2.7 binomial sd at n = 1280)."""
    x0, _ = toy_start
    res = annealed_langevin(song_ermon_mixture(), x0, geometric_sigmas(20.0, 1.0, 10), eps=0.1,
                            n_steps_each=100, rng=2)
    assert res.method == "python"
    sd = np.sqrt(0.8 * 0.2 / N_TOY)
    assert abs(mode_fraction(res.samples) - 0.8) < 0.03 and 0.03 / sd > 2.5
    np.testing.assert_allclose(res.step_sizes, 0.1 * res.sigmas**2)   # sigma_L = 1


def test_langevin_discretisation_bias():
    """(SCORE.10), (SCORE.11) on N(0, s^2 I) the chain's stationary variance is s^2 / (1 - eps/(4 s^2)).
    Started at that law, after 30 steps the sample variance of n D draws is within 4 relative
    sd sqrt(2 / (n D)) of it, and clearly above s^2."""
    s2, eps, n, d = 1.0, 1.0, 10_000, 2
    v = s2 / (1 - eps / (4 * s2))                                  # 4/3
    x0 = np.sqrt(v) * np.random.default_rng(5).standard_normal((n, d))
    res = langevin(lambda x: gaussian_score(x, np.zeros(d), s2 * np.eye(d)), x0, eps=eps,
                   n_steps=30, rng=6)
    assert abs(np.var(res.samples) / v - 1) < 4 * np.sqrt(2 / (n * d))
    assert np.var(res.samples) / s2 - 1 > 0.25


def test_python_loop_equals_numba_loop(rng):
    """(SCORE.12), (SCORE.13) an NCSN through the Python loop (any callable) and through the numba
    fast path: same rng, same noise, same chains (rtol 1e-10; the matrix products are summed in
    different orders), paths included, both conditionings."""
    for conditioning in ("scale", "concat"):
        model = NCSN(2, hidden=(16, 16), conditioning=conditioning, sigmas=[3.0, 1.0, 0.3], rng=rng)
        x0 = rng.uniform(-3, 3, size=(150, 2))
        kw = dict(eps=0.01, n_steps_each=5, denoise=True, record_every=2)
        py = annealed_langevin(model, x0, model.sigmas, method="python", rng=3, **kw)
        nb = annealed_langevin(model, x0, model.sigmas, rng=3, **kw)
        assert (py.method, nb.method) == ("python", "numba")
        np.testing.assert_allclose(nb.samples, py.samples, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(nb.path, py.path, rtol=1e-10, atol=1e-12)
        assert py.path.shape == (1 + 15 // 2, 150, 2)


def test_result_and_path(rng):
    x0 = rng.standard_normal((10, 2))
    res = langevin(lambda x: -x, x0, eps=0.1, n_steps=6, record_every=3, rng=0)
    assert isinstance(res, LangevinResult)
    assert res.path.shape == (3, 10, 2)
    np.testing.assert_array_equal(res.path[0], x0)
    np.testing.assert_array_equal(res.path[-1], res.samples)
    assert not np.shares_memory(res.samples, x0)


def test_divergence_names_level_and_step(rng):
    with pytest.raises(RuntimeError, match=r"non-finite at level 2 of 2 \(sigma = 0.5\), step \d+ of 500"), \
            np.errstate(over="ignore", invalid="ignore"):
        annealed_langevin(lambda x, s: 40.0 * x if s < 1 else -x, rng.standard_normal((4, 2)),
                          [1.0, 0.5], eps=0.3, n_steps_each=500, rng=0)


@pytest.mark.parametrize("call, match", [
    (lambda x0: annealed_langevin(lambda x, s: -x, x0, [1.0, -0.5], eps=0.1, n_steps_each=2), "sigmas"),
    (lambda x0: annealed_langevin(lambda x, s: -x, x0, [0.5, 1.0], eps=0.1, n_steps_each=2), "sigmas"),
    (lambda x0: annealed_langevin(lambda x, s: -x, x0, [1.0, 0.5], eps=0.0, n_steps_each=2), "eps"),
    (lambda x0: langevin(lambda x: -x, x0, eps=-0.1, n_steps=2), "eps"),
    (lambda x0: langevin(lambda x: -x, np.where(x0 > 0, np.nan, x0), eps=0.1, n_steps=2), "x0"),
    (lambda x0: langevin(lambda x: -x[:, :1], x0, eps=0.1, n_steps=2), "score"),
    (lambda x0: annealed_langevin(lambda x, s: -x[:-1], x0, [1.0], eps=0.1, n_steps_each=2), "score"),
    (lambda x0: langevin("not callable", x0, eps=0.1, n_steps=2), "score"),
    (lambda x0: langevin(lambda x: -x, x0, eps=0.1, n_steps=0), "n_steps"),
    (lambda x0: annealed_langevin(lambda x, s: -x, x0, [1.0], eps=0.1, n_steps_each=2,
                                  method="numba"), "method"),
    (lambda x0: annealed_langevin(lambda x, s: -x, x0, [1.0], eps=0.1, n_steps_each=2,
                                  denoise="yes"), "denoise"),
])
def test_bad_input(call, match, rng):
    with pytest.raises(ValueError, match=f"^{match}:"):
        call(rng.standard_normal((5, 2)))
