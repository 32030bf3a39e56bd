"""The digits experiments of issue 3, as functions the tour and the benchmarks call
(derivations/splines.md, SPL.14-SPL.18).

Unconditional: test log-likelihood of a full-covariance Gaussian, RealNVP, MAF and a
rational-quadratic spline flow on the bundled 8x8 digits, in nats per image and bits/dim, and
sample grids. Conditional: p(pixels | central 2x2 pixels), sampled at given centres including
all-zero ones. Both run on MNIST with the same code when the user has the IDX files
(``dataset="mnist", mnist_root=...``).

Preprocessing (SPL.14): integer pixels v in {0..L-1} (L = 17 grey levels for the digits, 256 for
MNIST) are dequantized with uniform noise, squeezed to [lambda, 1 - lambda] and mapped to logit
space, where all models are fitted. Log-likelihoods are reported for the dequantized pixels in
pixel units (SPL.15), a lower bound on the log-probability of the integer image, and in bits/dim
(SPL.16). The test set is dequantized once with a fixed generator, so all models are scored on
the same points.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nprefgen._threads import blas_threads as _blas_threads
from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.flows.logit import dequantize, logit_forward

DEFAULT_ALPHA = 0.05          # lambda of (SPL.14)
TEST_NOISE_SEED = 20_190_917  # the test set's one fixed dequantization (SPL.14)
MODELS = ("gaussian", "realnvp", "maf", "spline")


# ---------------------------------------------------------------------------------------------
# preprocessing and units (SPL.14-SPL.16)
# ---------------------------------------------------------------------------------------------


def preprocess(v, levels: int, alpha: float = DEFAULT_ALPHA, *, rng: np.random.Generator, noise=None):
    """(SPL.14) Dequantize integer pixels and map them to logit space.

    The steps are :func:`nprefgen.flows.logit.dequantize` (FLOW.20) and
    :func:`nprefgen.flows.logit.logit_forward` (FLOW.19) with lambda = ``alpha``.

    Parameters
    ----------
    v : (n, D) integer-valued pixels in [0, levels - 1].
    levels : L, the number of grey levels (17 for the digits, 256 for MNIST).
    alpha : lambda in (0, 0.5), the squeeze away from 0 and 1.
    rng : numpy.random.Generator drawing the noise e ~ U(0, 1)^D (unless ``noise`` is given).
    noise : (n, D) in [0, 1), the noise itself (tests, fixed test sets).

    Returns
    -------
    y : (n, D), the logit-space data.
    log_jac : (n,), sum_i log |dy_i / d v~_i| (SPL.15), so that
        ``log p(v~) = log q(y) + log_jac`` for a density q in logit space and v~ = v + e.
    """
    levels = check_int(levels, "levels", low=2)
    alpha = check_scalar(alpha, "alpha", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
    v = check_array(v, "v", ndim=2, dtype=np.float64)
    if np.any(v < 0) or np.any(v > levels - 1) or np.any(v != np.round(v)):
        raise ValueError(f"v: expected integers in [0, {levels - 1}], got values in "
                         f"[{v.min():g}, {v.max():g}] (non-integers: {int(np.sum(v != np.round(v)))})")
    x = dequantize(v, rng, levels=levels, noise=noise)          # (v + e) / L in [0, 1)
    y, log_det = logit_forward(x, alpha)                          # (SPL.14)
    return y, log_det - v.shape[1] * np.log(levels)               # (SPL.15): dx/dv~ = 1/L


def postprocess(y, levels: int, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Invert (SPL.14) up to the noise: logit-space samples -> integer pixels in [0, levels-1].

    y: (n, D) -> (n, D) float array of integers (floor of the dequantized value, clipped).
    """
    y = check_array(y, "y", ndim=2)
    levels = check_int(levels, "levels", low=2)
    p = 1.0 / (1.0 + np.exp(-np.clip(y, -50.0, 50.0)))
    v = (p - alpha) / (1.0 - 2.0 * alpha) * levels
    return np.clip(np.floor(v), 0, levels - 1)


def pixel_log_likelihood(log_q, log_jac) -> np.ndarray:
    """(SPL.15) log p(v~) = log q(y) + log_jac: logit-space density -> dequantized pixel units.

    log_q, log_jac: (n,) -> (n,).
    """
    return np.asarray(log_q) + np.asarray(log_jac)


