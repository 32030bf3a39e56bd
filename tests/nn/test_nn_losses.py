"""Losses (NN.11 MSE, NN.12 BCE with logits, NN.13 Gaussian NLL, NN.14 softmax cross-entropy):
returned gradients by the dot-product test (NN.18), values against direct formulas and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nprefgen.nn import (
    bce_with_logits_loss, gaussian_nll_loss, mse_loss, softmax, softmax_cross_entropy_loss,
)
from nprefgen.testing import gradcheck
from nprefgen.testing.strategies import batch_shapes, seeds

REDUCTIONS = ["mean", "sum"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(batch_shapes(max_batch=6, max_features=5), seeds())
def test_loss_gradients_dot_product(reduction, shape, seed):
    """Every loss's returned gradient against its value function: (NN.11), (NN.12), (NN.13) for
    mu and log_var, (NN.14), both reductions."""
    rng = np.random.default_rng(seed)
    n, k = shape
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    gradcheck(lambda p: mse_loss(p, target, reduction)[0],
              lambda p: mse_loss(p, target, reduction)[1], pred, rng=rng)
    prob = rng.uniform(size=shape)
    logits = 3.0 * rng.standard_normal(shape)
    gradcheck(lambda a: bce_with_logits_loss(a, prob, reduction)[0],
              lambda a: bce_with_logits_loss(a, prob, reduction)[1], logits, rng=rng)
    mu, log_var = rng.standard_normal(shape), 0.5 * rng.standard_normal(shape)
    gradcheck(lambda m: gaussian_nll_loss(m, log_var, target, reduction)[0],
              lambda m: gaussian_nll_loss(m, log_var, target, reduction)[1][0], mu, rng=rng)
    gradcheck(lambda lv: gaussian_nll_loss(mu, lv, target, reduction)[0],
              lambda lv: gaussian_nll_loss(mu, lv, target, reduction)[1][1], log_var, rng=rng)
    labels = rng.integers(0, k, n)
    gradcheck(lambda a: softmax_cross_entropy_loss(a, labels, reduction)[0],
              lambda a: softmax_cross_entropy_loss(a, labels, reduction)[1], logits, rng=rng)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_losses_direct_formulas(rng):
    """Values and gradients against the textbook forms (moderate inputs where those are stable)."""
    n, k = 4, 3
    p, t = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    loss, g = mse_loss(p, t)                                        # (NN.11)
    assert loss == pytest.approx(np.mean((p - t) ** 2), rel=1e-14)
    np.testing.assert_allclose(g, 2 * (p - t) / (n * k), rtol=1e-14)
    assert mse_loss(p, t, "sum")[0] == pytest.approx(np.sum((p - t) ** 2), rel=1e-14)

    y = rng.uniform(size=(n, k))                                    # (NN.12)
    s = _sigmoid(p)
    loss, g = bce_with_logits_loss(p, y, "sum")
    assert loss == pytest.approx(-np.sum(y * np.log(s) + (1 - y) * np.log(1 - s)), rel=1e-13)
    np.testing.assert_allclose(g, s - y, rtol=1e-13, atol=1e-15)
    big, _ = bce_with_logits_loss(np.array([[800.0, -800.0]]), np.array([[0.0, 1.0]]), "sum")
    assert big == pytest.approx(1600.0, rel=1e-15)                  # stable where log(sigmoid) is not

    mu, log_var = rng.standard_normal((n, k)), rng.standard_normal((n, k))   # (NN.13)
    var = np.exp(log_var)
    loss, (d_mu, d_lv) = gaussian_nll_loss(mu, log_var, t)
    logpdf = -0.5 * np.log(2 * np.pi * var) - (t - mu) ** 2 / (2 * var)
    assert loss == pytest.approx(-np.mean(logpdf), rel=1e-14)
    np.testing.assert_allclose(d_mu, (mu - t) / var / (n * k), rtol=1e-13)
    np.testing.assert_allclose(d_lv, 0.5 * (1 - (t - mu) ** 2 / var) / (n * k), rtol=1e-12, atol=1e-16)

    labels = rng.integers(0, k, n)                                  # (NN.14)
    prob = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
    loss, g = softmax_cross_entropy_loss(p, labels)
    assert loss == pytest.approx(-np.mean(np.log(prob[np.arange(n), labels])), rel=1e-14)
    np.testing.assert_allclose(g, (prob - np.eye(k)[labels]) / n, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(softmax(p), prob, rtol=1e-14)
    # (NN.20) shift-invariant; adding 1000 rounds the logits by ~1e-13
    np.testing.assert_allclose(softmax(p + 1000.0), prob, rtol=1e-12)


@pytest.mark.torch
def test_losses_against_torch(rng):
    """(NN.11)-(NN.14) equal torch's MSELoss, BCEWithLogitsLoss, GaussianNLLLoss(full=True, var=exp
    log_var), CrossEntropyLoss, values and autograd gradients, both reductions, float64."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, k = 5, 4
    p, t = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    y, lv = rng.uniform(size=(n, k)), rng.standard_normal((n, k))
    labels = rng.integers(0, k, n)
    for red in REDUCTIONS:
        for ours, theirs, x0 in [
            (lambda a: mse_loss(a, t, red), lambda a: F.mse_loss(a, torch.from_numpy(t), reduction=red), p),
            (lambda a: bce_with_logits_loss(a, y, red),
             lambda a: F.binary_cross_entropy_with_logits(a, torch.from_numpy(y), reduction=red), 3 * p),
            (lambda a: softmax_cross_entropy_loss(a, labels, red),
             lambda a: F.cross_entropy(a, torch.from_numpy(labels), reduction=red), p),
            (lambda a: (gaussian_nll_loss(a, lv, t, red)[0], gaussian_nll_loss(a, lv, t, red)[1][0]),
             lambda a: F.gaussian_nll_loss(a, torch.from_numpy(t), torch.exp(torch.from_numpy(lv)),
                                           full=True, eps=0.0, reduction=red), p),
            (lambda a: (gaussian_nll_loss(p, a, t, red)[0], gaussian_nll_loss(p, a, t, red)[1][1]),
             lambda a: F.gaussian_nll_loss(torch.from_numpy(p), torch.from_numpy(t), torch.exp(a),
                                           full=True, eps=0.0, reduction=red), lv),
        ]:
            a = torch.tensor(x0, requires_grad=True)
            ref = theirs(a)
            ref.backward()
            loss, grad = ours(x0)
            assert loss == pytest.approx(ref.item(), rel=1e-13)
            np.testing.assert_allclose(grad, a.grad.numpy(), rtol=1e-12, atol=1e-15)


