"""The VAE (derivations/vae.md): whole-model gradients by the dot-product test with eps fixed,
a planted sign bug caught, IWAE bounds ordered in k and converging to the exact log-likelihood
of a linear Gaussian VAE, batching invariance, the probabilistic-PCA solution recovered,
files, sampling and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import nprefgen.models.vae as V
from nprefgen.models.vae import VAE, conv_vae, dense_vae, linear_gaussian_vae, load_vae, ppca_ml
from nprefgen.testing import vjp_error


def whole_vae_errors(vae: VAE, x: np.ndarray, eps: np.ndarray, rng, k: int | None = None):
    """Dot-product tests (NN.18) of the per-row objective w.r.t. the input and every parameter,
    eps fixed: ELBO (VAE.11) when ``k`` is None, else the IWAE estimate (VAE.15). The VJP of
    the per-row values along v is the gradient of sum_i v_i value_i, i.e. ``weights=v``."""
    def run(x_, weights=None):
        if k is None:
            return vae.elbo_and_grad(x_, eps, weights=weights)
        return vae.iwae_and_grad(x_, k, eps, weights=weights)

    def values(x_):
        out = run(x_)[0]
        vae.zero_grad()
        return out

    results = [vjp_error(values, lambda v: run(x, weights=v)[1], x, rng=rng, name="x")]
    vae.zero_grad()
    for name, p, g in vae.nets.named_parameters():
        original = p.copy()

        def fun(p_, p=p, original=original):
            p[...] = p_
            try:
                return values(x)
            finally:
                p[...] = original

        def vjp(v, g=g):
            vae.zero_grad()
            run(x, weights=v)
            return g.copy()

        results.append(vjp_error(fun, vjp, original, rng=rng, name=name))
    vae.zero_grad()
    return results


def _models(rng):
    """Small float64 VAEs with smooth activations (the stencil of NN.19 assumes smoothness)."""
    return {
        "dense-bernoulli": dense_vae(6, 2, hidden=(5,), rng=rng, activation="tanh", beta=0.7),
        "dense-gaussian-learned": dense_vae(6, 3, hidden=(4, 5), rng=rng, activation="softplus",
                                            likelihood="gaussian"),
        "dense-gaussian-fixed": dense_vae(6, 2, hidden=(5,), rng=rng, activation="tanh",
                                          likelihood="gaussian", decoder_var=0.3),
        "conv-bernoulli": conv_vae((1, 4, 4), 2, channels=(2, 3), rng=rng, activation="tanh"),
    }


@pytest.mark.parametrize("kind", ["dense-bernoulli", "dense-gaussian-learned",
                                  "dense-gaussian-fixed", "conv-bernoulli"])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_whole_elbo_dot_product(kind, objective, rng):
    """(VAE.5), (VAE.6), (VAE.11) and (VAE.15): the whole VAE's gradient w.r.t. the input and every
    parameter passes the dot-product test at rtol 1e-8 with eps fixed."""
    vae = _models(rng)[kind]
    n = 3
    x = rng.uniform(0.1, 0.9, (n, vae.in_features))
    k = None if objective == "elbo" else 4
    eps = rng.standard_normal((n, vae.latent_dim) if k is None else (k, n, vae.latent_dim))
    results = whole_vae_errors(vae, x, eps, rng, k=k)
    assert len(results) == 1 + len(list(vae.nets.named_parameters()))
    bad = [str(r) for r in results if not r.ok]
    assert not bad, "\n".join(bad)
    assert max(r.rel_error for r in results) < 1e-8


def test_iwae_objective_dot_product(rng):
    """(VAE.15) at k = 1 the IWAE gradient is the sampled-KL ELBO's, and at k = 6 it passes the
    dot-product test; its value at k = 1 is the one-sample ELBO with log q - log p sampled."""
    vae = dense_vae(5, 2, hidden=(4,), rng=rng, activation="tanh")
    x = rng.uniform(0.1, 0.9, (4, 5))
    eps = rng.standard_normal((6, 4, 2))
    assert all(r.ok for r in whole_vae_errors(vae, x, eps, rng, k=6))
    value, _ = vae.iwae_and_grad(x, 1, eps[:1])
    vae.zero_grad()
    mu, log_var = vae.encode(x)
    z = mu + np.exp(0.5 * log_var) * eps[0]
    log_q = stats.norm.logpdf(z, mu, np.exp(0.5 * log_var)).sum(axis=1)
    log_p = stats.norm.logpdf(z).sum(axis=1)
    p = vae.decode(z)
    log_lik = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1)
    np.testing.assert_allclose(value, log_lik + log_p - log_q, rtol=1e-12)


def test_wrong_kl_sign_is_caught(rng, monkeypatch):
    """The check can fail: a KL gradient with the wrong sign (VAE.4) is caught by the whole-VAE
    dot-product test (VAE.11), and the correct one passes on the same draws."""
    vae = dense_vae(6, 2, hidden=(5,), rng=rng, activation="tanh")
    x = rng.uniform(0.1, 0.9, (3, 6))
    eps = rng.standard_normal((3, 2))
    assert all(r.ok for r in whole_vae_errors(vae, x, eps, np.random.default_rng(1)))
    right = V.elbo_kernel

    def wrong_sign(log_lik, mu, log_var, beta=1.0):
        value, d_mu, d_lv = right(log_lik, mu, log_var, beta)
        return value, d_mu, -d_lv                          # +beta expm1(l)/2: the planted bug

    monkeypatch.setattr(V, "elbo_kernel", wrong_sign)
    results = whole_vae_errors(vae, x, eps, np.random.default_rng(1))
    failed = {r.name for r in results if not r.ok}
    assert "x" in failed and "encoder.2.weight" in failed
    assert "decoder.2.weight" not in failed                # the decoder path is untouched


def _random_linear_vae(rng, D=4, d=2):
    vae = linear_gaussian_vae(D, d, rng=rng)
    vae.nets.params["decoder_log_var"][...] = np.log(0.5)
    return vae


def _exact_log_prob(vae: VAE, x: np.ndarray) -> np.ndarray:
    """(VAE.16) log N(x | b, W W^T + sigma^2 I) of the linear Gaussian VAE."""
    W = vae.decoder.params["weight"]
    b = vae.decoder.params["bias"]
    C = W @ W.T + np.exp(vae.nets.params["decoder_log_var"][0]) * np.eye(len(b))
    return stats.multivariate_normal(b, C).logpdf(x)


def test_iwae_bounds_increase_with_k():
    """(VAE.13) L_1 <= L_10 <= L_100 <= L_5000 <= log p(x), statistically: each L_k is the mean
    over R independent estimates per row, and each difference must exceed -3 standard errors
    (computed from the R N paired estimates). The gaps are large enough that the test has power
    (the first one is also > +3 SE), and L_5000 is below the exact log p(x) of the linear
    Gaussian VAE within 3 SE. L_1's mean agrees with the analytic-KL ELBO (VAE.2) within 4 SE."""
    rng = np.random.default_rng(5)
    vae = _random_linear_vae(rng)
    x = rng.standard_normal((40, 4)) * 1.5
    R = 20
    ks = (1, 10, 100)
    est = {k: np.stack([vae.log_prob_iwae(x, k, rng=rng) for _ in range(R)]) for k in ks}
    est[5000] = np.stack([vae.log_prob_iwae(x, 5000, rng=rng, batch=2000) for _ in range(4)])
    exact = _exact_log_prob(vae, x)
    for lo, hi in zip((1, 10, 100), (10, 100, 5000)):
        diff = est[hi].mean(axis=0) - est[lo].mean(axis=0)               # (N,)
        var = (est[hi].var(axis=0, ddof=1) / len(est[hi])
               + est[lo].var(axis=0, ddof=1) / len(est[lo]))
        total_se = np.sqrt(np.sum(var)) / len(diff)                      # SE of diff.mean()
        assert diff.mean() > -3.0 * total_se, (lo, hi, diff.mean(), total_se)
    gap1 = est[10].mean() - est[1].mean()
    assert gap1 > 3.0 * np.sqrt(est[10].var() / est[10].size + est[1].var() / est[1].size)
    gap = est[5000] - exact                                              # (4, N)
    assert gap.mean() < 3.0 * gap.std(ddof=1) / np.sqrt(gap.size)       # L_k <= log p(x)
    elbo = np.stack([vae.elbo(x, rng=rng) for _ in range(R)])
    d = est[1] - elbo
    assert abs(d.mean()) < 4.0 * d.std(ddof=1) / np.sqrt(d.size)