def bits_per_dim(log_p, n_dims: int) -> np.ndarray:
    """(SPL.16) -log p / (D ln 2): nats per image (pixel units) -> bits per pixel (lower is better).

    Equal to :func:`nprefgen.flows.logit.bits_per_dim` (FLOW.21) of the same density on [0, 1)^D.
    """
    n_dims = check_int(n_dims, "n_dims", low=1)
    return -np.asarray(log_p) / (n_dims * np.log(2.0))


# ---------------------------------------------------------------------------------------------
# the Gaussian baseline (SPL.17-SPL.18)
# ---------------------------------------------------------------------------------------------


class GaussianBaseline:
    """Maximum-likelihood full-covariance Gaussian (SPL.17), optionally conditional (SPL.18).

    ``fit(y)`` sets mu and Sigma = cov + ridge I; ``log_prob(y)`` per sample; ``sample(n, rng)``.
    With ``fit(y, context)`` the Gaussian is fitted jointly to [y, context] and ``log_prob``
    and ``sample`` are those of the conditional p(y | context) (SPL.18).
    """

    def __init__(self, ridge: float = 1e-6) -> None:
        self.ridge = check_scalar(ridge, "ridge", low=0.0)
        self.mu = None

    def fit(self, y, context=None) -> "GaussianBaseline":
        y = check_array(y, "y", ndim=2, dtype=np.float64)
        joint = y if context is None else np.concatenate(
            [y, check_array(context, "context", shape=(y.shape[0], None), dtype=np.float64)], axis=1)
        d = y.shape[1]
        mu = joint.mean(axis=0)
        diff = joint - mu
        cov = diff.T @ diff / joint.shape[0] + self.ridge * np.eye(joint.shape[1])
        self.dim, self.context_dim = d, joint.shape[1] - d
        if self.context_dim == 0:
            self.mu, self.cov = mu, cov
            self._gain = None
        else:
            # (SPL.18) y | c ~ N(mu_y + S_yc S_cc^{-1} (c - mu_c), S_yy - S_yc S_cc^{-1} S_cy)
            s_cc = cov[d:, d:]
            gain = np.linalg.solve(s_cc, cov[d:, :d]).T                    # (d, C)
            self.mu, self._mu_c, self._gain = mu[:d], mu[d:], gain
            self.cov = cov[:d, :d] - gain @ cov[d:, :d]
        self.chol = np.linalg.cholesky(self.cov)
        return self

    def _mean(self, n: int, context) -> np.ndarray:
        if self._gain is None:
            if context is not None:
                raise ValueError("context: this Gaussian was fitted without a context, got one")
            return np.broadcast_to(self.mu, (n, self.dim))
        context = check_array(context, "context", shape=(n, self.context_dim), dtype=np.float64)
        return self.mu + (context - self._mu_c) @ self._gain.T

    def log_prob(self, y, context=None) -> np.ndarray:
        """(SPL.17) y: (n, D) [, context: (n, C)] -> (n,) log N(y; mu(c), Sigma)."""
        if self.mu is None:
            raise ValueError("self: call fit before log_prob")
        y = check_array(y, "y", shape=(None, self.dim), dtype=np.float64)
        r = np.linalg.solve(self.chol, (y - self._mean(y.shape[0], context)).T)   # L^{-1}(y - mu)
        return (-0.5 * np.sum(r * r, axis=0) - np.sum(np.log(np.diag(self.chol)))
                - 0.5 * self.dim * np.log(2.0 * np.pi))

    def sample(self, n: int, rng: np.random.Generator, context=None) -> np.ndarray:
        """n draws y = mu(c) + L e, e ~ N(0, I). -> (n, D)."""
        if self.mu is None:
            raise ValueError("self: call fit before sample")
        n = check_int(n, "n", low=1)
        e = check_rng(rng).standard_normal((n, self.dim))
        return self._mean(n, context) + e @ self.chol.T


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@dataclass
class ImageData:
    """Integer images, flattened row-major: ``train``, ``val``, ``test``: (n, side*side) float
    arrays of integers in [0, levels - 1]."""

    name: str
    side: int
    levels: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def dim(self) -> int:
        return self.side * self.side


