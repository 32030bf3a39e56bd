"""Affine elementwise transforms with the scale conventions of public flow libraries
(derivations/flows.md, FLOW.25-FLOW.28).

nprefgen's own :class:`~nprefgen.flows.coupling.AffineTransform` bounds the log-scale with a
tanh (FLOW.6). zuko and nflows bound the scale differently, and :mod:`nprefgen.interop` needs
their maps *exactly*, so each convention is a variant of one transform

    y_B = x_B sigma(a) + t,   log_det = sum_B log sigma(a)                           (FLOW.25)

with the scale function sigma chosen by ``scale``:

- ``"softclip"``: log sigma = a / (1 + |a| / b)                 (FLOW.26; zuko's
  MonotonicAffineTransform with b = -log(slope), 6.9 for slope 1e-3)
- ``"sigmoid"``: sigma = sigmoid(a + c) + eps                  (FLOW.27; nflows'
  AffineCouplingTransform with c = 2, eps = 1e-3)
- ``"softplus"``: sigma = softplus(a) + eps                    (FLOW.28; nflows'
  MaskedAffineAutoregressiveTransform with eps = 1e-3). ``threshold`` reproduces PyTorch's
  ``F.softplus``, which returns a itself for a > 20 (a relative change of up to 1e-10 of sigma,
  enough to move an ill-conditioned inverse by 1e-8): softplus(a) = a above the threshold.

The conditioner output is laid out like AffineTransform's, ``h = [a (d_B), t (d_B)]``; the
adapters in :mod:`nprefgen.interop` reorder a library's output units to this layout. Unlike
AffineTransform, ``h = 0`` is the identity only for ``"softclip"`` (sigmoid(2) + 1e-3 = 0.882,
softplus(0) + 1e-3 = 0.694), as in the libraries.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_choice, check_scalar
from nprefgen.flows.coupling import ElementwiseTransform

SCALES = ("softclip", "sigmoid", "softplus")


def _sigmoid(v):
    """Overflow-free logistic function, elementwise."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def affine_scale(a, scale: str, bound: float, shift: float, eps: float,
                 threshold: float | None = None):
    """(FLOW.26)-(FLOW.28) a: (n, d) raw scale -> log sigma: (n, d), d log sigma / da: (n, d).

    scale : "softclip" (uses bound b), "sigmoid" (uses shift c and eps) or "softplus" (eps, and
    ``threshold``: softplus(a) = a for a > threshold, PyTorch's convention; None: exact).
    """
    if scale == "softclip":
        u = 1.0 + np.abs(a) / bound
        return a / u, 1.0 / (u * u)                                  # (FLOW.26)
    if scale == "sigmoid":
        p = _sigmoid(a + shift)
        sigma = p + eps
        return np.log(sigma), p * (1.0 - p) / sigma                  # (FLOW.27)
    sp, dsp = np.logaddexp(0.0, a), _sigmoid(a)
    if threshold is not None:                    # PyTorch: softplus(a) = a, slope 1 above it
        above = a > threshold
        sp, dsp = np.where(above, a, sp), np.where(above, 1.0, dsp)
    sigma = sp + eps
    return np.log(sigma), dsp / sigma                                # (FLOW.28)


class ScaledAffineTransform(ElementwiseTransform):
    """y_B = x_B sigma(a) + t (FLOW.25) with a library's scale function sigma (FLOW.26-FLOW.28).

    Parameters
    ----------
    scale : "softclip" | "sigmoid" | "softplus"
    bound : b > 0 of "softclip" (zuko: -log(slope)).
    shift : c of "sigmoid" (nflows: 2.0).
    eps : the additive floor of "sigmoid" and "softplus" (nflows: 1e-3), >= 0.
    threshold : "softplus" only: softplus(a) = a for a > threshold (PyTorch's F.softplus: 20);
        None (default) for the exact softplus.

    ``h: (n, 2 d_B) = [a, t]``. Backward (FLOW.25): d_x = d_y sigma, d_t = d_y,
    d_a = (d_y x sigma + d_log_det) d log sigma / da.
    """

    n_params = 2

    def __init__(self, scale: str = "softclip", bound: float = -float(np.log(1e-3)),
                 shift: float = 2.0, eps: float = 1e-3, threshold: float | None = None) -> None:
        self.scale = check_choice(scale, "scale", SCALES)
        self.bound = check_scalar(bound, "bound", low=0.0, low_inclusive=False)
        self.shift = check_scalar(shift, "shift")
        self.eps = check_scalar(eps, "eps", low=0.0)
        self.threshold = None if threshold is None else check_scalar(threshold, "threshold")

    def _log_scale(self, a):
        return affine_scale(a, self.scale, self.bound, self.shift, self.eps, self.threshold)

    def forward(self, x_b, h):
        """(FLOW.25) x_b: (n, d_B), h: (n, 2 d_B) -> y_b, log_det: (n,), cache."""
        d_b = x_b.shape[1]
        log_sigma, d_log_sigma = self._log_scale(h[:, :d_b])
        sigma = np.exp(log_sigma)
        y_b = x_b * sigma + h[:, d_b:]
        return y_b, log_sigma.sum(axis=1), (x_b, sigma, d_log_sigma)

    def inverse(self, y_b, h):
        """(FLOW.25) x_B = (y_B - t) / sigma, log_det_inv = -sum log sigma."""
        d_b = y_b.shape[1]
        log_sigma, _ = self._log_scale(h[:, :d_b])
        return (y_b - h[:, d_b:]) / np.exp(log_sigma), -log_sigma.sum(axis=1)

    def backward(self, cache, d_y, d_log_det):
        """(FLOW.25) d_y: (n, d_B), d_log_det: (n,) -> d_x_b, d_h = [d_a, d_t]."""
        x_b, sigma, d_log_sigma = cache
        d_x = d_y * sigma
        d_a = (d_x * x_b + d_log_det[:, None]) * d_log_sigma
        return d_x, np.concatenate([d_a, d_y], axis=1)

    def __repr__(self) -> str:
        if self.scale == "softclip":
            return f"ScaledAffineTransform(scale='softclip', bound={self.bound:g})"
        if self.scale == "sigmoid":
            return f"ScaledAffineTransform(scale='sigmoid', shift={self.shift:g}, eps={self.eps:g})"
        return f"ScaledAffineTransform(scale='softplus', eps={self.eps:g}, threshold={self.threshold})"
