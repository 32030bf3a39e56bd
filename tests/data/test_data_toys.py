"""2-D toy densities: normalisation, samples vs density, exact facts of the samplers (DATA.1-7)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.special import ndtr

from nprefgen.data import toys
from nprefgen.data.toys import TOYS

WITH_DENSITY = [name for name, toy in TOYS.items() if toy.has_log_prob]


def grid_integral(log_prob, bounds, h):
    (x0, x1), (y0, y1) = bounds
    gx, gy = np.arange(x0 + h / 2, x1, h), np.arange(y0 + h / 2, y1, h)
    X, Y = np.meshgrid(gx, gy)
    return np.exp(log_prob(np.stack([X.ravel(), Y.ravel()], axis=1))).sum() * h * h


def test_registry_documents_which_toys_have_a_density():
    assert WITH_DENSITY == ["rings", "checkerboard", "8gaussians"]
    for name in ("two_moons", "pinwheel"):
        with pytest.raises(NotImplementedError, match="no closed-form density"):
            TOYS[name].log_prob(np.zeros((1, 2)))


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_log_prob_integrates_to_one(name):
    """(DATA.2), (DATA.3), (DATA.5), (DATA.6): the midpoint rule on a 0.01 grid over the bounds.
    The densities are smooth (or piecewise constant on cells the grid aligns with), so the
    rule is accurate far beyond the 1e-6 tolerance."""
    toy = TOYS[name]
    assert abs(grid_integral(toy.log_prob, toy.bounds, 0.01) - 1.0) < 1e-6


def test_rings_with_heavy_truncation_integrate_to_one():
    """Rings of radius comparable to sigma: C_k's Phi and phi terms both matter (DATA.3), and
    the naive normaliser 2 pi r (right only for r >> s) visibly fails the same check."""
    box = ((-1.8, 1.8), (-1.8, 1.8))
    lp = lambda x: toys.log_prob_rings(x, radii=(0.1, 0.6), sigma=0.2)     # noqa: E731
    assert abs(grid_integral(lp, box, 0.004) - 1.0) < 1e-4
    one = lambda x: toys.log_prob_rings(x, radii=(0.1,), sigma=0.2)        # noqa: E731
    naive = lambda x: one(x) + toys.rings_log_normaliser((0.1,), 0.2)[0] \
        - np.log(2 * np.pi * 0.1)                                           # noqa: E731
    assert abs(grid_integral(one, box, 0.004) - 1.0) < 1e-4
    assert abs(grid_integral(naive, box, 0.004) - 1.0) > 0.2                 # 1.40


@pytest.mark.parametrize("r,sigma", [(1.5, 0.1), (0.1, 0.2), (0.0001, 1.0)])
def test_rings_normaliser_matches_quadrature(r, sigma):
    """(DATA.3) C = 2 pi (r Phi(r/s) + s phi(r/s)) = int_0^inf 2 pi rho N(rho; r, s^2) d rho."""
    quad, _ = integrate.quad(lambda rho: 2 * np.pi * rho * stats.norm.pdf(rho, r, sigma),
                             0.0, np.inf, epsabs=1e-13, epsrel=1e-12)
    assert np.exp(toys.rings_log_normaliser([r], sigma)[0]) == pytest.approx(quad, rel=1e-9)


def chi_square(x, log_prob, bounds, cell, sub=8):
    """Pearson chi-square of samples x against the density on square cells; cells with fewer
    than 5 expected points are pooled with the mass outside. Returns (statistic, dof)."""
    (x0, x1), (y0, y1) = bounds
    ex, ey = np.arange(x0, x1 + cell / 2, cell), np.arange(y0, y1 + cell / 2, cell)
    h = cell / sub
    gx, gy = np.arange(x0 + h / 2, ex[-1], h), np.arange(y0 + h / 2, ey[-1], h)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    dens = np.exp(log_prob(np.stack([X.ravel(), Y.ravel()], axis=1))).reshape(X.shape) * h * h
    prob = dens.reshape(len(ex) - 1, sub, len(ey) - 1, sub).sum(axis=(1, 3))  # (cx, cy)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[ex, ey])
    n = x.shape[0]
    expected = n * prob.ravel()
    big = expected >= 5
    obs = np.r_[counts.ravel()[big], n - counts.ravel()[big].sum()]
    exp_ = np.r_[expected[big], n - expected[big].sum()]
    keep = exp_ > 0
    stat = np.sum((obs[keep] - exp_[keep]) ** 2 / exp_[keep])
    return stat, int(keep.sum()) - 1


CELLS = {"rings": 0.2, "checkerboard": 0.25, "8gaussians": 0.2}


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_samples_match_log_prob_chi_square(name):
    """Samples against the closed-form density (DATA.2-DATA.6; the rings radius by the rejection
    sampler of DATA.4): Pearson chi-square below its 1 - 1e-4 quantile, n = 20,000."""
    toy = TOYS[name]
    x = toy.sample(20_000, rng=np.random.default_rng(7))
    stat, dof = chi_square(x, toy.log_prob, toy.bounds, CELLS[name])
    assert dof > 50
    assert stat < stats.chi2.ppf(1 - 1e-4, dof), (stat, dof)


def test_chi_square_detects_a_wrong_sampler():
    """The same check rejects rings drawn with sigma 0.12 against the sigma 0.1 density."""
    x = toys.sample_rings(20_000, rng=np.random.default_rng(7), sigma=0.12)
    stat, dof = chi_square(x, TOYS["rings"].log_prob, TOYS["rings"].bounds, CELLS["rings"])
    assert stat > 3 * stats.chi2.ppf(1 - 1e-4, dof)


@pytest.mark.parametrize("r,sigma", [(1.0, 0.1), (0.1, 0.2)])
def test_ring_radius_sampler_matches_its_cdf(r, sigma):
    """(DATA.4) radii have density prop. to rho N(rho; r, s^2) on rho > 0: KS test against the CDF
    F(rho) = [r (Phi(u) - Phi(-a)) + s (phi(a) - phi(u))] / (r Phi(a) + s phi(a))."""
    rho = toys._sample_ring_radius(20_000, r, sigma, np.random.default_rng(3))
    assert rho.min() > 0
    a = r / sigma
    phi = lambda t: np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)             # noqa: E731

    def cdf(p):
        u = (p - r) / sigma
        norm = r * ndtr(a) + sigma * phi(a)
        return (r * (ndtr(u) - ndtr(-a)) + sigma * (phi(a) - phi(u))) / norm

    assert stats.kstest(rho, cdf).pvalue > 1e-4
    # the plain normal (no rho factor, no truncation) is rejected for the truncated case
    if a < 1:
        assert stats.kstest(rho, stats.norm(r, sigma).cdf).pvalue < 1e-6


def test_checkerboard_support():
    """(DATA.5) density 1/8 on the dark squares, zero on the light ones and outside."""
    x = toys.sample_checkerboard(4000, rng=np.random.default_rng(1))
    lp = toys.log_prob_checkerboard(x)
    np.testing.assert_allclose(lp, -np.log(8.0), rtol=0, atol=0)
    light = np.array([[0.5, -0.5], [-1.5, -0.5], [1.5, 0.5], [0.2, 1.2]])
    outside = np.array([[2.0, 0.5], [-2.1, -1.5], [0.5, 2.0]])
    assert np.all(np.isneginf(toys.log_prob_checkerboard(np.r_[light, outside])))
    squares = np.floor(x).astype(int)
    _, counts = np.unique(squares, axis=0, return_counts=True)
    assert counts.shape == (8,)
    assert stats.chisquare(counts).pvalue > 1e-4
    wide = toys.sample_checkerboard(500, rng=np.random.default_rng(2), n_side=6)
    assert np.all(np.isfinite(toys.log_prob_checkerboard(wide, n_side=6)))
    assert np.abs(wide).max() > 2.0


def test_8gaussians_log_prob_matches_scipy(rng):
    """(DATA.6) against an explicit mixture of scipy multivariate normals."""
    x = rng.uniform(-3, 3, (200, 2))
    mu = toys.eight_gaussians_means(8, 2.0)
    ref = np.log(np.mean([stats.multivariate_normal(m, 0.04 * np.eye(2)).pdf(x) for m in mu],
                         axis=0))
    np.testing.assert_allclose(toys.log_prob_8gaussians(x), ref, rtol=1e-12)
    far = toys.log_prob_8gaussians(np.array([[40.0, 40.0]]))
    assert np.isfinite(far[0]) and far[0] < -1e4                           # stable far out


def test_two_moons_lie_on_the_arcs_and_have_the_exact_mean():
    """(DATA.1) without noise every point is on its half circle; with noise the mean is
    (1/2, 1/4) (E cos t = 0, E sin t = 2/pi), within 4 standard errors."""
    x = toys.sample_two_moons(2000, rng=np.random.default_rng(5), noise=0.0)
    upper = np.isclose(np.hypot(x[:, 0], x[:, 1]), 1.0) & (x[:, 1] >= -1e-12)
    lower = np.isclose(np.hypot(x[:, 0] - 1.0, x[:, 1] - 0.5), 1.0) & (x[:, 1] <= 0.5 + 1e-12)
    assert np.all(upper | lower)
    assert 0.45 < upper.mean() < 0.55
    n = 40_000
    y = toys.sample_two_moons(n, rng=np.random.default_rng(6))
    se = y.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(y.mean(axis=0) - [0.5, 0.25]) < 4 * se)


def test_pinwheel_norm_and_symmetry():
    """(DATA.7) the warp is a rotation: |x| = |f| with E|x|^2 = 1 + s_r^2 + s_t^2, and the
    5-fold symmetry makes E[exp(i arg x)] = 0."""
    n = 40_000
    x = toys.sample_pinwheel(n, rng=np.random.default_rng(8))
    r2 = np.sum(x * x, axis=1)
    assert abs(r2.mean() - (1 + 0.09 + 0.01)) < 4 * r2.std() / np.sqrt(n)
    f = np.random.default_rng(9).standard_normal((n, 2)) * [0.3, 0.1] + [1.0, 0.0]
    assert stats.ks_2samp(np.sqrt(r2), np.hypot(f[:, 0], f[:, 1])).pvalue > 1e-4
    phase = np.exp(1j * np.arctan2(x[:, 1], x[:, 0]))
    assert abs(phase.mean()) < 4 / np.sqrt(n)
    one_arm = toys.sample_pinwheel(2000, rng=np.random.default_rng(1), n_arms=1, tangential_std=0.0,
                                   rate=0.0)
    np.testing.assert_allclose(one_arm[:, 1], 0.0, atol=1e-12)             # no rotation


@pytest.mark.parametrize("name", list(TOYS))
def test_determinism_by_rng(name):
    toy = TOYS[name]
    a = toy.sample(300, rng=np.random.default_rng(11))
    b = toy.sample(300, rng=np.random.default_rng(11))
    c = toy.sample(300, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@given(n=st.integers(1, 40), name=st.sampled_from(list(TOYS)), seed=st.integers(0, 2**16))
def test_sample_shapes(n, name, seed):
    x = TOYS[name].sample(n, rng=np.random.default_rng(seed))
    assert x.shape == (n, 2) and x.dtype == np.float64 and np.all(np.isfinite(x))
    if TOYS[name].has_log_prob:
        assert np.all(np.isfinite(TOYS[name].log_prob(x)))


@pytest.mark.parametrize("call,arg", [
    (lambda: toys.sample_rings(0, rng=np.random.default_rng(0)), "n"),
    (lambda: toys.sample_8gaussians(2.5, rng=np.random.default_rng(0)), "n"),
    (lambda: toys.sample_two_moons(10, rng="0"), "rng"),
    (lambda: toys.log_prob_rings(np.zeros((3, 3))), "x"),
    (lambda: toys.log_prob_8gaussians(np.full((2, 2), np.nan)), "x"),
    (lambda: toys.sample_rings(5, rng=np.random.default_rng(0), sigma=-1.0), "sigma"),
    (lambda: toys.log_prob_rings(np.zeros((1, 2)), radii=(1.0, -1.0)), "radii"),
    (lambda: toys.sample_checkerboard(5, rng=np.random.default_rng(0), n_side=5), "n_side"),
    (lambda: toys.sample_pinwheel(5, rng=np.random.default_rng(0), n_arms=0), "n_arms"),
])
def test_bad_inputs_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        call()
