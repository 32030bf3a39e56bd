"""The VAE kernels (derivations/vae.md, VAE.2-VAE.10): the KL against Monte Carlo and the closed
form, the likelihoods against scipy and at extreme logits, gradients by the dot-product test,
and kernel/twin parity on contiguous, strided and float32 inputs at rtol 1e-12."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from nprefgen.kernels import elbo as ke
from nprefgen.testing import check_vjp
from nprefgen.testing.strategies import seeds, strided_arrays

PAIRS = {
    "kl_standard_normal": (ke.kl_standard_normal, ke.kl_standard_normal_numpy),
    "bernoulli_log_lik": (ke.bernoulli_log_lik, ke.bernoulli_log_lik_numpy),
    "gaussian_log_lik": (ke.gaussian_log_lik, ke.gaussian_log_lik_numpy),
    "elbo": (ke.elbo, ke.elbo_numpy),
}


def _inputs(name: str, a: np.ndarray, b: np.ndarray, seed: int):
    """Arguments of kernel ``name`` from two (n, d) arrays (a may be strided)."""
    rng = np.random.default_rng(seed)
    if name == "kl_standard_normal":
        return a, b
    if name == "bernoulli_log_lik":
        x = rng.uniform(0.0, 1.0, a.shape)
        x[rng.random(a.shape) < 0.3] = 1.0                      # some exact 0/1 pixels
        x[rng.random(a.shape) < 0.3] = 0.0
        return x, 20.0 * a                                       # logits up to ~|60|
    if name == "gaussian_log_lik":
        return a + b, a, b
    return 5.0 * rng.standard_normal(a.shape[0]), a, b, float(rng.uniform(0.0, 4.0))


def _terms_scale(name: str, args) -> np.ndarray:
    """Per row, the sum of |terms| of the value: the honest absolute floor of a sum whose terms
    may cancel (only the Gaussian log-likelihood and the ELBO have terms of both signs)."""
    if name == "gaussian_log_lik":
        x, m, lv = args
        return 0.5 * np.sum(np.log(2 * np.pi) + np.abs(lv) + (x - m) ** 2 * np.exp(-lv), axis=1)
    if name == "elbo":
        ll, mu, lv, beta = args
        return np.abs(ll) + beta * ke.kl_standard_normal_numpy(mu, lv)[0]
    return np.zeros(args[0].shape[0])


def _assert_parity(name: str, args):
    fast, slow = PAIRS[name]
    got, ref = fast(*args), slow(*args)
    scale = _terms_scale(name, args)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == np.float64
        atol = 1e-12 * (scale if g.ndim == 1 else 0.0)
        np.testing.assert_array_less(np.abs(g - r), 1e-12 * np.abs(r) + atol + 1e-300)


@pytest.mark.kernels
@pytest.mark.parametrize("name", sorted(PAIRS))
@given(seed=seeds(), shape=st.tuples(st.integers(1, 7), st.integers(1, 9)), data=st.data())
def test_parity(name, seed, shape, data):
    """(VAE.2)-(VAE.10) kernel == twin at rtol 1e-12 on contiguous and strided inputs."""
    a = data.draw(strided_arrays(shape))
    b = data.draw(strided_arrays(shape))
    _assert_parity(name, _inputs(name, a, b, seed))


@pytest.mark.kernels
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_parity_float32(name, rng):
    """float32 inputs are read as float64: both paths equal the float64 result of the same
    (float32-representable) values at rtol 1e-12, and return float64."""
    a = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.standard_normal((6, 5)).astype(np.float32)
    args32 = tuple(v.astype(np.float32) if isinstance(v, np.ndarray) else v
                   for v in _inputs(name, a, b, 3))
    args64 = tuple(v.astype(np.float64) if isinstance(v, np.ndarray) else v for v in args32)
    _assert_parity(name, args32)
    for f in PAIRS[name]:
        for g32, g64 in zip(f(*args32), f(*args64)):
            assert g32.dtype == np.float64
            np.testing.assert_allclose(g32, g64, rtol=1e-12, atol=0)


def test_kl_closed_form_by_hand():
    """(VAE.3) two rows computed by hand; the prior itself has KL 0 and gradient 0 (VAE.4)."""
    mu = np.array([[0.0, 0.0], [1.0, -2.0]])
    lv = np.array([[0.0, 0.0], [np.log(4.0), 0.0]])
    want = np.array([0.0, 0.5 * (1.0 + 4.0 - 1.0 - np.log(4.0) + 4.0)])
    for f in (ke.kl_standard_normal, ke.kl_standard_normal_numpy):
        kl, d_mu, d_lv = f(mu, lv)
        np.testing.assert_allclose(kl, want, rtol=1e-15)
        np.testing.assert_array_equal(d_mu[0], 0.0)
        np.testing.assert_array_equal(d_lv[0], 0.0)
        np.testing.assert_allclose(d_lv[1], [1.5, 0.0], rtol=1e-15)     # (4 - 1) / 2
    # near log_var = 0 the expm1 form keeps full relative precision: KL ~ l^2/4 per coordinate
    tiny = 1e-9
    kl = ke.kl_standard_normal(np.zeros((1, 1)), np.full((1, 1), tiny))[0][0]
    assert kl == pytest.approx(0.25 * tiny ** 2 + tiny ** 3 / 12, rel=1e-6)


def test_kl_matches_monte_carlo():
    """(VAE.3) KL = E_q[log q - log p], estimated from N draws, agrees with the closed form
    within 4 standard errors of the Monte-Carlo mean (the error scale derived from the sample)."""
    rng = np.random.default_rng(7)
    mu = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    lv = np.array([[-1.0, 0.5, 0.0], [1.2, -2.0, 0.1]])
    kl = ke.kl_standard_normal(mu, lv)[0]
    N = 200_000
    for i in range(2):
        z = mu[i] + np.exp(0.5 * lv[i]) * rng.standard_normal((N, 3))
        log_q = stats.norm.logpdf(z, mu[i], np.exp(0.5 * lv[i])).sum(axis=1)
        log_p = stats.norm.logpdf(z).sum(axis=1)
        diff = log_q - log_p
        se = diff.std(ddof=1) / np.sqrt(N)
        assert abs(diff.mean() - kl[i]) < 4.0 * se, (diff.mean(), kl[i], se)
        assert se < 0.01                               # the test has power: a 1% error shows


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_kernel_gradients_dot_product(name, rng):
    """(VAE.4), (VAE.8), (VAE.10), (VAE.2): every returned gradient is the VJP of the per-row
    values, by the dot-product test (NN.18) w.r.t. each differentiable argument."""
    fast, slow = PAIRS[name]
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    args = _inputs(name, a, b, 11)
    wrt = {"kl_standard_normal": (0, 1), "bernoulli_log_lik": (1,), "gaussian_log_lik": (1, 2),
           "elbo": (1, 2)}[name]
    for f in (fast, slow):
        for pos, arg_index in enumerate(wrt):
            def fun(v, i=arg_index):
                new = list(args)
                new[i] = v
                return f(*new)[0]

            grad = f(*args)[1 + pos]
            check_vjp(fun, lambda v, g=grad: v[:, None] * g, args[arg_index], rng=rng,
                      name=f"{name}[{arg_index}]")


def test_bernoulli_stable_at_large_logits():
    """(VAE.7), (VAE.8) at |a| = 50 and 500 the value and gradient are exact and finite, where the
    naive log(sigmoid) form gives 0 and -inf."""
    a = np.array([[50.0, -50.0, 50.0, -50.0, 500.0, -500.0]])
    x = np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 1.0]])
    tail = np.log1p(np.exp(-50.0))                           # 1.9e-22, exact
    tiny_sig = np.exp(-50.0) / (1.0 + np.exp(-50.0))         # sigmoid(-50)
    want = -(tail + tail + (50.0 + tail) + (50.0 + tail) + 500.0 + 500.0)
    for f in (ke.bernoulli_log_lik, ke.bernoulli_log_lik_numpy):
        ll, d_a = f(x, a)
        assert np.all(np.isfinite(ll)) and np.all(np.isfinite(d_a))
        assert ll[0] == pytest.approx(want, rel=1e-15)
        np.testing.assert_allclose(d_a[0], [tiny_sig, -tiny_sig, -1.0, 1.0, -1.0, 1.0],
                                   rtol=1e-14)
        # a well-predicted pixel alone: -log1p(e^-50), relative precision kept (no 50 - 50)
        single = f(np.ones((1, 1)), np.full((1, 1), 50.0))[0][0]
        assert single == pytest.approx(-tail, rel=1e-15) and single < 0


def test_gaussian_matches_scipy(rng):
    """(VAE.9) the Gaussian log-likelihood is scipy's logpdf summed over features."""
    x, m = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    lv = rng.uniform(-3, 2, (4, 6))
    want = stats.norm.logpdf(x, m, np.exp(0.5 * lv)).sum(axis=1)
    for f in (ke.gaussian_log_lik, ke.gaussian_log_lik_numpy):
        np.testing.assert_allclose(f(x, m, lv)[0], want, rtol=1e-13)


def test_bad_inputs():
    """Shape mismatch, NaN, x outside [0, 1] for the Bernoulli and a negative beta name their
    argument."""
    ok = np.zeros((2, 3))
    for f in (ke.kl_standard_normal, ke.kl_standard_normal_numpy):
        with pytest.raises(ValueError, match="^log_var"):
            f(ok, np.zeros((2, 4)))
        with pytest.raises(ValueError, match="^mu"):
            f(np.full((2, 3), np.nan), ok)
    with pytest.raises(ValueError, match="^x"):
        ke.bernoulli_log_lik(ok + 2.0, ok)
    with pytest.raises(ValueError, match="^mean"):
        ke.gaussian_log_lik(ok, np.zeros((3, 3)), ok)
    with pytest.raises(ValueError, match="^beta"):
        ke.elbo(np.zeros(2), ok, ok, beta=-1.0)
    with pytest.raises(ValueError, match="^log_lik"):
        ke.elbo_numpy(np.zeros(3), ok, ok)
