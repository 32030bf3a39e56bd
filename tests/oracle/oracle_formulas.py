"""nprefgen's formulas re-implemented from the derivations for the autodiff oracles
(tests/oracle/oracle_backends.py): each function takes a backend ``B`` (torch or JAX), the
parameters as a dict of backend arrays under PyTorch ``state_dict`` names, and backend inputs.

Nothing here calls nprefgen to compute a value. The nprefgen objects passed in are read for their
*structure* only (layer types, hyper-parameters, masks, permutations, buffers), as a user would
read a config; every number comes from the equations cited beside each formula.
"""
from __future__ import annotations

import math

import numpy as np

from nprefgen import nn
from nprefgen.flows import (
    IAF, MAF, ActNorm, Chain, Coupling, ElementwiseAffine, Flow, LogitTransform, Permutation,
    Standardize,
)
from nprefgen.flows.coupling import AffineTransform
from nprefgen.flows.spline import SplineTransform
from nprefgen.metrics.field_stats import power_spectrum_bins


# -- layers (derivations/nn.md) -------------------------------------------------------------------
def layer(B, mod, p, prefix, x):
    """Apply an nprefgen layer's formula; parameters p[prefix + name]."""
    if isinstance(mod, nn.Sequential):
        for i, child in enumerate(mod.layers):
            x = layer(B, child, p, f"{prefix}{i}.", x)
        return x
    if isinstance(mod, nn.Linear):                    # (NN.1), MaskedLinear (NN.3)
        w = p[prefix + "weight"]
        if isinstance(mod, nn.MaskedLinear):
            w = w * B.asarray(mod.mask)
        y = x @ w.T
        return y + p[prefix + "bias"] if prefix + "bias" in p else y
    if isinstance(mod, nn.Branches):                  # side by side, concatenated
        return B.cat([layer(B, net, p, f"{prefix}{i}.", x) for i, net in enumerate(mod.nets)], 1)
    if isinstance(mod, nn.CircularPad2d):             # (GAN.19)
        return wrap_pad(B, x, mod.padding)
    if isinstance(mod, nn.CircularFold2d):            # (GAN.20), the transpose of (GAN.19)
        return wrap_pad(B, x, mod.padding, fold=True)
    if isinstance(mod, nn.PeriodicConvTranspose2d):   # (GAN.20): fold, then the bias
        return periodic_conv_transpose2d(B, x, p[prefix + "weight"], p.get(prefix + "bias"),
                                         mod.stride, mod.padding, mod.output_padding)
    if isinstance(mod, nn.PeriodicConv2d):            # (GAN.19): wrap, then no padding
        (ph, pw) = mod.padding
        return B.conv2d(wrap_pad(B, x, (ph, ph, pw, pw)), p[prefix + "weight"],
                        p.get(prefix + "bias"), mod.stride, (0, 0))
    if isinstance(mod, nn.BinnedLogPower):            # (GAN.21)
        return band_log_power(B, x, mod.n_side, mod.n_bins, mod.eps)
    if isinstance(mod, nn.ConvTranspose2d):           # (NN.27)-(NN.28)
        return B.conv_transpose2d(x, p[prefix + "weight"], p.get(prefix + "bias"), mod.stride,
                                  mod.padding, mod.output_padding)
    if isinstance(mod, nn.Conv2d):                    # (NN.21)-(NN.25)
        return B.conv2d(x, p[prefix + "weight"], p.get(prefix + "bias"), mod.stride, mod.padding)
    if isinstance(mod, nn.Flatten):
        return B.reshape(x, (x.shape[0], -1))
    if isinstance(mod, nn.Reshape):
        return B.reshape(x, (x.shape[0], *mod.shape))
    if isinstance(mod, nn.ReLU):
        return B.relu(x)
    if isinstance(mod, nn.LeakyReLU):
        return B.leaky_relu(x, mod.negative_slope)
    if isinstance(mod, nn.Tanh):
        return B.tanh(x)
    if isinstance(mod, nn.Sigmoid):
        return B.sigmoid(x)
    if isinstance(mod, nn.Softplus):
        return B.softplus(x)
    if isinstance(mod, nn.ELU):
        return B.elu(x, mod.alpha)
    if isinstance(mod, nn.Identity):
        return x
    if isinstance(mod, nn.MinibatchStd):                # (GAN.16)
        n = x.shape[0]
        dev = x - B.sum(x, 0) / n
        s = B.mean(B.sqrt(B.sum(dev * dev, 0) / n + mod.eps))
        return B.cat([x, s * B.ones((n, 1, *x.shape[2:]))], 1)
    raise AssertionError(f"no oracle formula for {type(mod).__name__}")


