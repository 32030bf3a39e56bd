"""Dot-product tests of every :mod:`nprefgen.nn` layer and loss, every bijector of
:mod:`nprefgen.flows` and every kernel with a hand-written gradient, as one table.

Used by ``nprefgen gradcheck`` (exit status 1 when any check fails; ``--group`` selects the
groups of :data:`GROUPS`) and by the tour section ``gradchecks`` (every group). Each row is
``(description, checked, relative error, ok)`` where ``checked`` is ``"input"``, ``"context"``,
a parameter name in PyTorch ``state_dict`` form, or the argument differentiated.
The test itself is :func:`nprefgen.testing.vjp_error`: ``<u, J^T v>`` against ``<v, J u>`` with
``J u`` from a fourth-order central difference (NN.18, NN.19), float64, random ``u`` and ``v``.

Inputs to the piecewise-linear layers (ReLU, LeakyReLU, ELU's kink) are pushed at least
``_AWAY`` from zero, so no finite-difference stencil straddles a kink.
"""
from __future__ import annotations

import warnings

import numpy as np

import nprefgen.flows as flows
import nprefgen.kernels.coupling as kcoupling
import nprefgen.kernels.dsm as kdsm
import nprefgen.kernels.elbo as kelbo
import nprefgen.kernels.ntxent as kntxent
from nprefgen.kernels.softplus import relu_backward, relu_backward_numpy
import nprefgen.kernels.spline as kspline
import nprefgen.nn as nn
from nprefgen import kernels
from nprefgen._validation import check_int, check_rng, check_scalar
from nprefgen.nn import losses
from nprefgen.testing import DEFAULT_RTOL, layer_vjp_errors, randomize_parameters, vjp_error
from nprefgen.testing.bijector_checks import backward_errors

GROUPS = ("layers", "losses", "bijectors", "kernels")
"""The groups of :func:`run_gradchecks` (``nprefgen gradcheck --group``)."""

_AWAY = 0.1


def _away_from_zero(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x + _AWAY, x - _AWAY)