def _mse_without_factor_two(pred, target, reduction="mean"):
    loss, grad = mse_loss(pred, target, reduction)
    return loss, grad / 2.0


def test_mse_missing_factor_two_is_caught(rng):
    """(NN.11) with the factor 2 dropped from the gradient fails the dot-product test."""
    p, t = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    with pytest.raises(AssertionError, match="dot-product test failed"):
        gradcheck(lambda a: _mse_without_factor_two(a, t)[0],
                  lambda a: _mse_without_factor_two(a, t)[1], p, rng=rng)


def test_bad_loss_inputs_raise(rng):
    p = rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match="target: expected shape"):
        mse_loss(p, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="pred: expected finite"):
        mse_loss(np.full((3, 2), np.nan), p)
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(p, p, "none")
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\]"):
        bce_with_logits_loss(p, np.full((3, 2), 1.5))
    with pytest.raises(ValueError, match="log_var: expected shape"):
        gaussian_nll_loss(p, np.zeros((3,)), p)
    with pytest.raises(ValueError, match="labels: expected integer labels"):
        softmax_cross_entropy_loss(p, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 2\)"):
        softmax_cross_entropy_loss(p, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits: expected 2 dimensions"):
        softmax_cross_entropy_loss(np.zeros(3), np.array([0, 1, 2]))