def wrap_pad(B, x, padding, fold=False):
    """(GAN.19) as 0/1 matrices on the last two axes: P_h[i, (i - t) mod h] = 1, y = P_h x P_w^T;
    ``fold``: x is the padded image and y = P_h^T x P_w (GAN.20). padding: (top, bottom, left,
    right)."""
    t, b, l, r = padding
    h, w = x.shape[2], x.shape[3]
    if fold:
        h, w = h - t - b, w - l - r
    ph = np.zeros((t + h + b, h))
    ph[np.arange(t + h + b), (np.arange(t + h + b) - t) % h] = 1.0
    pw = np.zeros((l + w + r, w))
    pw[np.arange(l + w + r), (np.arange(l + w + r) - l) % w] = 1.0
    ph, pw = B.asarray(ph), B.asarray(pw)
    return ph.T @ x @ pw if fold else ph @ x @ pw.T


def periodic_conv_transpose2d(B, x, w, bias, stride, padding, output_padding):
    """(GAN.20) the transposed convolution with no padding, folded by (p_h, p_h - op_h, p_w,
    p_w - op_w), then the bias."""
    y = B.conv_transpose2d(x, w, None, stride, (0, 0), (0, 0))
    (ph, pw), (oph, opw) = padding, output_padding
    y = wrap_pad(B, y, (ph, ph - oph, pw, pw - opw), fold=True)
    return y if bias is None else y + B.reshape(bias, (1, -1, 1, 1))


def band_log_power(B, x, n_side, n_bins, eps):
    """(GAN.21) by real DFT matrices: X = F x F^T, F = C - i S; the shells of field_stats."""
    s = n_side
    k = np.outer(np.arange(s), np.arange(s))
    cr, ci = B.asarray(np.cos(2 * np.pi * k / s)), B.asarray(-np.sin(2 * np.pi * k / s))
    img = B.reshape(x, (x.shape[0], s, s))
    re = cr @ img @ cr.T - ci @ img @ ci.T
    im = cr @ img @ ci.T + ci @ img @ cr.T
    idx, _, _ = power_spectrum_bins(s, 1.0, n_bins, "log")
    avg = np.zeros((s * s, n_bins))
    for b in range(n_bins):
        avg[idx == b, b] = 1.0 / (np.sum(idx == b) * s * s)
    return B.log(B.reshape(re * re + im * im, (x.shape[0], s * s)) @ B.asarray(avg) + eps)


# -- flows (derivations/flows.md, splines.md) -----------------------------------------------------
def soft_clamp(B, raw, bound):
    """(FLOW.6) s = b tanh(raw / b); b = 0 means unbounded."""
    return bound * B.tanh(raw / bound) if bound else raw


def spline_params(B, theta, bound, mins):
    """(SPL.2)-(SPL.3) theta (..., 3K-1) -> widths, heights (..., K), derivatives (..., K+1)."""
    min_w, min_h, min_d = mins
    K = (theta.shape[-1] + 1) // 3
    w = 2 * bound * (min_w + (1 - K * min_w) * B.softmax(theta[..., :K], -1))
    h = 2 * bound * (min_h + (1 - K * min_h) * B.softmax(theta[..., K:2 * K], -1))
    kappa = math.log(math.expm1(1.0 - min_d))
    inner = min_d + B.softplus(theta[..., 2 * K:] + kappa)
    one = B.ones(tuple(theta.shape[:-1]) + (1,))
    return w, h, B.cat([one, inner, one], -1)


def _knots(B, sizes, bound):
    """(SPL.1) -B + cumulative sums, (..., K+1)."""
    start = B.zeros(tuple(sizes.shape[:-1]) + (1,)) - bound
    return B.cumsum(B.cat([start, sizes], -1), -1)


def _pick(B, a, onehot):
    return B.sum(a * onehot, -1)


