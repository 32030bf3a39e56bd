"""A spectral feature for discriminators of fields, and a container that runs branches side by side
(derivations/gan.md, GAN.21-GAN.22).

A convolutional discriminator sees a 32 x 32 field through 7 x 7-pixel patches; the power on
scales of 8-16 pixels is a property of the whole map that it can only infer through its head
(GAN.15). This layer hands the head that property directly: the log of the power of each sample in
shells of |k|,

    (GAN.21)  f_b(x) = log( p_b + eps ),   p_b = (1 / N_b) sum_{k in shell b} |X_k|^2 / (s^2),
              X = fft2(x) (unnormalised),

for an s x s image x, shells b = 0..B-1 of |k| / k_f between 1 and s / 2 (log-spaced edges, as
nprefgen.metrics.field_stats bins them), N_b the number of fft2 modes in shell b. For a real x and
weights c_k that depend on |k| only (so c_k = c_{-k}),

    (GAN.22)  d/dx sum_k c_k |X_k|^2 = 2 Re( F^H (c * X) ) = 2 s^2 Re( ifft2(c * X) ),

F the DFT matrix (F^H v = s^2 ifft2(v)); the chain rule gives c_k = (df_b) / (p_b + eps) / (N_b s^2)
for k in shell b, 0 outside every shell. The feature is a property of one sample (no batch
coupling), so the generator is pushed to match the *distribution* of per-map band powers, of which
the power spectrum is the mean.

:class:`Branches` applies several networks to the same input and concatenates their (n, f_i)
outputs along axis 1; its backward pass sums the branches' input gradients (NN.10 with a fan-out).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int, check_scalar
from nprefgen.nn.base import Module, check_cotangent


def _shell_index(n_side: int, n_bins: int) -> np.ndarray:
    """Shell of every fft2 mode of an (n_side, n_side) image, row-major: (n_side^2,) ints in
    [0, n_bins), -1 for |k| / k_f < 1 (the mean) or > n_side / 2 (the corners). Edges
    log-spaced from 1 to n_side / 2, the last one inclusive (field_stats' binning)."""
    m = np.fft.fftfreq(n_side, d=1.0 / n_side)                    # integer mode numbers
    q = np.hypot(m[:, None], m[None, :])                          # |k| / k_f
    edges = np.geomspace(1.0, n_side / 2, n_bins + 1)
    idx = np.searchsorted(edges, q, side="right") - 1
    idx[q == n_side / 2] = n_bins - 1
    idx[(q < 1.0) | (q > n_side / 2)] = -1
    return idx.ravel()


class BinnedLogPower(Module):
    """(GAN.21) per-sample log band power of square images: x: (n, s s) flat rows or
    (n, 1, s, s) -> (n, n_bins). No parameters; backward (GAN.22). Shells that hold no fft2
    mode are refused (pick fewer bins)."""

    def __init__(self, n_side: int, n_bins: int = 8, eps: float = 1e-8) -> None:
        super().__init__()
        self.n_side = check_int(n_side, "n_side", low=2)
        self.n_bins = check_int(n_bins, "n_bins", low=1)
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
        idx = _shell_index(self.n_side, self.n_bins)
        counts = np.bincount(idx[idx >= 0], minlength=self.n_bins)
        if np.any(counts == 0):
            raise ValueError(f"n_bins: {self.n_bins} log-spaced shells leave some empty on a "
                             f"{self.n_side} x {self.n_side} image (modes per shell "
                             f"{counts.tolist()}); use fewer")
        # (s^2, B): averaging weights 1 / (N_b s^2) of every mode in its shell
        self._avg = np.zeros((self.n_side**2, self.n_bins))
        ok = idx >= 0
        self._avg[np.flatnonzero(ok), idx[ok]] = 1.0 / (counts[idx[ok]] * self.n_side**2)

    def forward(self, x):
        x = check_array(x, "x", ndim=(2, 4))
        s = self.n_side
        if x.shape[1:] not in ((s * s,), (1, s, s)):            # not any 4-D block of s^2 values
            raise ValueError(f"x: {self!r} expected (n, {s * s}) flat rows or (n, 1, {s}, {s}) "
                             f"images, got shape {x.shape}")
        return self._forward(x)

    def _forward(self, x):
        n, s = x.shape[0], self.n_side
        X = np.fft.fft2(x.reshape(n, s, s))                       # (n, s, s) complex
        p = (X.real**2 + X.imag**2).reshape(n, -1) @ self._avg    # (n, B), (GAN.21)
        return np.log(p + self.eps).astype(x.dtype, copy=False), (X, p, x.shape, x.dtype)

    def backward(self, cache, d_y):
        d_y = check_cotangent(d_y, (cache[0].shape[0], self.n_bins))
        return self._backward(cache, d_y)

    def _backward(self, cache, d_y):
        X, p, shape, dtype = cache
        n, s = X.shape[0], self.n_side
        c = ((d_y / (p + self.eps)) @ self._avg.T).reshape(n, s, s)   # c_k, 1 / (N_b s^2) in _avg
        d_x = 2.0 * s * s * np.real(np.fft.ifft2(c * X))             # (GAN.22)
        return d_x.reshape(shape).astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"BinnedLogPower(n_side={self.n_side}, n_bins={self.n_bins}, eps={self.eps})"


class Branches(Module):
    """Networks applied to the same input, outputs (n, f_i) concatenated: (n, ...) -> (n, sum f_i).
    Children "0", "1", ...; backward sums the branches' input gradients."""

    def __init__(self, *nets: Module) -> None:
        super().__init__()
        if len(nets) < 1:
            raise ValueError("nets: expected at least one network, got none")
        for i, net in enumerate(nets):
            if not isinstance(net, Module):
                raise ValueError(f"nets: expected nprefgen.nn.Module networks, got "
                                 f"{type(net).__name__} at position {i}")
            self.add_child(str(i), net)
        self.nets = list(nets)

    def forward(self, x):
        outs, caches = zip(*(net.forward(x) for net in self.nets))
        for i, y in enumerate(outs):
            if y.ndim != 2 or y.shape[0] != outs[0].shape[0]:
                raise ValueError(f"x: branch {i} gave shape {y.shape}; Branches needs (n, f) "
                                 f"outputs with one n")
        return np.concatenate(outs, axis=1), (caches, [y.shape[1] for y in outs], outs[0].shape[0])

    def backward(self, cache, d_y):
        caches, sizes, n = cache
        d_y = check_cotangent(d_y, (n, sum(sizes)))
        parts = np.split(d_y, np.cumsum(sizes)[:-1], axis=1)
        d_x = self.nets[0].backward(caches[0], parts[0])
        for net, c, d in zip(self.nets[1:], caches[1:], parts[1:]):
            d_x = d_x + net.backward(c, d)
        return d_x

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(net) for net in self.nets)
        return f"Branches(\n  {inner}\n)"
