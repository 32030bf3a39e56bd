"""Losses, optimizer steps and model losses against torch.autograd and jax.grad (float64, the same
weights and fixed noise), <= 1e-10 normwise relative:

* the nn losses (NN.11-NN.14) in both reductions, and softmax, with their gradients;
* optimizer steps (NN.15 SGD with momentum and weight decay, NN.16 Adam with weight decay, NN.17
  gradient-norm clipping): five training steps of an MLP, nprefgen's backward + optimizer against
  autodiff gradients + the update written from the equations (torch.optim on the torch side);
* NT-Xent (REP.12-REP.15), kernel and NumPy twin;
* the GMM log-likelihood and responsibilities (GMM.1-GMM.2, GMM.4) for every covariance type;
* the VAE ELBO with fixed eps (VAE.2-VAE.11), Bernoulli and Gaussian decoders, gradients w.r.t.
  the input and every parameter;
* the DSM loss (SCORE.5-SCORE.7), both conditionings, gradients w.r.t. every parameter.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from nprefgen.kernels.ntxent import ntxent, ntxent_numpy
from nprefgen.models import GaussianMixture
from nprefgen.models.ncsn import NCSN, geometric_sigmas
from nprefgen.models.vae import dense_vae
from nprefgen.nn import MLP, SGD, Adam, clip_grad_norm, losses
from oracle_backends import assert_rel
from oracle_formulas import gmm_log_likelihood, layer, ntxent as ntxent_formula

pytestmark = pytest.mark.oracle


# -- nn losses ----------------------------------------------------------------------------------
def _loss_formulas(B, labels, target, prob, pred):
    """(NN.11)-(NN.14) as functions of the differentiated argument; s = 1/N or 1."""
    t, y, mu = B.asarray(target), B.asarray(prob), B.asarray(pred)
    onehot = B.asarray(np.eye(target.shape[1])[labels])
    return {
        "mse_loss": lambda a, s: s * B.sum((a - t) ** 2),
        "bce_with_logits_loss": lambda a, s: s * B.sum(B.softplus(a) - y * a),
        "softmax_cross_entropy_loss": lambda a, s: s * B.sum(B.logsumexp(a, 1) - B.sum(a * onehot, 1)),
        "gaussian_nll_loss(mu)": lambda a, s: s * B.sum(0.5 * (math.log(2 * math.pi) + y - 0.5
                                                               + (t - a) ** 2 * B.exp(-(y - 0.5)))),
        "gaussian_nll_loss(log_var)": lambda a, s: s * B.sum(0.5 * (math.log(2 * math.pi) + a
                                                                    + (t - mu) ** 2 * B.exp(-a))),
    }


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nn_losses(reduction, backend, rng):
    n, k = 5, 3
    pred, target = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    prob = rng.uniform(0.0, 1.0, (n, k))
    labels = rng.integers(0, k, n)
    ours = {
        "mse_loss": losses.mse_loss(pred, target, reduction),
        "bce_with_logits_loss": losses.bce_with_logits_loss(3 * pred, prob, reduction),
        "softmax_cross_entropy_loss": losses.softmax_cross_entropy_loss(pred, labels, reduction),
    }
    g_mu, g_lv = losses.gaussian_nll_loss(pred, prob - 0.5, target, reduction)
    ours["gaussian_nll_loss(mu)"] = (g_mu[0] if isinstance(g_mu, tuple) else g_mu,)
    value, (d_mu, d_lv) = losses.gaussian_nll_loss(pred, prob - 0.5, target, reduction)
    ours["gaussian_nll_loss(mu)"] = (value, d_mu)
    ours["gaussian_nll_loss(log_var)"] = (value, d_lv)
    args = {"bce_with_logits_loss": 3 * pred, "gaussian_nll_loss(log_var)": prob - 0.5}
    formulas = _loss_formulas(backend, labels, target, prob, pred)
    for name, (val, grad) in ours.items():
        a0 = args.get(name, pred)
        s = 1.0 / (a0.size if name != "softmax_cross_entropy_loss" else n) if reduction == "mean" else 1.0
        ref, grads = backend.value_and_grad(lambda d: formulas[name](d["a"], s), {"a": a0})
        assert val == pytest.approx(ref, rel=1e-10), name
        assert_rel(grad, grads["a"], what=name)


def test_softmax(backend, rng):
    a = 5 * rng.standard_normal((4, 6))
    assert_rel(losses.softmax(a), backend.numpy(backend.softmax(backend.asarray(a), 1)))


# -- optimizer steps on an MLP ------------------------------------------------------------------
def _jax_or_formula_step(kind, kw, state, p, g):
    """(NN.15)/(NN.16) written from the equations, on numpy arrays (one parameter)."""
    lr, wd = kw["lr"], kw.get("weight_decay", 0.0)
    g = g + wd * p if wd else g
    if kind == "sgd":
        mom = kw.get("momentum", 0.0)
        v = mom * state["v"] + g if (mom and "v" in state) else g
        state["v"] = v
        return p - lr * v
    b1, b2 = kw.get("betas", (0.9, 0.999))
    eps = kw.get("eps", 1e-8)
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    return p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


@pytest.mark.parametrize("kind, kw", [
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
    ("adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.02)),
], ids=["sgd_momentum_wd", "adam_wd"])
def test_optimizer_steps(kind, kw, backend, rng):
    """Five steps: nprefgen's backward, clip_grad_norm (NN.17, max 1.0) and optimizer against
    autodiff gradients, clipping and the update of the equations (torch.optim on torch)."""
    net = MLP(3, [5], 2, rng=rng, activation="tanh")
    x, target = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    names = [name for name, _, _ in net.named_parameters()]
    theirs = {name: p.copy() for name, p, _ in net.named_parameters()}
    opt = (SGD if kind == "sgd" else Adam)(net.parameters(), **kw)
    B = backend
    loss = lambda d: B.mean((layer(B, net, d, "", B.asarray(x)) - B.asarray(target)) ** 2)
    if B.name == "torch":
        leaves = {k: B.t.tensor(v, requires_grad=True) for k, v in theirs.items()}
        topt = (B.t.optim.SGD if kind == "sgd" else B.t.optim.Adam)(list(leaves.values()), **kw)
    states = {name: {} for name in names}
    for _ in range(5):
        y, cache = net.forward(x)
        _, d_y = losses.mse_loss(y, target)
        net.zero_grad()
        net.backward(cache, d_y)
        norm = clip_grad_norm(net.parameters(), 1.0)
        opt.step()
        if B.name == "torch":
            topt.zero_grad()
            loss(leaves).backward()
            tnorm = B.t.nn.utils.clip_grad_norm_(list(leaves.values()), 1.0).item()
            topt.step()
            theirs = {k: v.detach().numpy() for k, v in leaves.items()}
        else:
            _, grads = B.value_and_grad(loss, theirs)
            tnorm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
            coef = min(1.0, 1.0 / (tnorm + 1e-6))
            theirs = {k: _jax_or_formula_step(kind, kw, states[k], theirs[k], grads[k] * coef)
                      for k in names}
        assert norm == pytest.approx(tnorm, rel=1e-10)
        for name, p, _ in net.named_parameters():
            assert_rel(p, theirs[name], what=name)


# -- NT-Xent ------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.5, 0.1, 0.002])
def test_ntxent(tau, backend, rng):
    h = rng.standard_normal((10, 4))
    value, grads = backend.value_and_grad(lambda d: ntxent_formula(backend, d["h"], tau), {"h": h})
    for f in (ntxent_numpy, ntxent):
        loss, d_h = f(h, tau)
        assert loss == pytest.approx(value, rel=1e-10)
        assert_rel(d_h, grads["h"], what=f.__name__)


# -- GMM ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_gmm_log_likelihood(covariance_type, backend, rng):
    X = np.concatenate([rng.standard_normal((30, 3)) + 3, rng.standard_normal((30, 3)) * 0.5 - 1])
    gmm = GaussianMixture(2, covariance_type=covariance_type, max_iter=5).fit(X, rng=0)
    B = backend
    Xt = rng.standard_normal((7, 3)) * 2
    ll = gmm_log_likelihood(B, B.asarray(Xt), B.asarray(gmm.weights_), B.asarray(gmm.means_),
                            B.asarray(gmm.covariances_), covariance_type)
    assert_rel(gmm.score_samples(Xt), B.numpy(ll), what="log p(x)")
    # responsibilities (GMM.4): the log p(x | k) + log pi_k part softmaxed over k
    comps = [B.numpy(gmm_log_likelihood(B, B.asarray(Xt), B.asarray(np.ones(1)),
                                        B.asarray(gmm.means_[k:k + 1]),
                                        B.asarray(gmm.covariances_[k:k + 1]), covariance_type))
             + np.log(gmm.weights_[k]) for k in range(2)]
    a = np.stack(comps, axis=1)
    assert_rel(gmm.predict_proba(Xt), np.exp(a - np.logaddexp(a[:, :1], a[:, 1:])), what="resp")


# -- VAE ELBO -----------------------------------------------------------------------------------
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_elbo(likelihood, backend, rng):
    """(VAE.2)-(VAE.11) per-row ELBO at fixed eps and the gradients of sum_i c_i ELBO_i."""
    vae = dense_vae(6, 2, hidden=(5, 4), rng=rng, activation="tanh", likelihood=likelihood,
                    beta=1.5)
    if likelihood == "gaussian":
        vae.nets.params["decoder_log_var"][...] = -0.7
    x = rng.uniform(0.05, 0.95, (5, 6))
    eps = rng.standard_normal((5, 2))
    c = rng.standard_normal(5)
    vae.zero_grad()
    elbo, d_x = vae.elbo_and_grad(x, eps, weights=c)
    B = backend

    def elbo_rows(d):
        h = layer(B, vae.encoder, d, "encoder.", d["x"])
        mu, log_var = h[:, :2], h[:, 2:]
        z = mu + B.exp(0.5 * log_var) * B.asarray(eps)                         # (VAE.5)
        out = layer(B, vae.decoder, d, "decoder.", z)
        if likelihood == "bernoulli":                                         # (VAE.7)
            ll = B.sum(d["x"] * out - B.softplus(out), 1)
        else:                                                                 # (VAE.9)
            lv = d["decoder_log_var"]
            ll = B.sum(-0.5 * (math.log(2 * math.pi) + lv + (d["x"] - out) ** 2 * B.exp(-lv)), 1)
        kl = 0.5 * B.sum(mu ** 2 + B.exp(log_var) - 1 - log_var, 1)          # (VAE.3)
        return ll - 1.5 * kl

    params = {name: p.copy() for name, p, _ in vae.nets.named_parameters()}
    tp = {k: B.asarray(v) for k, v in params.items()}
    assert_rel(elbo, B.numpy(elbo_rows({**tp, "x": B.asarray(x)})), what="ELBO")
    _, grads = B.value_and_grad(lambda d: B.sum(elbo_rows(d) * B.asarray(c)), {"x": x, **params})
    assert_rel(d_x, grads["x"], what="d_x")
    for name, _, g in vae.nets.named_parameters():
        assert_rel(g, grads[name], what=name)


# -- DSM ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditioning", ["scale", "concat"])
def test_dsm_loss(conditioning, backend, rng):
    """(SCORE.5)-(SCORE.7) at fixed z and noise levels."""
    model = NCSN(3, hidden=(8, 8), conditioning=conditioning, activation="softplus",
                 sigmas=geometric_sigmas(5.0, 0.05, 6), rng=rng)
    x = rng.standard_normal((12, 3))
    z, levels = model.draw_noise(12, rng=rng)
    model.zero_grad()
    loss = model.dsm_loss_and_grad(x, z, levels)
    sigma = model.sigmas[levels][:, None]
    B = backend

    def dsm(d):
        xt = B.asarray(x + sigma * z)
        inp = B.cat([xt, B.asarray(np.log(sigma))], 1) if conditioning == "concat" else xt
        s = layer(B, model.net, d, "", inp) / B.asarray(sigma)
        r = B.asarray(sigma) * s + B.asarray(z)
        return 0.5 * B.sum(r * r) / x.shape[0]

    params = {name: p.copy() for name, p, _ in model.net.named_parameters()}
    value, grads = B.value_and_grad(dsm, params)
    assert loss == pytest.approx(value, rel=1e-10)
    for name, _, g in model.net.named_parameters():
        assert_rel(g, grads[name], what=name)