def _bin_onehot(B, knots, v, K):
    """(SPL.1) bin k = number of interior knots <= v, as a one-hot (..., K) (no gradient)."""
    k = B.sum(knots[..., 1:-1] <= v[..., None], -1)
    ar = B.asarray(np.arange(K, dtype=np.float64))
    return (ar == k[..., None] * 1.0) * 1.0


def spline_forward(B, x, theta, bound, mins):
    """(SPL.4)-(SPL.6) elementwise: x (n, d), theta (n, d, 3K-1) -> y, log g'(x) (n, d)."""
    K = (theta.shape[-1] + 1) // 3
    inside = (x >= -bound) & (x <= bound)
    xs = B.where(inside, x, x * 0.0)                 # keep the unused branch finite
    w, h, d = spline_params(B, theta, bound, mins)
    xk, yk = _knots(B, w, bound), _knots(B, h, bound)
    oh = _bin_onehot(B, xk, xs, K)
    oh1 = B.cat([oh, B.zeros(tuple(oh.shape[:-1]) + (1,))], -1)
    oh0 = B.cat([B.zeros(tuple(oh.shape[:-1]) + (1,)), oh], -1)
    wk, hk = _pick(B, w, oh), _pick(B, h, oh)
    x0, y0 = _pick(B, xk, oh1), _pick(B, yk, oh1)
    d0, d1 = _pick(B, d, oh1), _pick(B, d, oh0)
    s = hk / wk
    xi = (xs - x0) / wk
    t = xi * (1 - xi)
    den = s + (d0 + d1 - 2 * s) * t
    y = y0 + hk * (s * xi * xi + d0 * t) / den                             # (SPL.4)
    num = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi)
    ld = 2 * B.log(s) + B.log(num) - 2 * B.log(den)                       # (SPL.5)
    return B.where(inside, y, x), B.where(inside, ld, x * 0.0)            # (SPL.6)


def spline_inverse(B, y, theta, bound, mins):
    """(SPL.7)-(SPL.8) the stable quadratic root; -> x, -log g'(x) (n, d)."""
    K = (theta.shape[-1] + 1) // 3
    inside = (y >= -bound) & (y <= bound)
    ys = B.where(inside, y, y * 0.0)
    w, h, d = spline_params(B, theta, bound, mins)
    xk, yk = _knots(B, w, bound), _knots(B, h, bound)
    oh = _bin_onehot(B, yk, ys, K)
    oh1 = B.cat([oh, B.zeros(tuple(oh.shape[:-1]) + (1,))], -1)
    oh0 = B.cat([B.zeros(tuple(oh.shape[:-1]) + (1,)), oh], -1)
    wk, hk = _pick(B, w, oh), _pick(B, h, oh)
    x0, y0 = _pick(B, xk, oh1), _pick(B, yk, oh1)
    d0, d1 = _pick(B, d, oh1), _pick(B, d, oh0)
    s = hk / wk
    dy = ys - y0
    m = d0 + d1 - 2 * s
    a = hk * (s - d0) + dy * m
    b = hk * d0 - dy * m
    c = -s * dy
    xi = 2 * c / (-b - B.sqrt(b * b - 4 * a * c))
    t = xi * (1 - xi)
    den = s + m * t
    num = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi)
    ld = 2 * B.log(s) + B.log(num) - 2 * B.log(den)
    return B.where(inside, x0 + xi * wk, y), B.where(inside, -ld, y * 0.0)


def _coupling_h(B, bij, p, prefix, x_a, c):
    inp = x_a if c is None else B.cat([x_a, c], 1)
    return layer(B, bij.net, p, prefix + "net.", inp)


def _merge(B, x_a, y_b, idx_a, idx_b):
    """Columns back into place: y = [x_A, y_B][:, inverse permutation]."""
    order = np.concatenate([idx_a, idx_b])
    return B.cols(B.cat([x_a, y_b], 1), np.argsort(order))


def _made(B, bij, p, prefix, h, c):
    inp = h if c is None else B.cat([h, c], 1)
    out = layer(B, bij.made.net, p, prefix + "made.net.", inp)
    return out[:, :bij.dim], soft_clamp(B, out[:, bij.dim:], bij.bound)


