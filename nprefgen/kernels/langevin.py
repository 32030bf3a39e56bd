"""Langevin and annealed Langevin dynamics with an MLP score evaluated inside the loop
(derivations/score.md, SCORE.10, SCORE.12, SCORE.13).

    (SCORE.10)  x <- x + (alpha/2) s(x, sigma) + sqrt(alpha) z,
    (SCORE.12)  alpha_i = eps sigma_i^2 / sigma_L^2,  T steps at each level sigma_1 > ... > sigma_L,
    (SCORE.13)  optionally a final denoising step x <- x + sigma_L^2 s(x, sigma_L) (Tweedie).

The score is an MLP given as arrays, in the layout of :class:`nprefgen.nn.Linear` (``weights[l]``
of shape ``(out, in)``, ``biases[l]`` of shape ``(out,)``), with one activation between layers,
conditioned on the level as in (SCORE.7): ``"scale"`` gives s(x, sigma) = f(x) / sigma,
``"concat"`` gives s(x, sigma) = f([x, log sigma]) / sigma (the first layer then has D + 1
inputs; its last column is folded into the bias once per level).

``annealed_langevin_mlp_numpy`` is the oracle: one vectorised NumPy step for all particles at a
time. ``annealed_langevin_mlp`` runs every step of a level inside one numba call: blocks of
``_BLOCK`` particles stay in cache for all the steps of a noise block, the matrix products go to
BLAS, and Python is re-entered once per block of noise, not once per step. Both draw the noise
the same way (:func:`noise_blocks`), so with the same ``rng`` they follow the same chains.

The numba loop limits BLAS to one thread while it runs: its products are (128 x width) blocks,
for which OpenBLAS's threads only add synchronisation (measured on the shared 2-core machine: a
2-thread BLAS made the loop 5-20x slower and erratic). scipy's BLAS, which numba calls, is
imported here so that the limit reaches it.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import scipy.linalg  # noqa: F401  loads the BLAS that numba's np.dot calls, so thread limits see it

from nprefgen._threads import blas_threads
from nprefgen._validation import (
    check_array, check_choice, check_int, check_rng, check_scalar,
)
from nprefgen.kernels.jit import kernel

ACTIVATION_CODES = {"identity": 0, "relu": 1, "tanh": 2, "softplus": 3, "sigmoid": 4, "elu": 5,
                    "leaky_relu": 6}
"""Activations the numba loop knows, with the defaults of :mod:`nprefgen.nn.activations`
(ELU alpha 1, leaky slope 0.01)."""
CONDITIONINGS = ("scale", "concat")
_NOISE_BLOCK_VALUES = 1 << 20          # noise drawn per block: at most 8 MB of float64
_BLOCK = 128                           # particles per cache block inside the numba loop
_BLAS_MIN = 16                         # layers with at least this many inputs use gemm


def noise_blocks(n_steps: int, n: int, d: int, *, rng=None) -> Iterator[tuple[int, np.ndarray]]:
    """Standard normal noise for ``n_steps`` steps of ``n`` particles in blocks of whole steps:
    yields ``(first_step, z)`` with ``z: (m, n, d)``. Every Langevin loop in nprefgen draws its
    noise through this function, so loops that share an ``rng`` share their noise."""
    rng = check_rng(rng)
    per_block = max(1, min(n_steps, _NOISE_BLOCK_VALUES // max(1, n * d)))
    for t0 in range(0, n_steps, per_block):
        m = min(per_block, n_steps - t0)
        yield t0, rng.standard_normal((m, n, d))


# -- checks shared by both loops and by nprefgen.samplers.langevin ---------------------------------
def check_sigmas(sigmas, name: str = "sigmas") -> np.ndarray:
    """A strictly decreasing schedule of positive noise levels, (L,)."""
    sigmas = check_array(sigmas, name, ndim=1, dtype=np.float64)
    if np.any(sigmas <= 0):
        raise ValueError(f"{name}: expected noise levels > 0, got minimum {sigmas.min()}")
    if np.any(np.diff(sigmas) >= 0):
        raise ValueError(f"{name}: expected a strictly decreasing schedule sigma_1 > ... > sigma_L, "
                         f"got {np.array2string(sigmas, precision=4)}")
    return sigmas


def check_particles(x0, name: str = "x0") -> np.ndarray:
    """Finite starting particles (n, D), copied to a new C-contiguous float64 array."""
    return np.ascontiguousarray(check_array(x0, name, ndim=2, dtype=np.float64, copy=True))


def n_records(n_levels: int, n_steps_each: int, record_every: int) -> int:
    """Rows of a recorded path: the start, then every ``record_every``-th step (0: none)."""
    return 0 if record_every == 0 else 1 + (n_levels * n_steps_each) // record_every


def divergence_message(level: int, n_levels: int, sigma: float, step: int, n_steps: int) -> str:
    return (f"Langevin dynamics: particles became non-finite at level {level + 1} of {n_levels} "
            f"(sigma = {sigma:.4g}), step {step + 1} of {n_steps}; reduce eps or check the score")


def _check_mlp(weights, biases, d: int, conditioning: str):
    if not isinstance(weights, (list, tuple)) or not isinstance(biases, (list, tuple)) \
            or len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(f"weights: expected equally long non-empty sequences of weights and "
                         f"biases, got {type(weights).__name__} and {type(biases).__name__}")
    wts, bs = [], []
    fan_in = d + (1 if conditioning == "concat" else 0)
    for l, (w, b) in enumerate(zip(weights, biases)):
        w = check_array(w, f"weights[{l}]", ndim=2, dtype=np.float64)
        if w.shape[1] != fan_in:
            raise ValueError(f"weights[{l}]: expected {fan_in} inputs (axis 1), got shape {w.shape}")
        b = check_array(b, f"biases[{l}]", shape=(w.shape[0],), dtype=np.float64)
        wts.append(np.ascontiguousarray(w.T))                       # (in, out) for x @ W^T
        bs.append(np.ascontiguousarray(b))
        fan_in = w.shape[0]
    if fan_in != d:
        raise ValueError(f"weights[{len(weights) - 1}]: expected {d} outputs (the score's "
                         f"dimension), got {fan_in}")
    return wts, bs


def _level_mlp(wts, bs, d, sigma, conditioning):
    """(SCORE.7) the MLP at one level: the weights, biases and output scale the loops use."""
    if conditioning == "concat":                                    # f([x, log sigma]) / sigma
        first_b = bs[0] + np.log(sigma) * wts[0][d]
        return ((np.ascontiguousarray(wts[0][:d]),) + tuple(wts[1:]), (first_b,) + tuple(bs[1:]),
                1.0 / sigma)
    return tuple(wts), tuple(bs), 1.0 / sigma                       # f(x) / sigma


# -- the loop for any score callable (nprefgen.samplers.langevin, ConvNCSN.sample) ---------------
def call_score(score, x, sigma, shape):
    """``score(x)`` (sigma None) or ``score(x, sigma)``, checked to return ``shape``."""
    s = score(x) if sigma is None else score(x, sigma)
    s = np.asarray(s)
    if s.shape != shape:
        raise ValueError(f"score: expected the callable to return an array of shape {shape} "
                         f"(one score per particle), got shape {s.shape}")
    return s


def langevin_loop(score, x, sigmas, step_sizes, n_steps_each: int, record_every: int = 0, *,
                  conditional: bool = True, rng=None):
    """(SCORE.10) / (SCORE.12) in Python, one ``score`` call per step for all particles, in place
    on ``x: (n, D)`` (checked by the caller). ``conditional``: call ``score(x, sigmas[i])``, else
    ``score(x)``. Noise from :func:`noise_blocks`, as the MLP loops. Returns (x, path)."""
    rng = check_rng(rng)
    n, d = x.shape
    n_levels = len(step_sizes)
    path = np.empty((n_records(n_levels, n_steps_each, record_every), n, d))
    if record_every:
        path[0] = x
    for i, alpha in enumerate(step_sizes):
        sigma = sigmas[i] if conditional else None
        half, root = 0.5 * alpha, np.sqrt(alpha)
        for t0, z in noise_blocks(n_steps_each, n, d, rng=rng):
            for t in range(z.shape[0]):
                s = call_score(score, x, sigma, (n, d))
                with np.errstate(over="ignore", invalid="ignore"):
                    x += half * s + root * z[t]                   # (SCORE.10) / (SCORE.12)
                if not np.all(np.isfinite(x)):
                    raise RuntimeError(divergence_message(i, n_levels, sigmas[i], t0 + t,
                                                          n_steps_each))
                step = i * n_steps_each + t0 + t + 1
                if record_every and step % record_every == 0:
                    path[step // record_every] = x
    return x, path


# -- the NumPy twin ----------------------------------------------------------------------------
def _activation_numpy(h, code):
    if code == 1:
        return np.maximum(h, 0.0)
    if code == 2:
        return np.tanh(h)
    if code == 3:
        return np.maximum(h, 0.0) + np.log1p(np.exp(-np.abs(h)))
    if code == 4:
        e = np.exp(-np.abs(h))
        return np.where(h >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if code == 5:
        return np.where(h > 0, h, np.expm1(np.minimum(h, 0.0)))
    if code == 6:
        return np.where(h > 0, h, 0.01 * h)
    return h


def mlp_score_numpy(x, wts, bs, code, scale):
    """The MLP's output times ``scale``: x: (n, D), wts[l]: (in, out) -> (n, D)."""
    h = x
    for l, (w, b) in enumerate(zip(wts, bs)):
        h = h @ w + b
        if l < len(wts) - 1:
            h = _activation_numpy(h, code)
    return h * scale