def load_image_data(dataset: str = "digits", *, mnist_root=None, max_train: int | None = None,
                    max_test: int | None = None) -> ImageData:
    """The bundled digits (fixed 1,078 / 359 / 360 split, 17 levels) or MNIST from its IDX files.

    Parameters
    ----------
    dataset : "digits" or "mnist"
    mnist_root : folder with the MNIST IDX files (required for "mnist"; never downloaded here).
        MNIST's last 10,000 training images are the validation split.
    max_train, max_test : keep only the first so many training / test (and validation) images.
    """
    check_choice(dataset, "dataset", ("digits", "mnist"))
    if dataset == "digits":
        from nprefgen.data import load_digits

        parts = [load_digits(s, scale="raw")[0] for s in ("train", "val", "test")]
        side, levels = 8, 17
    else:
        from nprefgen.data import load_mnist

        if mnist_root is None:
            raise ValueError("mnist_root: expected the folder holding the MNIST IDX files, got None")
        train, _ = load_mnist(mnist_root, "train", scale="raw")
        test, _ = load_mnist(mnist_root, "test", scale="raw")
        parts = [train[:-10_000], train[-10_000:], test]
        side, levels = 28, 256
    if max_train is not None:
        parts[0] = parts[0][: check_int(max_train, "max_train", low=2)]
    if max_test is not None:
        m = check_int(max_test, "max_test", low=2)
        parts[1], parts[2] = parts[1][:m], parts[2][:m]
    return ImageData(dataset, side, levels, *(np.asarray(p, dtype=np.float64) for p in parts))


def central_indices(side: int, size: int = 2) -> np.ndarray:
    """Row-major indices of the central ``size x size`` block of a ``side x side`` image.

    For the 8x8 digits and size 2: pixels (3,3), (3,4), (4,3), (4,4) -> [27, 28, 35, 36].
    """
    side = check_int(side, "side", low=2)
    size = check_int(size, "size", low=1, high=side - 1)
    lo = (side - size) // 2
    rows = np.arange(lo, lo + size)
    return (rows[:, None] * side + rows[None, :]).reshape(-1)


# ---------------------------------------------------------------------------------------------
# models and training
# ---------------------------------------------------------------------------------------------


@dataclass
class FlowConfig:
    """Sizes and training budget of the demo flows (one config for all three families)."""

    n_layers: dict = field(default_factory=lambda: {"realnvp": 5, "maf": 5, "spline": 4})
    hidden: int = 128
    n_bins: int = 8
    bound: float = 3.5
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    patience: int = 10
    clip: float = 5.0


FULL = FlowConfig()
QUICK = FlowConfig(n_layers={"realnvp": 2, "maf": 2, "spline": 2}, hidden=16, n_bins=4,
                   epochs=3, batch_size=256, patience=3)


def build_flow(kind: str, dim: int, *, rng: np.random.Generator, context_dim: int = 0,
               config: FlowConfig = FULL, side: int | None = None):
    """A RealNVP (checkerboard masks when ``side`` is given, as the RealNVP paper does for
    images), MAF (random permutations between layers, as sbi) or spline flow of ``config``'s size.

    Returns a :class:`nprefgen.flows.Flow` on (n, dim) logit-space data.
    """
    from nprefgen.flows.builders import maf, realnvp
    from nprefgen.flows.spline import spline_flow

    check_choice(kind, "kind", ("realnvp", "maf", "spline"))
    n_layers = config.n_layers[kind]
    image = side is not None and side * side == dim
    mask = dict(mask="checkerboard", image_shape=(side, side)) if image else {}
    if kind == "realnvp":
        return realnvp(dim, n_layers, config.hidden, rng=rng, context_dim=context_dim, **mask)
    if kind == "maf":
        return maf(dim, n_layers, config.hidden, rng=rng, context_dim=context_dim,
                   permutation="random")
    return spline_flow(dim, n_layers, config.hidden, rng=rng, context_dim=context_dim,
                       n_bins=config.n_bins, bound=config.bound, **mask)


def blas_threads(n: int | None):
    """Context manager limiting numpy's BLAS to ``n`` threads (None: leave it alone); see
    :func:`nprefgen._threads.blas_threads` for why the demos use one thread."""
    if n is not None:
        check_int(n, "blas_threads", low=1)
    return _blas_threads(n)


def _limit_blas(fun):
    """Give ``fun`` an ``n_blas_threads`` keyword (default 1) applied by :func:`blas_threads`."""
    import functools

    @functools.wraps(fun)
    def wrapper(*args, n_blas_threads: int | None = 1, **kwargs):
        with blas_threads(n_blas_threads):
            return fun(*args, **kwargs)
    return wrapper