def bijector_forward(B, bij, p, prefix, x, c):
    """z = f(x | c) and log|det df/dx| per row for every bijector type of nprefgen.flows."""
    n = x.shape[0]
    if isinstance(bij, Flow):
        c = None if c is None else (c - B.asarray(bij.context_mean)) / B.asarray(bij.context_std)
    if isinstance(bij, Chain):                                             # (FLOW.2)
        total = B.zeros((n,))
        for k, b in enumerate(bij.bijectors):
            x, ld = bijector_forward(B, b, p, f"{prefix}{k}.", x, c if b.context_dim else None)
            total = total + ld
        return x, total
    if isinstance(bij, Standardize):                                       # (FLOW.18)
        std = B.asarray(bij.std)
        return (x - B.asarray(bij.mean)) / std, B.zeros((n,)) - B.sum(B.log(std))
    if isinstance(bij, (ActNorm, ElementwiseAffine)):                      # (FLOW.18)
        ls = p[prefix + "log_scale"]
        return x * B.exp(ls) + p[prefix + "shift"], B.zeros((n,)) + B.sum(ls)
    if isinstance(bij, Permutation):                                       # (FLOW.17)
        return B.cols(x, bij.perm), B.zeros((n,))
    if isinstance(bij, LogitTransform):                                    # (FLOW.21)
        lam, a = bij.lam, bij.data_scale
        q = lam + (1 - 2 * lam) * (x / a)
        per = math.log1p(-2 * lam) - math.log(a) - B.log(q) - B.log1p(-q)
        return B.log(q) - B.log1p(-q), B.sum(per, 1)
    if isinstance(bij, Coupling):
        idx_a, idx_b = np.flatnonzero(bij.mask == 1), np.flatnonzero(bij.mask == 0)
        x_a, x_b = B.cols(x, idx_a), B.cols(x, idx_b)
        h = _coupling_h(B, bij, p, prefix, x_a, c)
        d_b = len(idx_b)
        if isinstance(bij.transform, AffineTransform):                     # (FLOW.5)-(FLOW.7)
            s = soft_clamp(B, h[:, :d_b], bij.transform.bound)
            y_b, ld = x_b * B.exp(s) + h[:, d_b:], B.sum(s, 1)
        elif isinstance(bij.transform, SplineTransform):                   # (SPL.12)
            tr = bij.transform
            theta = B.reshape(h, (n, d_b, tr.n_params))
            y_b, ld_el = spline_forward(B, x_b, theta, tr.bound, tr.mins)
            ld = B.sum(ld_el, 1)
        else:  # pragma: no cover
            raise AssertionError(type(bij.transform))
        return _merge(B, x_a, y_b, idx_a, idx_b), ld
    if isinstance(bij, MAF):                                               # (FLOW.12)
        mu, alpha = _made(B, bij, p, prefix, x, c)
        return (x - mu) * B.exp(-alpha), -B.sum(alpha, 1)
    if isinstance(bij, IAF):                                               # (FLOW.15), sequential
        z = x * 0.0
        for i in np.argsort(bij.made.degrees[0], kind="stable"):
            mu, alpha = _made(B, bij, p, prefix, z, c)
            zi = (x - mu) * B.exp(-alpha)
            sel = np.zeros(bij.dim, dtype=bool)
            sel[i] = True
            z = B.where(sel[None, :], zi, z)
        _, alpha = _made(B, bij, p, prefix, z, c)
        return z, -B.sum(alpha, 1)
    raise AssertionError(f"no oracle formula for {type(bij).__name__}")