def _steps_numpy(x, z, alpha, wts, bs, code, scale, path, record_every, step0):
    """(SCORE.10) ``z.shape[0]`` steps on all particles; returns the first non-finite step or m."""
    half, root = 0.5 * alpha, np.sqrt(alpha)
    for t in range(z.shape[0]):
        with np.errstate(over="ignore", invalid="ignore"):        # detected below, reported
            x += half * mlp_score_numpy(x, wts, bs, code, scale) + root * z[t]
        if not np.all(np.isfinite(x)):
            return t
        if record_every and (step0 + t + 1) % record_every == 0:
            path[(step0 + t + 1) // record_every] = x
    return z.shape[0]


# -- the numba loop ----------------------------------------------------------------------------
@kernel
def _bias_activate(h, b, code):
    """h <- act(h + b) in one pass; the activation's branch is outside the loops, so the
    cheap ones (relu, leaky relu, identity) vectorise."""
    n, m = h.shape
    if code == 1:
        for i in range(n):
            for j in range(m):
                v = h[i, j] + b[j]
                h[i, j] = v if v > 0.0 else 0.0
    elif code == 6:
        for i in range(n):
            for j in range(m):
                v = h[i, j] + b[j]
                h[i, j] = v if v > 0.0 else 0.01 * v
    elif code == 0:
        for i in range(n):
            for j in range(m):
                h[i, j] += b[j]
    else:
        for i in range(n):
            for j in range(m):
                v = h[i, j] + b[j]
                if code == 2:
                    v = np.tanh(v)
                elif code == 3:
                    v = max(v, 0.0) + np.log1p(np.exp(-abs(v)))
                elif code == 4:
                    e = np.exp(-abs(v))
                    v = 1.0 / (1.0 + e) if v >= 0 else e / (1.0 + e)
                elif code == 5:
                    v = v if v > 0 else np.expm1(v)
                h[i, j] = v


@kernel
def _dense(h, w, out):
    """out <- h @ w; w: (in, out). Layers with a wide input go to BLAS (gemm); a narrow input
    (the D-dimensional first layer) is a loop whose inner index runs over the contiguous output
    axis (vectorised)."""
    n, k_in = h.shape
    m = w.shape[1]
    if k_in >= _BLAS_MIN:
        np.dot(h, w, out)
    else:
        for i in range(n):
            for j in range(m):
                out[i, j] = 0.0
            for k in range(k_in):
                hik = h[i, k]
                for j in range(m):
                    out[i, j] += hik * w[k, j]


@kernel
def _mlp_into(xb, wts, bs, code, bufs):
    """The MLP on one block: bufs[-1] <- f(xb), hidden layers in bufs (no allocation)."""
    n_layers = len(wts)
    h = xb
    for l in range(n_layers):
        out = bufs[l]
        _dense(h, wts[l], out)
        _bias_activate(out, bs[l], code if l < n_layers - 1 else 0)
        h = out
    return h


@kernel
def _steps_numba(x, z, alpha, wts, bs, code, scale, path, record_every, step0):
    """(SCORE.10) the same contract as ``_steps_numpy``, particle block by particle block."""
    n, d = x.shape
    m = z.shape[0]
    half = 0.5 * alpha
    root = np.sqrt(alpha)
    first_bad = m
    for p0 in range(0, n, _BLOCK):
        p1 = min(n, p0 + _BLOCK)
        nb = p1 - p0
        xb = np.empty((nb, d))
        for i in range(nb):
            for k in range(d):
                xb[i, k] = x[p0 + i, k]
        bufs = [np.empty((nb, w.shape[1])) for w in wts]
        for t in range(m):
            s = _mlp_into(xb, wts, bs, code, bufs)
            finite = True
            for i in range(nb):
                for k in range(d):
                    v = xb[i, k] + half * (s[i, k] * scale) + root * z[t, p0 + i, k]
                    xb[i, k] = v
                    if not np.isfinite(v):
                        finite = False
            if not finite:
                if t < first_bad:
                    first_bad = t
                break
            if record_every > 0 and (step0 + t + 1) % record_every == 0:
                r = (step0 + t + 1) // record_every
                for i in range(nb):
                    for k in range(d):
                        path[r, p0 + i, k] = xb[i, k]
        for i in range(nb):
            for k in range(d):
                x[p0 + i, k] = xb[i, k]
    return first_bad


@kernel
def _score_numba(x, wts, bs, code, scale, out):
    """out <- scale * f(x), block by block."""
    n, d = x.shape
    for p0 in range(0, n, _BLOCK):
        p1 = min(n, p0 + _BLOCK)
        xb = np.ascontiguousarray(x[p0:p1])
        bufs = [np.empty((p1 - p0, w.shape[1])) for w in wts]
        s = _mlp_into(xb, wts, bs, code, bufs)
        for i in range(p1 - p0):
            for k in range(d):
                out[p0 + i, k] = s[i, k] * scale


def _score_fast(x, wts, bs, code, scale):
    out = np.empty_like(x)
    _score_numba(x, wts, bs, code, scale, out)
    return out


# -- the whole loop ----------------------------------------------------------------------------
def _annealed(steps, score_fn, x0, sigmas, weights, biases, activation, conditioning, eps,
              n_steps_each, denoise, record_every, rng):
    conditioning = check_choice(conditioning, "conditioning", CONDITIONINGS)
    code = ACTIVATION_CODES[check_choice(activation, "activation", ACTIVATION_CODES)]
    x = check_particles(x0)
    sigmas = check_sigmas(sigmas)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    n_steps_each = check_int(n_steps_each, "n_steps_each", low=1)
    record_every = check_int(record_every, "record_every", low=0)
    if not isinstance(denoise, (bool, np.bool_)):
        raise ValueError(f"denoise: expected a bool, got {denoise!r}")
    rng = check_rng(rng)
    n, d = x.shape
    wts, bs = _check_mlp(weights, biases, d, conditioning)
    n_levels = len(sigmas)
    path = np.empty((n_records(n_levels, n_steps_each, record_every), n, d))
    if record_every:
        path[0] = x
    for i, sigma in enumerate(sigmas):
        alpha = eps * sigma**2 / sigmas[-1] ** 2                    # (SCORE.12)
        lw, lb, scale = _level_mlp(wts, bs, d, sigma, conditioning)
        for t0, z in noise_blocks(n_steps_each, n, d, rng=rng):
            with np.errstate(over="ignore", invalid="ignore"):   # detected below, reported
                bad = steps(x, z, alpha, lw, lb, code, scale, path, record_every,
                            i * n_steps_each + t0)
            if bad < z.shape[0]:
                raise RuntimeError(divergence_message(i, n_levels, sigma, t0 + bad, n_steps_each))
    if denoise:                                                     # (SCORE.13) Tweedie
        lw, lb, scale = _level_mlp(wts, bs, d, sigmas[-1], conditioning)
        with np.errstate(over="ignore", invalid="ignore"):
            x = x + sigmas[-1] ** 2 * score_fn(x, lw, lb, code, scale)
        if not np.all(np.isfinite(x)):
            raise RuntimeError("Langevin dynamics: the final denoising step gave non-finite "
                               "particles; check the score at sigma_L")
    return x, path


def annealed_langevin_mlp_numpy(x0, sigmas, weights: Sequence, biases: Sequence, *,
                                activation: str = "softplus", conditioning: str = "scale",
                                eps: float, n_steps_each: int, denoise: bool = False,
                                record_every: int = 0, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Annealed Langevin dynamics (SCORE.12) with an MLP score, the NumPy oracle of the whole loop.

    Parameters
    ----------
    x0 : (n, D) starting particles (not modified).
    sigmas : (L,) strictly decreasing noise levels.
    weights, biases : the MLP's layers, ``weights[l]: (out, in)``, ``biases[l]: (out,)``; the
        first layer has D inputs ("scale") or D + 1 ("concat"), the last D outputs.
    activation : one of ``ACTIVATION_CODES``, between layers.
    conditioning : "scale" (f(x)/sigma) or "concat" (f([x, log sigma])/sigma), (SCORE.7).
    eps : step size at the last level; level i uses eps sigma_i^2 / sigma_L^2.
    n_steps_each : T, steps per level.
    denoise : apply (SCORE.13) at the end.
    record_every : k > 0 records the start and every k-th step in ``path``.
    rng : SPEC 7 seed or Generator for the noise.

    Returns
    -------
    x : (n, D) final particles; path : (1 + L T // k, n, D) recorded states ((0, n, D) if k = 0).

    Raises RuntimeError naming the level and step when a particle becomes non-finite.
    """
    return _annealed(_steps_numpy, mlp_score_numpy, x0, sigmas, weights, biases, activation,
                     conditioning, eps, n_steps_each, denoise, record_every, rng)


def annealed_langevin_mlp(x0, sigmas, weights: Sequence, biases: Sequence, *,
                          activation: str = "softplus", conditioning: str = "scale", eps: float,
                          n_steps_each: int, denoise: bool = False, record_every: int = 0,
                          rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Annealed Langevin dynamics (SCORE.12), (SCORE.13), numba loop; the contract of
    :func:`annealed_langevin_mlp_numpy` (same arguments, same noise, same result)."""
    with blas_threads(1):       # gemm on blocks of _BLOCK rows: threads cost more than they give
        return _annealed(_steps_numba, _score_fast, x0, sigmas, weights, biases, activation,
                         conditioning, eps, n_steps_each, denoise, record_every, rng)


def langevin_mlp_numpy(x0, weights: Sequence, biases: Sequence, *, sigma: float = 1.0,
                       activation: str = "softplus", conditioning: str = "scale", eps: float,
                       n_steps: int, record_every: int = 0, rng=None):
    """Plain Langevin dynamics (SCORE.10) on the MLP score at one level ``sigma``, step ``eps``:
    the annealed loop with L = 1. x0: (n, D) -> (x: (n, D), path)."""
    return annealed_langevin_mlp_numpy(x0, [sigma], weights, biases, activation=activation,
                                       conditioning=conditioning, eps=eps, n_steps_each=n_steps,
                                       record_every=record_every, rng=rng)


def langevin_mlp(x0, weights: Sequence, biases: Sequence, *, sigma: float = 1.0,
                 activation: str = "softplus", conditioning: str = "scale", eps: float,
                 n_steps: int, record_every: int = 0, rng=None):
    """Plain Langevin dynamics (SCORE.10), numba loop; the contract of :func:`langevin_mlp_numpy`."""
    return annealed_langevin_mlp(x0, [sigma], weights, biases, activation=activation,
                                 conditioning=conditioning, eps=eps, n_steps_each=n_steps,
                                 record_every=record_every, rng=rng)