@_limit_blas
def fit_dequantized(flow, v_train, v_val, levels: int, *, rng: np.random.Generator,
                    config: FlowConfig = FULL, context_train=None, context_val=None,
                    alpha: float = DEFAULT_ALPHA, progress: bool = False) -> dict:
    """Maximum likelihood with fresh dequantization noise every epoch (SPL.14).

    Unlike :meth:`nprefgen.flows.Flow.fit`, which trains on one fixed array, this loop draws new
    noise e for the training images every epoch (a free regulariser on 1,078 images) and stops
    early on a *fixed* validation set (dequantized once): Adam, minibatches, gradient clipping,
    the best weights restored. Returns ``{"train_loss", "val_loss", "best_epoch", "epochs"}`` in
    mean nats per image (logit space). Keyword ``n_blas_threads`` (default 1): see
    :func:`blas_threads`.
    """
    from tqdm.auto import tqdm

    from nprefgen.nn import Adam, clip_grad_norm

    rng = check_rng(rng)
    v_train = check_array(v_train, "v_train", ndim=2)
    y_val, _ = preprocess(v_val, levels, alpha, rng=np.random.default_rng(TEST_NOISE_SEED + 1))
    params = flow.parameters()
    opt = Adam(params, lr=config.lr)
    history = {"train_loss": [], "val_loss": [], "best_epoch": 0, "epochs": 0}
    best, best_state, since = np.inf, flow.state_dict(), 0
    n = v_train.shape[0]
    for epoch in tqdm(range(config.epochs), desc=type(flow).__name__, disable=not progress, leave=False):
        y_train, _ = preprocess(v_train, levels, alpha, rng=rng)
        perm = rng.permutation(n)
        total = 0.0
        for s in range(0, n, config.batch_size):
            idx = perm[s:s + config.batch_size]
            flow.zero_grad()
            c = None if context_train is None else context_train[idx]
            weights = np.full(idx.size, -1.0 / idx.size)          # mean NLL (FLOW.22)
            lp, _, _ = flow.log_prob_and_grad(y_train[idx], c, weights=weights)
            if not np.all(np.isfinite(lp)):
                flow.load_state_dict(best_state)
                raise RuntimeError(f"fit_dequantized: a non-finite log-likelihood in epoch {epoch}; "
                                   "best weights restored. Try a smaller lr.")
            if config.clip:
                clip_grad_norm(params, config.clip)
            opt.step()
            total -= float(np.sum(lp))
        history["train_loss"].append(total / n)
        history["val_loss"].append(flow.mean_nll(y_val, context_val))
        history["epochs"] = epoch + 1
        if history["val_loss"][-1] < best:
            best, best_state, since = history["val_loss"][-1], flow.state_dict(), 0
            history["best_epoch"] = epoch
        else:
            since += 1
            if since >= config.patience:
                break
    flow.load_state_dict(best_state)
    flow.zero_grad()
    return history


# ---------------------------------------------------------------------------------------------
# the experiments
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelScore:
    """One row of a results table: test log-likelihood of dequantized images in pixel units."""

    name: str
    n_params: int
    test_nats: float          # mean log p(v~) per image (SPL.15); higher is better
    test_se: float            # its standard error over test images
    bits_per_dim: float       # (SPL.16); lower is better
    seconds: float
    epochs: int


def _score(name, log_q, log_jac, n_dims, n_params, seconds, epochs) -> ModelScore:
    lp = pixel_log_likelihood(log_q, log_jac)
    return ModelScore(name, int(n_params), float(np.mean(lp)), float(np.std(lp) / np.sqrt(lp.size)),
                      float(bits_per_dim(np.mean(lp), n_dims)), float(seconds), int(epochs))


def _gaussian_params(dim: int, context_dim: int = 0) -> int:
    d = dim + context_dim
    return d + d * (d + 1) // 2


@dataclass
class UnconditionalResult:
    data: ImageData
    scores: list
    samples: dict             # model name -> (n, D) integer pixel images
    models: dict              # model name -> fitted model
    histories: dict           # model name -> training history