def bijector_inverse(B, bij, p, prefix, z, c):
    """x = f^{-1}(z | c) and log|det df^{-1}/dz| per row."""
    n = z.shape[0]
    if isinstance(bij, Flow):
        c = None if c is None else (c - B.asarray(bij.context_mean)) / B.asarray(bij.context_std)
    if isinstance(bij, Chain):
        total = B.zeros((n,))
        for k in reversed(range(len(bij.bijectors))):
            b = bij.bijectors[k]
            z, ld = bijector_inverse(B, b, p, f"{prefix}{k}.", z, c if b.context_dim else None)
            total = total + ld
        return z, total
    if isinstance(bij, Standardize):
        std = B.asarray(bij.std)
        return z * std + B.asarray(bij.mean), B.zeros((n,)) + B.sum(B.log(std))
    if isinstance(bij, (ActNorm, ElementwiseAffine)):
        ls = p[prefix + "log_scale"]
        return (z - p[prefix + "shift"]) * B.exp(-ls), B.zeros((n,)) - B.sum(ls)
    if isinstance(bij, Permutation):
        return B.cols(z, np.argsort(bij.perm)), B.zeros((n,))
    if isinstance(bij, LogitTransform):
        lam, a = bij.lam, bij.data_scale
        q = B.sigmoid(z)
        per = math.log1p(-2 * lam) - math.log(a) - B.log(q) - B.log1p(-q)
        return a * (q - lam) / (1 - 2 * lam), -B.sum(per, 1)
    if isinstance(bij, Coupling):                                          # (FLOW.8), (SPL.8)
        idx_a, idx_b = np.flatnonzero(bij.mask == 1), np.flatnonzero(bij.mask == 0)
        z_a, z_b = B.cols(z, idx_a), B.cols(z, idx_b)
        h = _coupling_h(B, bij, p, prefix, z_a, c)
        d_b = len(idx_b)
        if isinstance(bij.transform, AffineTransform):
            s = soft_clamp(B, h[:, :d_b], bij.transform.bound)
            x_b, ld = (z_b - h[:, d_b:]) * B.exp(-s), -B.sum(s, 1)
        else:
            tr = bij.transform
            theta = B.reshape(h, (n, d_b, tr.n_params))
            x_b, ld_el = spline_inverse(B, z_b, theta, tr.bound, tr.mins)
            ld = B.sum(ld_el, 1)
        return _merge(B, z_a, x_b, idx_a, idx_b), ld
    if isinstance(bij, MAF):                                               # (FLOW.13)
        x = z * 0.0
        for i in np.argsort(bij.made.degrees[0], kind="stable"):
            mu, alpha = _made(B, bij, p, prefix, x, c)
            sel = np.zeros(bij.dim, dtype=bool)
            sel[i] = True
            x = B.where(sel[None, :], z * B.exp(alpha) + mu, x)
        _, alpha = _made(B, bij, p, prefix, x, c)
        return x, B.sum(alpha, 1)
    if isinstance(bij, IAF):                                               # (FLOW.15) one pass
        mu, alpha = _made(B, bij, p, prefix, z, c)
        return z * B.exp(alpha) + mu, B.sum(alpha, 1)
    raise AssertionError(f"no oracle formula for {type(bij).__name__}")


def normal_log_prob(B, z):
    """(FLOW.1) log N(z; 0, I) per row."""
    return -0.5 * B.sum(z * z, 1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


# -- losses and models ----------------------------------------------------------------------------
def ntxent(B, h, tau):
    """(REP.12)-(REP.13) mean over the 2N rows of -log softmax_{k != i}(cos(z_i, z_k)/tau)[p(i)]."""
    n2 = h.shape[0]
    z = h / B.sqrt(B.sum(h * h, 1))[:, None]
    s = z @ z.T / tau
    s = B.where(np.eye(n2, dtype=bool), s * 0.0 - 1e300, s)
    pos = (np.arange(n2) + n2 // 2) % n2
    onehot = B.asarray(np.eye(n2)[pos])
    return B.mean(B.logsumexp(s, 1) - B.sum(s * onehot, 1))


def gmm_log_likelihood(B, X, weights, means, covariances, covariance_type):
    """(GMM.1)-(GMM.2) log sum_k pi_k N(x; mu_k, Sigma_k) per row, by Cholesky factors."""
    K, d = means.shape
    comps = []
    for k in range(K):
        if covariance_type == "full":
            cov = covariances[k]
        elif covariance_type == "diag":
            cov = B.eye(d) * covariances[k][None, :]
        else:                                               # spherical
            cov = B.eye(d) * covariances[k]
        L = B.cholesky(cov)
        r = B.solve_triangular_lower(L, (X - means[k][None, :]).T)        # (d, n)
        logdet = 2 * B.sum(B.log(B.diagonal(L)))
        comps.append((-0.5 * B.sum(r * r, 0) - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi)
                      + B.log(weights[k]))[:, None])
    return B.logsumexp(B.cat(comps, 1), 1)