def layer_cases(*, rng=None) -> list[tuple[str, nn.Module, np.ndarray]]:
    """``[(description, layer, x)]`` covering every layer type of :mod:`nprefgen.nn`.

    Small float64 problems (a few dozen numbers each) with inputs drawn from ``rng``.
    Conv2d and ConvTranspose2d are included when :mod:`nprefgen.nn` provides them.
    """
    rng = check_rng(rng)
    n = 4
    x3 = _away_from_zero(rng.standard_normal((n, 3)))
    cases: list[tuple[str, nn.Module, np.ndarray]] = [
        ("Linear(3, 4)", nn.Linear(3, 4, rng=rng), rng.standard_normal((n, 3))),
        ("Linear(3, 4, bias=False)", nn.Linear(3, 4, rng=rng, bias=False), rng.standard_normal((n, 3))),
    ]
    # a MADE-style mask: output j sees inputs i <= j
    mask = np.tril(np.ones((4, 3)))
    cases.append(("MaskedLinear(3, 4, lower-triangular mask)", nn.MaskedLinear(3, 4, mask, rng=rng),
                  rng.standard_normal((n, 3))))
    for desc, act in [("ReLU", nn.ReLU()), ("LeakyReLU(0.1)", nn.LeakyReLU(0.1)), ("Tanh", nn.Tanh()),
                      ("Sigmoid", nn.Sigmoid()), ("Softplus", nn.Softplus()), ("ELU(1.0)", nn.ELU(1.0)),
                      ("Identity", nn.Identity())]:
        cases.append((desc, act, x3.copy()))
    cases.append(("MLP(3, [5, 4], 2, tanh)", nn.MLP(3, [5, 4], 2, rng=rng, activation="tanh"),
                  rng.standard_normal((n, 3))))
    cases.append(("MLP(3, [5], 2, softplus, out sigmoid)",
                  nn.MLP(3, [5], 2, rng=rng, activation="softplus", out_activation="sigmoid"),
                  rng.standard_normal((n, 3))))
    cases.append(("Flatten (2, 3, 2, 2) -> (2, 12)", nn.Flatten(), rng.standard_normal((2, 3, 2, 2))))
    cases.append(("Reshape (2, 12) -> (2, 3, 4)", nn.Reshape(3, 4), rng.standard_normal((2, 12))))
    if hasattr(nn, "Conv2d"):
        cases.append(("Conv2d(2, 3, 3, stride=2, padding=1)",
                      nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), rng.standard_normal((2, 2, 5, 5))))
        cases.append(("Conv2d(2, 2, (2, 3), bias=False)",
                      nn.Conv2d(2, 2, (2, 3), rng=rng, bias=False), rng.standard_normal((1, 2, 4, 5))))
    if hasattr(nn, "ConvTranspose2d"):
        cases.append(("ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)",
                      nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=rng),
                      rng.standard_normal((2, 3, 3, 3))))
    if hasattr(nn, "Conv2d") and hasattr(nn, "ConvTranspose2d"):
        net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1, rng=rng), nn.Tanh(), nn.Flatten(),
                            nn.Linear(2 * 3 * 3, 8, rng=rng), nn.Tanh(), nn.Reshape(2, 2, 2),
                            nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1, rng=rng))
        cases.append(("conv autoencoder (Conv2d, Flatten, Linear, Reshape, ConvTranspose2d)", net,
                      rng.standard_normal((2, 1, 5, 5))))
    # from a spawned child: the shared stream (and every later case's inputs) stays as it was
    cases.append(("MinibatchStd on (3, 2, 3, 3)", nn.MinibatchStd(),
                  rng.spawn(1)[0].standard_normal((3, 2, 3, 3))))
    extra = rng.spawn(1)[0]                    # a further child: earlier cases stay as they were
    net = nn.Sequential(nn.PeriodicConv2d(1, 2, 3, stride=2, padding=1, rng=extra), nn.Tanh(),
                        nn.PeriodicConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1,
                                                   rng=extra),
                        nn.CircularPad2d((1, 0, 2, 1)), nn.CircularFold2d((2, 1, 0, 1)))
    cases.append(("periodic conv pair (PeriodicConv2d, PeriodicConvTranspose2d, CircularPad2d, "
                  "CircularFold2d)", net, extra.standard_normal((2, 1, 4, 4))))
    cases.append(("Branches(Linear, BinnedLogPower) on (3, 16)",
                  nn.Branches(nn.Linear(16, 2, rng=extra), nn.BinnedLogPower(4, 2)),
                  extra.standard_normal((3, 16))))
    return cases


def _loss_vjp(grad):
    """The VJP of a scalar loss: ``v -> v * grad`` (v a 0-d cotangent)."""
    return lambda v: float(np.asarray(v)) * grad


def loss_cases(*, rng=None):
    """``[(description, argument name, f, gradient, x)]`` for every loss in :mod:`nprefgen.nn.losses`.

    ``f(x)`` is the loss as a function of one argument, the others fixed; ``gradient`` the
    analytic gradient returned by the loss at ``x``.
    """
    rng = check_rng(rng)
    n, k = 5, 3
    pred, target = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    prob = rng.uniform(0.0, 1.0, (n, k))
    mu, log_var = rng.standard_normal((n, k)), 0.5 * rng.standard_normal((n, k))
    labels = rng.integers(0, k, n)
    cases = []
    for red in ("mean", "sum"):
        cases.append((f"mse_loss (reduction={red})", "pred",
                      lambda p, red=red: losses.mse_loss(p, target, red)[0],
                      losses.mse_loss(pred, target, red)[1], pred))
        cases.append((f"bce_with_logits_loss (reduction={red})", "logits",
                      lambda a, red=red: losses.bce_with_logits_loss(a, prob, red)[0],
                      losses.bce_with_logits_loss(3.0 * pred, prob, red)[1], 3.0 * pred))
        cases.append((f"softmax_cross_entropy_loss (reduction={red})", "logits",
                      lambda a, red=red: losses.softmax_cross_entropy_loss(a, labels, red)[0],
                      losses.softmax_cross_entropy_loss(pred, labels, red)[1], pred))
    d_mu, d_log_var = losses.gaussian_nll_loss(mu, log_var, target)[1]
    cases.append(("gaussian_nll_loss", "mu", lambda m: losses.gaussian_nll_loss(m, log_var, target)[0],
                  d_mu, mu))
    cases.append(("gaussian_nll_loss", "log_var",
                  lambda lv: losses.gaussian_nll_loss(mu, lv, target)[0], d_log_var, log_var))
    return cases