@_limit_blas
def run_unconditional(data: ImageData | None = None, *, rng: np.random.Generator,
                      config: FlowConfig = FULL, models=MODELS, n_samples: int = 32,
                      alpha: float = DEFAULT_ALPHA, progress: bool = False) -> UnconditionalResult:
    """Fit each model of ``models`` to the training images and score the test images.

    data : ImageData (default: the bundled digits); models : subset of
    ("gaussian", "realnvp", "maf", "spline"). Training noise is drawn from ``rng`` afresh every
    epoch; all models are scored on one fixed dequantization of the test set (SPL.14).
    Samples: ``n_samples`` per model, mapped back to integer pixels. Keyword ``n_blas_threads``
    (default 1): see :func:`blas_threads`.
    """
    import time

    rng = check_rng(rng)
    data = load_image_data() if data is None else data
    for m in models:
        check_choice(m, "models", MODELS)
    y_test, jac_test = preprocess(data.test, data.levels, alpha,
                                  rng=np.random.default_rng(TEST_NOISE_SEED))
    scores, samples, fitted, histories = [], {}, {}, {}
    for name in models:
        t0 = time.perf_counter()
        if name == "gaussian":
            y_train, _ = preprocess(data.train, data.levels, alpha, rng=rng)
            model = GaussianBaseline().fit(y_train)
            n_params, epochs, history = _gaussian_params(data.dim), 0, None
        else:
            model = build_flow(name, data.dim, rng=rng, config=config, side=data.side)
            history = fit_dequantized(model, data.train, data.val, data.levels, rng=rng,
                                      config=config, alpha=alpha, progress=progress)
            n_params, epochs = model.num_parameters(), history["epochs"]
        seconds = time.perf_counter() - t0
        scores.append(_score(name, model.log_prob(y_test), jac_test, data.dim, n_params, seconds,
                             epochs))
        samples[name] = postprocess(model.sample(n_samples, rng), data.levels, alpha)
        fitted[name], histories[name] = model, history
    return UnconditionalResult(data, scores, samples, fitted, histories)


@dataclass
class ConditionalResult:
    data: ImageData
    centre_idx: np.ndarray    # (C,) pixel indices of the context block
    rest_idx: np.ndarray      # (D - C,) the modelled pixels
    scores: list
    centres: np.ndarray       # (k, C) integer centre pixels the samples were drawn at
    samples: np.ndarray       # (k, m, D) integer images, the given centre pasted in
    model: object
    history: dict