def _posterior_encoder(vae: VAE, inflate: float = 1.0) -> None:
    """Set the linear encoder to the exact posterior of the linear Gaussian model (VAE.16):
    q(z | x) = N(M^{-1} W^T (x - b), sigma^2 M^{-1}), M = W^T W + sigma^2 I, with the variance
    times ``inflate``; exact when W has orthogonal columns (M diagonal) and inflate = 1."""
    W, b = vae.decoder.params["weight"], vae.decoder.params["bias"]
    s2 = np.exp(vae.nets.params["decoder_log_var"][0])
    M = W.T @ W + s2 * np.eye(W.shape[1])
    A = np.linalg.solve(M, W.T)                                        # (d, D)
    enc = vae.encoder.params
    d = W.shape[1]
    enc["weight"][:d], enc["bias"][:d] = A, -A @ b
    enc["weight"][d:] = 0.0
    enc["bias"][d:] = np.log(inflate * s2 * np.diag(np.linalg.inv(M)))


def test_iwae_converges_to_the_exact_log_likelihood():
    """(VAE.12), (VAE.13) with orthogonal decoder columns the encoder can be the exact posterior:
    then every weight equals p(x) and L_1 = L_k = log p(x) to round-off. With the posterior
    variance doubled, L_1 falls below by KL(q || posterior) (closed form) and L_5000 comes back
    to log p(x) within 0.01 nats
    on average (the IWAE gap shrinks as O(1/k))."""
    rng = np.random.default_rng(8)
    vae = _random_linear_vae(rng, D=5, d=2)
    q, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    vae.decoder.params["weight"][...] = q * np.array([2.0, 0.7])
    x = rng.standard_normal((30, 5)) * 1.5
    exact = _exact_log_prob(vae, x)
    _posterior_encoder(vae)
    np.testing.assert_allclose(vae.log_prob_iwae(x, 1, rng=rng), exact, rtol=1e-10)
    np.testing.assert_allclose(vae.log_prob_iwae(x, 50, rng=rng), exact, rtol=1e-10)
    _posterior_encoder(vae, inflate=2.0)
    gap1 = exact - np.stack([vae.log_prob_iwae(x, 1, rng=rng) for _ in range(20)])   # (20, N)
    l5000 = vae.log_prob_iwae(x, 5000, rng=rng, batch=2500)
    # E[log p - L_1] = KL(q || posterior) = d (2 - 1 - log 2) / 2 for a doubled variance
    want = 2 * 0.5 * (1.0 - np.log(2.0))
    assert abs(gap1.mean() - want) < 4.0 * gap1.std(ddof=1) / np.sqrt(gap1.size)
    assert abs(np.mean(exact - l5000)) < 0.01


