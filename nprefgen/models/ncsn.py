"""Noise-conditional score network (NCSN) for vectors, trained by denoising score matching
(derivations/score.md, SCORE.5-SCORE.9, SCORE.12-SCORE.13).

One MLP f_theta serves every noise level of the geometric schedule (SCORE.8), conditioned as

    (SCORE.7)  "scale":  s(x, sigma) = f(x) / sigma                 (NCSNv2),
               "concat": s(x, sigma) = f([x, log sigma]) / sigma,

(in low dimension only the second can represent the score at every level: the perturbed data do
not reveal sigma the way a high-dimensional image's norm does),

and trained on the DSM loss (SCORE.5) with lambda(sigma) = sigma^2, one noise level drawn per
sample. With ``context_dim > 0`` the network also reads a context c (the observation x of
score-based posterior estimation, SCORE.15): f([x, c, log sigma]) or f([x, c]), the noise on x
only (:mod:`nprefgen.sbi.score_posterior`). ``sample`` runs annealed Langevin dynamics
(SCORE.12) with the network evaluated inside the numba loop of :mod:`nprefgen.kernels.langevin`.

References: Song & Ermon (2019), NCSN; Song & Ermon (2020), NCSNv2.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nprefgen._validation import (
    check_array, check_choice, check_int, check_rng, check_scalar, check_shape,
)
from nprefgen.kernels.dsm import dsm_loss
from nprefgen.kernels.langevin import (
    ACTIVATION_CODES, CONDITIONINGS, annealed_langevin_mlp, annealed_langevin_mlp_numpy,
    check_sigmas, langevin_loop,
)
from nprefgen.nn.containers import MLP
from nprefgen.nn.io import META_PREFIX, load_npz, read_npz, save_npz


def geometric_sigmas(sigma_1: float, sigma_L: float, n_levels: int) -> np.ndarray:
    """(SCORE.8) sigma_i = sigma_1 (sigma_L / sigma_1)^((i-1)/(L-1)), i = 1..L, decreasing, (L,)."""
    sigma_1 = check_scalar(sigma_1, "sigma_1", low=0.0, low_inclusive=False)
    sigma_L = check_scalar(sigma_L, "sigma_L", low=0.0, low_inclusive=False)
    n_levels = check_int(n_levels, "n_levels", low=1)
    if n_levels == 1:
        return np.array([sigma_1])
    if sigma_L >= sigma_1:
        raise ValueError(f"sigma_L: expected a value below sigma_1 = {sigma_1}, got {sigma_L}")
    return np.exp(np.linspace(np.log(sigma_1), np.log(sigma_L), n_levels))


def sigma_max_from_data(x, *, max_points: int = 2000, rng=None) -> float:
    """(SCORE.9) NCSNv2's sigma_1: the largest pairwise Euclidean distance in the data.

    x: (n, D). Exact for n <= ``max_points`` (O(n^2 D) in blocks of rows); otherwise the maximum
    over a random subset of ``max_points`` rows drawn with ``rng`` (a lower bound).
    """
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    max_points = check_int(max_points, "max_points", low=2)
    if x.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 rows to measure distances, got {x.shape[0]}")
    if x.shape[0] > max_points:
        x = x[check_rng(rng).choice(x.shape[0], size=max_points, replace=False)]
    sq = np.einsum("ij,ij->i", x, x)
    best = 0.0
    for i0 in range(0, x.shape[0], 256):
        block = x[i0:i0 + 256]
        d2 = sq[i0:i0 + 256, None] + sq[None, :] - 2.0 * block @ x.T
        best = max(best, float(d2.max()))
    return float(np.sqrt(max(best, 0.0)))


class NCSN:
    """Noise-conditional score network for vectors.

    Parameters
    ----------
    dim : int, D.
    hidden : widths of the MLP's hidden layers.
    conditioning : "scale" (NCSNv2, f(x)/sigma) or "concat" (f([x, log sigma])/sigma), (SCORE.7).
    activation : an activation the numba sampler knows (``ACTIVATION_CODES``); smooth ones
        (softplus, tanh, elu) give a smooth score.
    sigmas : (L,) decreasing noise levels; ``None``: set by ``fit`` from the data, sigma_1 by
        (SCORE.9), sigma_L = ``sigma_min``, ``n_levels`` levels (SCORE.8).
    rng : SPEC 7 seed or Generator for the initial weights.
    context_dim : width of a context input c read by the network beside x (0: none); the
        methods then take ``context: (n, context_dim)`` and the noise stays on x (SCORE.15).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (128, 128), *, conditioning: str = "concat",
                 activation: str = "softplus", sigmas=None, n_levels: int = 10,
                 sigma_min: float = 0.01, rng=None, context_dim: int = 0) -> None:
        self.dim = check_int(dim, "dim", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)
        self.conditioning = check_choice(conditioning, "conditioning", CONDITIONINGS)
        self.activation = check_choice(activation, "activation", ACTIVATION_CODES)
        self.n_levels = check_int(n_levels, "n_levels", low=1)
        self.sigma_min = check_scalar(sigma_min, "sigma_min", low=0.0, low_inclusive=False)
        self.sigmas = None if sigmas is None else check_sigmas(sigmas)
        rng = check_rng(rng)
        self.hidden = tuple(check_shape(tuple(hidden), "hidden", low=1))
        in_features = dim + self.context_dim + (1 if self.conditioning == "concat" else 0)
        self.net = self._build_net(in_features, rng)
        self.history_: dict[str, list] = {}

    supports_numba = True
    """The numba sampler can evaluate this network (an MLP) inside its loop."""

    def _build_net(self, in_features: int, rng):
        return MLP(in_features, list(self.hidden), self.dim, rng=rng, activation=self.activation)

    def _backward(self, cache, d_f):
        """The network's backward for d_f: (n, D), accumulating parameter gradients; returns the
        gradient with respect to the network's input."""
        return self.net.backward(cache, d_f)

    # -- the score ---------------------------------------------------------------------------
    def _sigma_rows(self, sigma, n: int) -> np.ndarray:
        sigma = check_array(sigma, "sigma", ndim=(0, 1), dtype=np.float64)
        if sigma.ndim == 0:
            sigma = np.full(n, float(sigma))
        if sigma.shape != (n,):
            raise ValueError(f"sigma: expected a scalar or shape ({n},), got shape {sigma.shape}")
        if np.any(sigma <= 0):
            raise ValueError(f"sigma: expected noise levels > 0, got minimum {sigma.min()}")
        return sigma

    def _check_context(self, context, n: int):
        """None without a context input, else context: (n, context_dim) finite float64."""
        if self.context_dim == 0:
            if context is not None:
                raise ValueError("context: this NCSN has context_dim=0, got a context")
            return None
        if context is None:
            raise ValueError(f"context: expected shape ({n}, {self.context_dim}), got None")
        return check_array(context, "context", shape=(n, self.context_dim), dtype=np.float64)

    @staticmethod
    def _ctx(context) -> tuple:
        """() or (context,): subclasses without a context input keep ``_forward(x, sigma)``."""
        return () if context is None else (context,)

    def _forward(self, x, sigma_rows, context=None):
        """(SCORE.7) s(x, sigma) and the cache of the network. x: (n, D), sigma_rows: (n,),
        context: (n, context_dim) or None (SCORE.15)"""
        if context is not None:
            x = np.column_stack([x, context])
        if self.conditioning == "concat":
            f, cache = self.net.forward(np.column_stack([x, np.log(sigma_rows)]))
        else:
            f, cache = self.net.forward(x)
        return f * (1.0 / sigma_rows)[:, None], cache     # as the numba loop: times 1/sigma

    def score(self, x, sigma, context=None) -> np.ndarray:
        """(SCORE.7) s_theta(x, sigma). x: (n, D); sigma: scalar or (n,), > 0 -> (n, D);
        context: (n, context_dim) when the network has one (SCORE.15)"""
        x = check_array(x, "x", shape=(None, self.dim), dtype=np.float64)
        context = self._check_context(context, x.shape[0])
        return self._forward(x, self._sigma_rows(sigma, x.shape[0]), *self._ctx(context))[0]

    __call__ = score

    # -- the loss ------------------------------------------------------------------------------
    def dsm_loss_and_grad(self, x, z, levels, context=None):
        """The DSM loss (SCORE.5) at x~ = x + sigma z, accumulating d loss / d theta (SCORE.6,
        then SCORE.7's backward and the network's) into ``self.net.grads``.

        x, z: (n, D); levels: (n,) integer indices into ``self.sigmas``. Deterministic given
        its arguments: the caller draws z and the levels. With a context (n, context_dim)
        (SCORE.15) returns ``(loss, d_context)``, d loss / d context: (n, context_dim).
        """
        sigmas = self._require_sigmas()
        x = check_array(x, "x", shape=(None, self.dim), dtype=np.float64)
        z = check_array(z, "z", shape=x.shape, dtype=np.float64)
        context = self._check_context(context, x.shape[0])
        sigma = sigmas[self._check_levels(levels, x.shape[0])]     # (n,)
        s, cache = self._forward(x + sigma[:, None] * z, sigma, *self._ctx(context))  # s(x~, sigma)
        loss, d_s = dsm_loss(s, z, sigma)                          # (SCORE.5), (SCORE.6)
        d_f = d_s * (1.0 / sigma)[:, None]                         # (SCORE.7) both forms
        d_in = self._backward(cache, d_f)
        if context is None:
            return loss
        return loss, d_in[:, self.dim:self.dim + self.context_dim]

    def dsm_loss(self, x, z, levels, context=None) -> float:
        """The DSM loss (SCORE.5) without gradients (validation); arguments as
        :meth:`dsm_loss_and_grad`."""
        sigmas = self._require_sigmas()
        x = check_array(x, "x", shape=(None, self.dim), dtype=np.float64)
        z = check_array(z, "z", shape=x.shape, dtype=np.float64)
        context = self._check_context(context, x.shape[0])
        sigma = sigmas[self._check_levels(levels, x.shape[0])]
        s, _ = self._forward(x + sigma[:, None] * z, sigma, *self._ctx(context))
        return dsm_loss(s, z, sigma)[0]

    def _check_levels(self, levels, n: int) -> np.ndarray:
        levels = np.asarray(levels)
        L = len(self._require_sigmas())
        if levels.shape != (n,) or not np.issubdtype(levels.dtype, np.integer) \
                or levels.min() < 0 or levels.max() >= L:
            raise ValueError(f"levels: expected ({n},) integers in [0, {L - 1}], got {levels!r}"[:300])
        return levels

    # -- training --------------------------------------------------------------------------------
    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(param, grad)`` pairs of the network, the optimizers' form."""
        return self.net.parameters()

    def zero_grad(self) -> None:
        self.net.zero_grad()

    def fit(self, x, *, context=None, rng=None, epochs: int = 200, batch_size: int = 128,
            lr: float = 1e-3,
            validation_fraction: float = 0.1, patience: int | None = None,
            clip: float | None = None, ema: float | None = None,
            progress: bool | None = None) -> "NCSN":
        """Train by denoising score matching (SCORE.5) on the shared loop
        (:func:`nprefgen.nn.train.fit_loop`, Adam).

        x: (n, D); context: (n, context_dim) when the network has one (SCORE.15). Without a
        schedule, sets it from the training rows of x first (SCORE.8, SCORE.9).
        Every minibatch draws fresh noise z and one level per sample from ``rng``; the validation
        rows get one fixed draw, so the validation loss is comparable across epochs. Returns self;
        ``history_`` holds the per-epoch training and validation losses.

        ``ema`` (NCSNv2 uses 0.999): keep an exponential moving average of the parameters,
        updated once per minibatch, and end with the network set to it (the loop's best-epoch
        restore is then overridden; ``history_["ema"]`` records the decay).
        """
        from nprefgen.nn.train import fit_loop, validation_split

        rng = check_rng(rng)
        x = check_array(x, "x", shape=(None, self.dim), dtype=np.float64)
        context = self._check_context(context, x.shape[0])
        data = (x,) if context is None else (x, context)
        train_idx, val_idx = validation_split(x.shape[0], validation_fraction, rng=rng)
        x_train = x[train_idx]
        if self.sigmas is None:
            self.set_schedule_from_data(x_train, rng=rng)
        val_data = evaluate = None
        if len(val_idx):
            z_val, levels_val = self.draw_noise(len(val_idx), rng=rng)
            val_data = tuple(a[val_idx] for a in data)
            evaluate = lambda xv, cv=None: self.dsm_loss(xv, z_val, levels_val, cv)

        params = [p for p, _ in self.parameters()]
        average = None
        if ema is not None:
            ema = check_scalar(ema, "ema", low=0.0, high=1.0, high_inclusive=False)
            average = [p.copy() for p in params]

        def loss_and_grad(xb, cb=None):
            if average is not None:          # the parameters after the previous step
                for a, p in zip(average, params):
                    a += (1.0 - ema) * (p - a)
            z, levels = self.draw_noise(xb.shape[0], rng=rng)
            return self.dsm_loss_and_grad(xb, z, levels, cb)

        self.history_ = fit_loop(self, loss_and_grad, tuple(a[train_idx] for a in data),
                                 rng=rng, evaluate=evaluate,
                                 val_data=val_data, epochs=epochs, batch_size=batch_size, lr=lr,
                                 patience=patience, clip=clip, progress=progress, desc="NCSN.fit")
        if average is not None:
            for a, p in zip(average, params):
                p[...] = a
            self.history_["ema"] = ema
        return self

    def draw_noise(self, n: int, *, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """z: (n, D) standard normal and levels: (n,) uniform over the L noise levels."""
        rng = check_rng(rng)
        n = check_int(n, "n", low=1)
        levels = rng.integers(0, len(self._require_sigmas()), size=n)
        return rng.standard_normal((n, self.dim)), levels

    def _require_sigmas(self) -> np.ndarray:
        if self.sigmas is None:
            raise ValueError("sigmas: expected a noise schedule; pass sigmas= or call fit first")
        return self.sigmas

    def set_schedule_from_data(self, x, *, rng=None) -> np.ndarray:
        """(SCORE.8), (SCORE.9) sigma_1 = the largest pairwise distance of x, geometric down to
        ``sigma_min`` over ``n_levels`` levels; stores and returns the schedule. x: (n, D)"""
        x = check_array(x, "x", shape=(None, self.dim), dtype=np.float64)
        sigma_1 = sigma_max_from_data(x, rng=rng)
        if sigma_1 <= self.sigma_min:
            raise ValueError(f"x: expected data spread wider than sigma_min = {self.sigma_min}, "
                             f"got a largest pairwise distance of {sigma_1}")
        self.sigmas = geometric_sigmas(sigma_1, self.sigma_min, self.n_levels)
        return self.sigmas

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> None:
        """The network's parameters, the noise schedule and the conditioning to ``.npz``."""
        meta = {"conditioning": np.array(self.conditioning), "activation": np.array(self.activation)}
        if self.sigmas is not None:
            meta["sigmas"] = self.sigmas
        save_npz(path, self.net, meta=meta)

    def load(self, path) -> "NCSN":
        """Load what :meth:`save` wrote into this identically built model; everything is checked
        before anything is assigned."""
        meta = {k[len(META_PREFIX):]: v for k, v in read_npz(path).items()
                if k.startswith(META_PREFIX)}
        for key in ("conditioning", "activation"):
            if str(meta.get(key, "")) != getattr(self, key):
                raise ValueError(f"path: {path!r} holds an NCSN with {key} "
                                 f"{str(meta.get(key, '?'))!r}, this one has {getattr(self, key)!r}")
        sigmas = check_sigmas(meta["sigmas"], "path") if "sigmas" in meta else None
        load_npz(path, self.net)                  # checks names and shapes before copying
        self.sigmas = sigmas
        return self

    # -- sampling ------------------------------------------------------------------------------
    def mlp_arrays(self, context=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The network as arrays for the numba sampler: weights[l] (out, in), biases[l] (out,).

        With a context input, ``context: (context_dim,)`` is one fixed context, folded into the
        first layer's bias (SCORE.17): the arrays are then those of an NCSN over x alone."""
        linears = [layer for layer in self.net.layers if "weight" in layer.params]
        w = [l.params["weight"] for l in linears]
        b = [l.params["bias"] for l in linears]
        if self.context_dim == 0:
            if context is not None:
                raise ValueError("context: this NCSN has context_dim=0, got a context")
            return w, b
        context = self._check_context(None if context is None else np.reshape(context, (1, -1)),
                                      1)[0]
        d, k = self.dim, self.context_dim
        w0 = np.ascontiguousarray(np.delete(w[0], np.s_[d:d + k], axis=1))   # x (and log sigma)
        b0 = b[0] + w[0][:, d:d + k] @ context
        return [w0] + w[1:], [b0] + b[1:]

    def sample(self, n: int, *, rng=None, eps: float = 2e-5, n_steps_each: int = 100,
               denoise: bool = True, x0=None, init_low=None, init_high=None,
               record_every: int = 0, return_path: bool = False, method: str = "numba",
               context=None):
        """Annealed Langevin dynamics (SCORE.12) with this network, numba loop (the Python loop
        :func:`nprefgen.kernels.langevin.langevin_loop` for networks it cannot run), then the
        denoising step (SCORE.13).

        Starts from ``x0: (n, D)`` or uniform in the box [init_low, init_high] (defaults: the
        box of half-width sigma_1 around 0). Returns x: (n, D), and the path
        ((1 + L T // k, n, D)) when ``return_path``. ``method="numpy"`` runs the NumPy twin of the
        loop instead, the same chains: faster with softplus/tanh/sigmoid/ELU, whose exponentials
        numba evaluates one scalar at a time (benchmarks/RESULTS.md), slower with ReLU.
        ``context: (context_dim,)``: one fixed context for every particle (SCORE.17).
        """
        method = check_choice(method, "method", ("numba", "numpy"))
        sigmas = self._require_sigmas()
        rng = check_rng(rng)
        n = check_int(n, "n", low=1)
        if x0 is None:
            lo = -sigmas[0] if init_low is None else init_low
            hi = sigmas[0] if init_high is None else init_high
            x0 = rng.uniform(lo, hi, size=(n, self.dim))
        else:
            x0 = check_array(x0, "x0", shape=(n, self.dim), dtype=np.float64)
        w, b = self.mlp_arrays(context) if self.supports_numba else (None, None)
        if not self.supports_numba:            # any network: the Python-level loop
            eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
            n_steps_each = check_int(n_steps_each, "n_steps_each", low=1)
            record_every = check_int(record_every, "record_every", low=0)
            x, path = langevin_loop(self, np.array(x0, dtype=np.float64), sigmas,
                                    eps * sigmas**2 / sigmas[-1] ** 2, n_steps_each, record_every,
                                    rng=rng)                       # (SCORE.12)
            if denoise:                                            # (SCORE.13)
                x = x + sigmas[-1] ** 2 * self.score(x, sigmas[-1])
            return (x, path) if return_path else x
        loop = annealed_langevin_mlp if method == "numba" else annealed_langevin_mlp_numpy
        x, path = loop(x0, sigmas, w, b, activation=self.activation,
                       conditioning=self.conditioning, eps=eps, n_steps_each=n_steps_each,
                       denoise=denoise, record_every=record_every, rng=rng)
        return (x, path) if return_path else x

    def __repr__(self) -> str:
        return (f"NCSN(dim={self.dim}, hidden={self.hidden}, conditioning={self.conditioning!r}, "
                f"levels={None if self.sigmas is None else len(self.sigmas)})")