@_limit_blas
def run_conditional(data: ImageData | None = None, *, rng: np.random.Generator, kind: str = "spline",
                    config: FlowConfig = FULL, centre_size: int = 2, centres=None,
                    n_centres: int = 5, n_per_centre: int = 8, alpha: float = DEFAULT_ALPHA,
                    progress: bool = False) -> ConditionalResult:
    """p(pixels | central pixels): a conditional flow on the other pixels, the central
    ``centre_size x centre_size`` block (as v / (L - 1), no noise) as its context.

    Scores on the test images (pixel units, per image over the modelled pixels): the Gaussian
    p(rest) ignoring the centre, the conditional Gaussian p(rest | centre) (SPL.18) and the flow.
    Samples are drawn at ``centres`` ((k, C) integers; default: all zeros, then the non-zero
    centres of ``n_centres - 1`` random test images).
    """
    import time

    rng = check_rng(rng)
    data = load_image_data() if data is None else data
    c_idx = central_indices(data.side, centre_size)
    rest = np.setdiff1d(np.arange(data.dim), c_idx)
    scale = float(data.levels - 1)

    def split(v):
        return v[:, rest], v[:, c_idx] / scale

    (v_tr, c_tr), (v_va, c_va), (v_te, c_te) = split(data.train), split(data.val), split(data.test)
    y_test, jac_test = preprocess(v_te, data.levels, alpha, rng=np.random.default_rng(TEST_NOISE_SEED))
    y_train, _ = preprocess(v_tr, data.levels, alpha, rng=rng)
    d = rest.size
    scores = []
    t0 = time.perf_counter()
    g = GaussianBaseline().fit(y_train)
    scores.append(_score("gaussian p(rest)", g.log_prob(y_test), jac_test, d, _gaussian_params(d),
                         time.perf_counter() - t0, 0))
    t0 = time.perf_counter()
    gc = GaussianBaseline().fit(y_train, c_tr)
    scores.append(_score("gaussian p(rest | centre)", gc.log_prob(y_test, c_te), jac_test, d,
                         _gaussian_params(d, c_idx.size), time.perf_counter() - t0, 0))
    t0 = time.perf_counter()
    flow = build_flow(kind, d, rng=rng, context_dim=c_idx.size, config=config)
    flow.standardize_context(c_tr)
    history = fit_dequantized(flow, v_tr, v_va, data.levels, rng=rng, config=config,
                              context_train=c_tr, context_val=c_va, alpha=alpha, progress=progress)
    scores.append(_score(f"{kind} flow p(rest | centre)", flow.log_prob(y_test, c_te), jac_test, d,
                         flow.num_parameters(), time.perf_counter() - t0, history["epochs"]))
    if centres is None:
        nonzero = np.flatnonzero(np.any(data.test[:, c_idx] > 0, axis=1))
        picks = rng.choice(nonzero, min(max(n_centres - 1, 0), nonzero.size), replace=False)
        centres = np.concatenate([np.zeros((1, c_idx.size)), data.test[picks][:, c_idx]])
    centres = check_array(centres, "centres", shape=(None, c_idx.size), dtype=np.float64)
    n_per_centre = check_int(n_per_centre, "n_per_centre", low=1)
    images = np.empty((centres.shape[0], n_per_centre, data.dim))
    for k, centre in enumerate(centres):
        y = flow.sample(n_per_centre, rng, centre / scale)
        images[k][:, rest] = postprocess(y, data.levels, alpha)
        images[k][:, c_idx] = centre
    return ConditionalResult(data, c_idx, rest, scores, centres, images, flow, history)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def tile(images, side: int, n_cols: int, pad: float = np.nan) -> np.ndarray:
    """(n, side*side) images -> one (rows*(side+1)-1, n_cols*(side+1)-1) array for imshow."""
    images = check_array(images, "images", ndim=2)
    n = images.shape[0]
    n_rows = -(-n // n_cols)
    out = np.full((n_rows * (side + 1) - 1, n_cols * (side + 1) - 1), pad)
    for i in range(n):
        r, c = divmod(i, n_cols)
        out[r * (side + 1): r * (side + 1) + side, c * (side + 1): c * (side + 1) + side] = \
            images[i].reshape(side, side)
    return out


def plot_sample_grids(samples: dict, side: int, levels: int, n_cols: int = 8,
                      titles: dict | None = None, panels_per_row: int = 3):
    """One panel per model: its samples as a grid of images (grey levels 0..L-1, white = 0)."""
    import matplotlib.pyplot as plt

    names = list(samples)
    n_rows = -(-len(names) // panels_per_row)
    n_cols_fig = min(len(names), panels_per_row)
    fig, axes = plt.subplots(n_rows, n_cols_fig, figsize=(3.6 * n_cols_fig, 2.2 * n_rows + 0.4),
                             squeeze=False)
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        ax.imshow(tile(samples[name], side, n_cols), cmap=cmap, vmin=0, vmax=levels - 1)
        ax.set_title((titles or {}).get(name, name), fontsize=10)
    fig.tight_layout()
    return fig


def plot_conditional_samples(result: ConditionalResult):
    """One row per centre: the centre alone (4x scale, outlined), then the samples drawn at it."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    data = result.data
    k, m, _ = result.samples.shape
    fig, axes = plt.subplots(k, m + 1, figsize=(0.9 * (m + 1), 0.95 * k), squeeze=False)
    lo = (data.side - int(np.sqrt(result.centre_idx.size))) // 2
    size = int(np.sqrt(result.centre_idx.size))
    for r in range(k):
        centre_only = np.zeros(data.dim)
        centre_only[result.centre_idx] = result.centres[r]
        row = [centre_only] + list(result.samples[r])
        for c, img in enumerate(row):
            ax = axes[r, c]
            ax.imshow(img.reshape(data.side, data.side), cmap="gray_r", vmin=0, vmax=data.levels - 1)
            ax.add_patch(Rectangle((lo - 0.5, lo - 0.5), size, size, fill=False, ec="tab:red", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel("all zero" if not np.any(result.centres[r]) else f"centre {r}",
                              fontsize=7)
    axes[0, 0].set_title("context", fontsize=8)
    axes[0, 1].set_title("samples", fontsize=8, loc="left")
    fig.tight_layout(pad=0.2)
    return fig


def score_rows(scores) -> list[list]:
    """Table rows: model, parameters, test nats/image (+- se), bits/dim, epochs, seconds."""
    return [[s.name, s.n_params, f"{s.test_nats:.2f} +- {s.test_se:.2f}", s.bits_per_dim, s.epochs,
             s.seconds] for s in scores]


SCORE_HEADER = ["model", "parameters", "test log-lik. (nats/image)", "bits/dim", "epochs", "seconds"]