def test_iwae_batches_do_not_change_the_value(rng):
    """(VAE.14) the streaming log-sum-exp over particle batches gives the one-pass value: the
    noise stream is consumed in the same order, so any batch size agrees to round-off."""
    vae = dense_vae(6, 2, hidden=(5,), rng=rng)
    x = rng.uniform(0, 1, (5, 6))
    ref = vae.log_prob_iwae(x, 300, rng=3, batch=10_000)
    for batch in (1, 7, 64):
        np.testing.assert_allclose(vae.log_prob_iwae(x, 300, rng=3, batch=batch), ref, rtol=1e-12)
    # the same value by the unbatched formula (VAE.12) through iwae_and_grad
    eps = np.random.default_rng(3).standard_normal((300, 5, 2))
    np.testing.assert_allclose(vae.iwae_and_grad(x, 300, eps)[0], ref, rtol=1e-12)


def test_linear_vae_recovers_ppca():
    """(VAE.16) a linear Gaussian VAE trained on the ELBO recovers the pPCA maximum-likelihood
    covariance W W^T + sigma^2 I and noise variance of Tipping & Bishop, and its ELBO reaches the
    pPCA log-likelihood. Tolerance: the ML estimate's own sampling error, sqrt(2 / N) relative
    for a covariance entry (the VAE must be at least as close to the ML fit as the ML fit is to
    the truth, scale-wise); 0.02 nats for the ELBO (MC noise of the 5-sample estimate below)."""
    rng = np.random.default_rng(0)
    N, D, d = 2000, 5, 2
    W_true = rng.standard_normal((D, d)) * np.array([2.0, 1.0])
    x = rng.standard_normal((N, d)) @ W_true.T + 0.5 * rng.standard_normal((N, D)) + 1.0
    mean, W, sigma2, C, log_lik = ppca_ml(x, d)
    vae = linear_gaussian_vae(D, d, rng=1)
    for seed, (epochs, lr) in enumerate([(100, 0.03), (25, 0.009), (25, 0.0027)]):
        vae.fit(x, rng=seed, epochs=epochs, batch_size=100, lr=lr)      # a step-size decay
    Wv = vae.decoder.params["weight"]
    s2 = float(np.exp(vae.nets.params["decoder_log_var"][0]))
    Cv = Wv @ Wv.T + s2 * np.eye(D)
    tol = np.sqrt(2.0 / N)
    assert np.linalg.norm(Cv - C) / np.linalg.norm(C) < tol
    assert abs(s2 / sigma2 - 1.0) < 2 * tol
    np.testing.assert_allclose(vae.decoder.params["bias"], mean,
                               atol=tol * np.sqrt(np.diag(C)).max())
    elbo = vae.elbo(x, rng=4, n_samples=5).mean()
    assert elbo <= log_lik + 0.02 and elbo > log_lik - 0.02


