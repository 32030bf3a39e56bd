"""Losses and their gradients (derivations/nn.md, NN.11-NN.14).

Each function returns ``(loss, grad)``: a scalar and the gradient of that scalar with respect to
the prediction(s), same shape as the prediction. ``reduction`` is ``"mean"`` (PyTorch's default:
the mean over every element) or ``"sum"``.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice
from nprefgen.kernels.logsumexp import logsumexp_rows
from nprefgen.kernels.softplus import softplus, softplus_grad

_LOG_2PI = float(np.log(2.0 * np.pi))


def _pair(pred, target, name_pred="pred", name_target="target"):
    pred = check_array(pred, name_pred)
    target = check_array(target, name_target, dtype=pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"{name_target}: expected shape {pred.shape} to match {name_pred}, "
                         f"got {target.shape}")
    return pred, target


def _scale(reduction: str, n: int) -> float:
    check_choice(reduction, "reduction", ("mean", "sum"))
    return 1.0 / n if reduction == "mean" else 1.0


def mse_loss(pred, target, reduction: str = "mean"):
    """(NN.11) L = s * sum (pred - target)^2, dL/dpred = 2 s (pred - target); s = 1/N or 1."""
    pred, target = _pair(pred, target)
    s = _scale(reduction, pred.size)
    r = pred - target
    return float(s * np.sum(r * r)), 2.0 * s * r


def bce_with_logits_loss(logits, target, reduction: str = "mean"):
    """(NN.12) L = s * sum [softplus(a) - y a], dL/da = s (sigmoid(a) - y).

    ``target`` y in [0, 1]; stable for any logit a (same as torch's BCEWithLogitsLoss).
    """
    a, y = _pair(logits, target, "logits", "target")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("target: expected values in [0, 1], got values outside")
    s = _scale(reduction, a.size)
    return float(s * np.sum(softplus(a) - y * a)), s * (softplus_grad(a) - y)


def gaussian_nll_loss(mu, log_var, target, reduction: str = "mean"):
    """(NN.13) L = s * sum 1/2 [log 2pi + log_var + (x - mu)^2 e^{-log_var}].

    Parametrised by the log-variance (not the variance as ``torch.nn.GaussianNLLLoss``, whose
    ``full=True`` value equals this one for ``var = exp(log_var)``). Returns
    ``(loss, (d_mu, d_log_var))``: d_mu = s (mu - x) e^{-log_var},
    d_log_var = s/2 (1 - (x - mu)^2 e^{-log_var}).
    """
    mu, target = _pair(mu, target, "mu", "target")
    mu, log_var = _pair(mu, log_var, "mu", "log_var")
    s = _scale(reduction, mu.size)
    inv_var = np.exp(-log_var)
    r = target - mu
    loss = 0.5 * s * np.sum(_LOG_2PI + log_var + r * r * inv_var)
    return float(loss), (-s * r * inv_var, 0.5 * s * (1.0 - r * r * inv_var))


def softmax_cross_entropy_loss(logits, labels, reduction: str = "mean"):
    """(NN.14) L = s * sum_i [logsumexp(a_i) - a_{i, y_i}], dL/da = s (softmax(a) - onehot(y)).

    logits: (n, k); labels: (n,) integers in [0, k). ``s = 1/n`` for "mean" (the mean over
    samples, as torch's CrossEntropyLoss).
    """
    a = check_array(logits, "logits", ndim=2)
    y = np.asarray(labels)
    if y.shape != (a.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels: expected integer labels of shape ({a.shape[0]},), "
                         f"got {y.dtype} array of shape {y.shape}")
    if np.any((y < 0) | (y >= a.shape[1])):
        raise ValueError(f"labels: expected values in [0, {a.shape[1]}), got min {y.min()} max {y.max()}")
    s = _scale(reduction, a.shape[0])
    lse = logsumexp_rows(np.ascontiguousarray(a))
    rows = np.arange(a.shape[0])
    loss = s * np.sum(lse - a[rows, y])
    grad = np.exp(a - lse[:, None])
    grad[rows, y] -= 1.0
    return float(loss), s * grad


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, k) logits, via the stable log-sum-exp."""
    a = check_array(logits, "logits", ndim=2)
    return np.exp(a - logsumexp_rows(np.ascontiguousarray(a))[:, None])
