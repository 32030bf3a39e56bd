"""Dot-product tests of every :mod:`nprefgen.nn` layer and loss, as one table.

Used by ``nprefgen gradcheck`` (exit status 1 when any check fails) and by the tour section
``gradchecks``. Each row is ``(description, checked, relative error, ok)`` where ``checked`` is
``"input"``, a parameter name in PyTorch ``state_dict`` form, or the loss argument differentiated.
The test itself is :func:`nprefgen.testing.vjp_error`: ``<u, J^T v>`` against ``<v, J u>`` with
``J u`` from a fourth-order central difference (NN.18, NN.19), float64, random ``u`` and ``v``.

Inputs to the piecewise-linear layers (ReLU, LeakyReLU, ELU's kink) are pushed at least
``_AWAY`` from zero, so no finite-difference stencil straddles a kink.
"""
from __future__ import annotations

import numpy as np

import nprefgen.nn as nn
from nprefgen._validation import check_int, check_rng, check_scalar
from nprefgen.nn import losses
from nprefgen.testing import DEFAULT_RTOL, layer_vjp_errors, vjp_error

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