def test_save_load_round_trip(tmp_path, rng):
    """Parameters and the builder configuration survive save/load_vae: the same eps gives the
    same ELBO bit for bit; a file without configuration loads into an identical VAE."""
    vae = conv_vae((1, 8, 8), 3, rng=rng, likelihood="gaussian", beta=2.0)
    vae.nets.params["decoder_log_var"][...] = -1.3
    x = rng.standard_normal((4, 64))
    eps = rng.standard_normal((4, 3))
    path = tmp_path / "vae.npz"
    vae.save(path)
    again = load_vae(path)
    assert again.beta == 2.0 and again.image_shape == (1, 8, 8)
    np.testing.assert_array_equal(again.elbo_and_grad(x, eps)[0], vae.elbo_and_grad(x, eps)[0])
    other = conv_vae((1, 8, 8), 3, rng=9, likelihood="gaussian").load(path)
    np.testing.assert_array_equal(other.encode(x)[0], vae.encode(x)[0])
    with pytest.raises(ValueError, match="^path"):
        load_vae(tmp_path / "missing.npz")


def test_images_sampling_and_decoding(rng):
    """(VAE.1) a conv VAE takes (n, c, h, w) images or flat rows alike; sample(n, rng) is
    reproducible from a seed and gives means in (0, 1) or binary draws."""
    vae = conv_vae((1, 8, 8), 2, rng=rng)
    imgs = rng.uniform(0, 1, (3, 1, 8, 8))
    np.testing.assert_array_equal(vae.encode(imgs)[0], vae.encode(imgs.reshape(3, 64))[0])
    s = vae.sample(5, rng=4)
    assert s.shape == (5, 64) and np.all((s > 0) & (s < 1))
    np.testing.assert_array_equal(s, vae.sample(5, rng=4))
    binary = vae.sample(5, rng=4, mean=False)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert vae.reconstruct(imgs).shape == (3, 64)