def run_all_layer_checks(seed: int = 0, *, rng: np.random.Generator | None = None,
                         rtol: float = DEFAULT_RTOL) -> list[tuple[str, str, float, bool]]:
    """Dot-product tests (NN.18) of every nn layer (input and each parameter) and every loss.

    Parameters
    ----------
    seed : int
        Seed of the generator that draws layers, inputs and directions (ignored if ``rng``).
    rng : numpy.random.Generator, optional
    rtol : float
        Relative-error bar of each test (default 1e-8).

    Returns
    -------
    list of ``(layer description, parameter name or "input", relative error, ok)``.
    """
    check_scalar(rtol, "rtol", low=0.0, low_inclusive=False)
    if rng is None:
        rng = np.random.default_rng(check_int(seed, "seed", low=0))
    rng = check_rng(rng)
    rows: list[tuple[str, str, float, bool]] = []
    for desc, layer, x in layer_cases(rng=rng):
        for r in layer_vjp_errors(layer, x, rng=rng, rtol=rtol):
            rows.append((desc, r.name, r.rel_error, r.ok))
    for desc, arg, fun, grad, x in loss_cases(rng=rng):
        r = vjp_error(lambda x_, fun=fun: np.asarray(fun(x_)), _loss_vjp(grad), x, rng=rng,
                      rtol=rtol, name=arg)
        rows.append((desc, arg, r.rel_error, r.ok))
    return rows