def test_beta_weights_the_kl(rng):
    """(VAE.2) ELBO_beta = log p(x | z) - beta KL with the same eps: the beta = 0 and beta = 1
    values differ by exactly the analytic KL (VAE.3)."""
    from nprefgen.kernels.elbo import kl_standard_normal

    vae = dense_vae(6, 2, hidden=(5,), rng=rng)
    x = rng.uniform(0, 1, (4, 6))
    eps = rng.standard_normal((4, 2))
    one = vae.elbo_and_grad(x, eps)[0]
    vae.beta = 0.0
    zero = vae.elbo_and_grad(x, eps)[0]
    kl = kl_standard_normal(*vae.encode(x))[0]
    np.testing.assert_allclose(zero - one, kl, rtol=1e-12)


def test_bad_input(rng):
    """NaN data, a wrong image shape, latent size 0, k < 1, a wrong eps shape, data outside
    [0, 1] for a Bernoulli decoder: ValueError naming the argument."""
    vae = conv_vae((1, 8, 8), 2, rng=rng)
    x = rng.uniform(0, 1, (3, 64))
    bad = x.copy()
    bad[0, 0] = np.nan
    cases = [
        ("x", lambda: vae.elbo(bad)),
        ("x", lambda: vae.encode(np.zeros((3, 1, 7, 7)))),
        ("x", lambda: vae.encode(np.zeros((3, 63)))),
        ("x", lambda: vae.fit(x + 1.0, epochs=1)),
        ("latent_dim", lambda: dense_vae(64, 0)),
        ("latent_dim", lambda: conv_vae((1, 8, 8), 0)),
        ("k", lambda: vae.log_prob_iwae(x, 0)),
        ("k", lambda: vae.iwae_and_grad(x, 0)),
        ("eps", lambda: vae.elbo_and_grad(x, np.zeros((3, 3)))),
        ("weights", lambda: vae.elbo_and_grad(x, weights=np.ones(2))),
        ("image_shape", lambda: conv_vae((1, 6, 8), 2)),
        ("z", lambda: vae.decode(np.zeros((2, 3)))),
        ("n", lambda: vae.sample(0)),
        ("decoder_var", lambda: dense_vae(4, 2, likelihood="gaussian", decoder_var=-1.0)),
        ("likelihood", lambda: dense_vae(4, 2, likelihood="poisson")),
        ("objective", lambda: vae.loss_and_grad(x, objective="kl")),
    ]
    for name, thunk in cases:
        with pytest.raises(ValueError, match=f"^{name}"):
            thunk()


def test_vae_tour_section_quick(tmp_path):
    """The tour section runs in quick mode and writes its figures."""
    from nprefgen.tour import run_tour

    path = run_tour(tmp_path, quick=True, only=["vae"], progress=False, strict=True)
    assert (tmp_path / "vae-latent-map.png").exists()
    assert "IWAE" in open(path, encoding="utf-8").read()


def test_fit_on_the_shared_loop(rng):
    """fit returns self, records the shared loop's history, is reproducible from a seed, and
    lowers the objective it trains (ELBO or IWAE with k = 5) below its initial value on the
    training rows; a validation split is held out when asked."""
    x = (rng.random((120, 6)) < np.linspace(0.1, 0.9, 6)).astype(float)
    runs = []
    for _ in range(2):
        vae = dense_vae(6, 2, hidden=(8,), rng=3)
        before = -vae.elbo(x, rng=0, n_samples=20).mean()
        assert vae.fit(x, rng=1, epochs=15, batch_size=30, lr=1e-2,
                       validation_fraction=0.25, progress=False) is vae
        runs.append(vae)
    h = runs[0].history_
    assert {"train_loss", "val_loss", "best_epoch", "epochs", "stopped"} <= set(h)
    assert len(h["train_loss"]) == len(h["val_loss"]) == h["epochs"] == 15
    for (p, _), (q, _) in zip(runs[0].parameters(), runs[1].parameters()):
        np.testing.assert_array_equal(p, q)
    assert -runs[0].elbo(x, rng=0, n_samples=20).mean() < before - 0.5
    iw = dense_vae(6, 2, hidden=(8,), rng=3)
    start = -iw.log_prob_iwae(x, 5, rng=0).mean()
    iw.fit(x, rng=1, epochs=15, batch_size=30, lr=1e-2, objective="iwae", k=5, progress=False)
    assert -iw.log_prob_iwae(x, 5, rng=0).mean() < start - 0.5