def _quiet_spline_flow(*args, **kwargs) -> flows.Flow:
    """``flows.spline_flow`` without its TailBoundWarning: here ``standardize`` only sets the
    Standardize layer of a gradient-check case (40 draws, a couple of them past the tail bound
    |z| = 3, where the spline is the identity and its gradient is checked too), not data the flow
    is trained on, so the advice to standardise would only confuse the tour's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", flows.TailBoundWarning)
        return flows.spline_flow(*args, **kwargs)


def bijector_cases(*, rng=None) -> list[tuple[str, flows.Bijector, np.ndarray, np.ndarray | None]]:
    """``[(description, bijector, x, context or None)]`` covering every bijector type of
    :mod:`nprefgen.flows` and a conditional flow of each builder, with random parameters (a
    fresh flow is the identity, where many gradients vanish). float64, D = 4, C = 2."""
    rng = check_rng(rng)
    n, d, c = 5, 4, 2
    data = rng.standard_normal((40, d)) * [1.0, 2.0, 0.5, 1.5] + 0.5
    ctx = rng.standard_normal((40, c))
    mask = np.array([1.0, 0.0, 1.0, 0.0])
    cases = [
        ("AffineCoupling(bound=3, context)",
         flows.AffineCoupling(mask, [6], rng=rng, context_dim=c, activation="tanh"), True),
        ("AffineCoupling(bound=None)",
         flows.AffineCoupling(1.0 - mask, [5], rng=rng, activation="softplus", bound=None), False),
        ("SplineCoupling(K=4, context)",
         flows.SplineCoupling(d, mask, [6], n_bins=4, rng=rng, context_dim=c, activation="tanh"),
         True),
        ("MAF(context)", flows.MAF(d, [6], rng=rng, context_dim=c, activation="tanh"), True),
        ("IAF(context)", flows.IAF(d, [6], rng=rng, context_dim=c, activation="tanh"), True),
        ("Permutation", flows.Permutation.random(d, rng=rng), False),
        ("ElementwiseAffine", flows.ElementwiseAffine(d), False),
        ("ActNorm", flows.ActNorm(d).initialize(data), False),
        ("Standardize", flows.Standardize.from_data(data), False),
        ("LogitTransform", flows.LogitTransform(d, lam=1e-3), False),
        ("realnvp(context, actnorm)", flows.realnvp(d, 2, 5, rng=rng, context_dim=c, actnorm=True,
                                                    activation="tanh", standardize=data,
                                                    standardize_context=ctx), True),
        ("maf(context)", flows.maf(d, 2, 5, rng=rng, context_dim=c, activation="tanh",
                                   standardize=data), True),
        ("spline_flow(context)", _quiet_spline_flow(d, 2, 5, rng=rng, context_dim=c, n_bins=4,
                                                    activation="tanh", standardize=data), True),
    ]
    out = []
    for desc, b, conditional in cases:
        if not isinstance(b, (flows.ActNorm, flows.Standardize)):
            randomize_parameters(b, rng=rng, scale=0.4)
        x = (rng.uniform(0.05, 0.95, (n, d)) if isinstance(b, flows.LogitTransform)
             else rng.standard_normal((n, d)))
        out.append((desc, b, x, rng.standard_normal((n, c)) if conditional else None))
    return out


def _scalar_vjp(grad):
    return lambda v: float(np.asarray(v)) * grad


def _rows_vjp(grad):
    """VJP of a per-row function with row gradients ``grad: (n, ...)``: v (n,) -> v grad."""
    return lambda v: np.asarray(v).reshape((-1,) + (1,) * (grad.ndim - 1)) * grad


def kernel_cases(*, rng=None):
    """``[(description, argument, f, vjp, x)]`` for every kernel of :mod:`nprefgen.kernels` with
    a hand-written gradient, numba kernel and NumPy twin: softplus (NN.7), logsumexp_rows
    (NN.20, VJP the softmax), im2col/col2im (NN.22-NN.23, adjoint pair), the affine coupling
    (FLOW.9) and the rational-quadratic spline (SPL.9-SPL.11), NT-Xent (REP.14-REP.15), the DSM
    loss (SCORE.6), the ELBO pieces (VAE.3-VAE.10). ``vjp(v)`` is the kernel's own backward.
    """
    rng = check_rng(rng)
    n, k = 5, 3
    cases = []
    a = 2.0 * rng.standard_normal((n, k))
    for sp, spg in ((kernels.softplus, kernels.softplus_grad),
                    (kernels.softplus_numpy, kernels.softplus_grad_numpy)):
        cases.append((sp.__name__, "x", sp, lambda v, spg=spg: v * spg(a), a))
    for lse in (kernels.logsumexp_rows, kernels.logsumexp_rows_numpy):
        cases.append((lse.__name__, "a", lse, lambda v: v[:, None] * losses.softmax(a), a))
    img = rng.standard_normal((2, 2, 5, 4))
    geo = ((3, 2), (2, 1), (1, 0))
    for i2c, c2i in ((kernels.im2col, kernels.col2im), (kernels.im2col_numpy, kernels.col2im_numpy)):
        cases.append((f"{i2c.__name__} (kernel (3, 2), stride (2, 1), padding (1, 0))", "x",
                      lambda x, i2c=i2c: i2c(x, *geo),
                      lambda v, c2i=c2i: c2i(v, img.shape, *geo), img))
    xr = _away_from_zero(rng.standard_normal((n, k)))
    for rb in (relu_backward, relu_backward_numpy):
        cases.append((rb.__name__, "x", lambda u: np.maximum(u, 0.0),
                      lambda v, rb=rb: rb(xr, v), xr))
    # the affine coupling's elementwise map (FLOW.5-FLOW.6) and its VJP (FLOW.9), from raw_s or
    # from the saved s = b tanh(raw_s / b), e = exp(s)
    x_b, raw, t = rng.standard_normal((n, k)), rng.standard_normal((n, k)), rng.standard_normal((n, k))
    saved_fwd, saved_bwd = kcoupling.affine_coupling_forward_saved, kcoupling.affine_coupling_backward_saved

    def saved_backward(x_, raw_, bound, d_y, d_ld):
        _, _, s_, e_ = saved_fwd(x_, raw_, t, bound)
        return saved_bwd(x_, s_, e_, bound, d_y, d_ld)

    for fwd, bwd, name in ((kcoupling.affine_coupling_forward, kcoupling.affine_coupling_backward,
                            "affine_coupling_forward/backward"),
                           (kcoupling.affine_coupling_forward_numpy,
                            kcoupling.affine_coupling_backward_numpy,
                            "affine_coupling_forward/backward_numpy"),
                           (kcoupling.affine_coupling_forward, saved_backward,
                            "affine_coupling_forward_saved/backward_saved")):
        for j, arg in enumerate(("x_b", "raw_s", "t")):
            def f(u, j=j, fwd=fwd):
                args = [x_b, raw, t]
                args[j] = u
                return fwd(*args, 2.0)

            cases.append((f"{name} (bound 2)", arg, f,
                          lambda v, j=j, bwd=bwd: bwd(x_b, raw, 2.0, v[0], v[1])[j],
                          [x_b, raw, t][j]))
    # the fused spline theta -> (y, log g') (SPL.2-SPL.6) and its VJP
    m, n_bins, bound = 8, 4, 2.5
    xs = rng.uniform(-2.0, 2.0, m)
    theta = 0.5 * rng.standard_normal((m, 3 * n_bins - 1))
    mins = (1e-3, 1e-3, 1e-3)
    for fwd, bwd in ((kspline.rq_spline_theta_forward, kspline.rq_spline_theta_backward),
                     (kspline.rq_spline_theta_forward_numpy, kspline.rq_spline_theta_backward_numpy)):
        cases.append((f"{fwd.__name__} (K=4, B=2.5)", "x",
                      lambda u, fwd=fwd: fwd(u, theta, bound, *mins),
                      lambda v, bwd=bwd: bwd(xs, theta, bound, *mins, v[0], v[1])[0], xs))
        cases.append((f"{fwd.__name__} (K=4, B=2.5)", "theta",
                      lambda u, fwd=fwd: fwd(xs, u, bound, *mins),
                      lambda v, bwd=bwd: bwd(xs, theta, bound, *mins, v[0], v[1])[1], theta))
    h = rng.standard_normal((6, 3))
    for nt in (kntxent.ntxent, kntxent.ntxent_numpy):
        cases.append((f"{nt.__name__} (tau 0.5)", "h", lambda u, nt=nt: np.asarray(nt(u, 0.5)[0]),
                      _scalar_vjp(nt(h, 0.5)[1]), h))
    s_out, z, sigma = rng.standard_normal((n, k)), rng.standard_normal((n, k)), rng.uniform(0.1, 2, n)
    for dsm in (kdsm.dsm_loss, kdsm.dsm_loss_numpy):
        cases.append((dsm.__name__, "s", lambda u, dsm=dsm: np.asarray(dsm(u, z, sigma)[0]),
                      _scalar_vjp(dsm(s_out, z, sigma)[1]), s_out))
    mu, lv = rng.standard_normal((n, k)), 0.5 * rng.standard_normal((n, k))
    xb = rng.uniform(0.0, 1.0, (n, k))
    ll = rng.standard_normal(n)
    for suffix in ("", "_numpy"):
        kl = getattr(kelbo, "kl_standard_normal" + suffix)
        cases.append((kl.__name__, "mu", lambda u, kl=kl: kl(u, lv)[0], _rows_vjp(kl(mu, lv)[1]), mu))
        cases.append((kl.__name__, "log_var", lambda u, kl=kl: kl(mu, u)[0],
                      _rows_vjp(kl(mu, lv)[2]), lv))
        bern = getattr(kelbo, "bernoulli_log_lik" + suffix)
        cases.append((bern.__name__, "logits", lambda u, bern=bern: bern(xb, u)[0],
                      _rows_vjp(bern(xb, 3 * a)[1]), 3 * a))
        gau = getattr(kelbo, "gaussian_log_lik" + suffix)
        cases.append((gau.__name__, "mean", lambda u, gau=gau: gau(xb, u, lv)[0],
                      _rows_vjp(gau(xb, mu, lv)[1]), mu))
        cases.append((gau.__name__, "log_var", lambda u, gau=gau: gau(xb, mu, u)[0],
                      _rows_vjp(gau(xb, mu, lv)[2]), lv))
        el = getattr(kelbo, "elbo" + suffix)
        cases.append((f"{el.__name__} (beta 1.5)", "mu", lambda u, el=el: el(ll, u, lv, 1.5)[0],
                      _rows_vjp(el(ll, mu, lv, 1.5)[1]), mu))
        cases.append((f"{el.__name__} (beta 1.5)", "log_var", lambda u, el=el: el(ll, mu, u, 1.5)[0],
                      _rows_vjp(el(ll, mu, lv, 1.5)[2]), lv))
    return cases


def run_gradchecks(groups=GROUPS, seed: int = 0, *, rng: np.random.Generator | None = None,
                   rtol: float = DEFAULT_RTOL) -> list[tuple[str, str, str, float, bool]]:
    """Dot-product tests (NN.18, NN.19) of the chosen groups of :data:`GROUPS`.

    Parameters
    ----------
    groups : sequence of str, a subset of ("layers", "losses", "bijectors", "kernels").
    seed : int, seed of layers, inputs and directions (ignored if ``rng``).
    rng : numpy.random.Generator, optional
    rtol : float, the relative-error bar of each test (default 1e-8).

    Returns
    -------
    list of ``(group, description, checked, relative error, ok)``. Bijector rows check the
    gradients of ``<v, z> + <w, log_det>`` (FLOW.24) w.r.t. the input, the context and every
    parameter (:func:`nprefgen.testing.bijector_checks.backward_errors`).
    """
    if isinstance(groups, str) or not all(isinstance(g, str) for g in groups) or not groups:
        raise ValueError(f"groups: expected a non-empty sequence of names from {GROUPS}, "
                         f"got {groups!r}")
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"groups: expected names from {GROUPS}, got unknown {unknown}")
    check_scalar(rtol, "rtol", low=0.0, low_inclusive=False)
    if rng is None:
        rng = np.random.default_rng(check_int(seed, "seed", low=0))
    rng = check_rng(rng)
    rows: list[tuple[str, str, str, float, bool]] = []
    if "layers" in groups:
        for desc, layer, x in layer_cases(rng=rng):
            for r in layer_vjp_errors(layer, x, rng=rng, rtol=rtol):
                rows.append(("layers", desc, r.name, r.rel_error, r.ok))
    if "losses" in groups:
        for desc, arg, fun, grad, x in loss_cases(rng=rng):
            r = vjp_error(lambda x_, fun=fun: np.asarray(fun(x_)), _loss_vjp(grad), x, rng=rng,
                          rtol=rtol, name=arg)
            rows.append(("losses", desc, arg, r.rel_error, r.ok))
    if "bijectors" in groups:
        for desc, b, x, c in bijector_cases(rng=rng):
            for r in backward_errors(b, x, c, rng=rng, step=1e-4, rtol=rtol):
                rows.append(("bijectors", desc, r.name, r.rel_error, r.ok))
    if "kernels" in groups:
        for desc, arg, fun, vjp, x in kernel_cases(rng=rng):
            r = vjp_error(fun, vjp, x, rng=rng, rtol=rtol, name=arg)
            rows.append(("kernels", desc, arg, r.rel_error, r.ok))
    return rows


class BrokenLinear(nn.Linear):
    """A deliberately wrong Linear: its weight gradient is twice (NN.2b). For demonstrations only."""

    def _accumulate_weight_grad(self, d_W: np.ndarray) -> None:
        self.grads["weight"] += 2.0 * d_W


def planted_bug_checks(seed: int = 0, *, rng: np.random.Generator | None = None,
                       rtol: float = DEFAULT_RTOL) -> list[tuple[str, str, float, bool]]:
    """The same test on :class:`BrokenLinear`: the ``weight`` row must FAIL, the others pass.

    Shows that the dot-product test can fail: a backward that is wrong by a factor of two in
    one parameter is caught, and the other rows localise the bug to that parameter.
    """
    check_scalar(rtol, "rtol", low=0.0, low_inclusive=False)
    if rng is None:
        rng = np.random.default_rng(check_int(seed, "seed", low=0))
    rng = check_rng(rng)
    layer = BrokenLinear(3, 4, rng=rng)
    x = rng.standard_normal((4, 3))
    desc = "planted bug: Linear(3, 4) with weight gradient x2"
    return [(desc, r.name, r.rel_error, r.ok) for r in layer_vjp_errors(layer, x, rng=rng, rtol=rtol)]
