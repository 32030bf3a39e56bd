"""The digits flow experiments the tour runs (derivations/splines.md, SPL.14-SPL.18): test
log-likelihood of a full-covariance Gaussian, RealNVP, MAF and a rational-quadratic spline flow
on the bundled 8x8 digits, and a conditional flow p(pixels | central 2x2 pixels). Both run on
MNIST with the same code when the user has the IDX files (``load_image_data("mnist", ...)``).

Pixels are dequantized with fresh noise every epoch, squeezed by lambda = 0.05 and moved to logit
space (:func:`nprefgen.flows.logit.pixels_to_logit`, SPL.14), where every model is fitted;
scores are reported for the dequantized pixels in pixel units (SPL.15) and in bits/dim
(SPL.16). The test set is dequantized once with a fixed seed, so all models are scored on the
same points. The pieces live in their layers: preprocessing in :mod:`nprefgen.flows.logit`, the
Gaussian in :mod:`nprefgen.models.gaussian`, the data in :mod:`nprefgen.data.images`, the
figures in :mod:`nprefgen.plots.flows`; this module only runs the experiments.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.data.images import ImageData, central_indices, load_image_data
from nprefgen.flows import maf, realnvp, spline_flow
from nprefgen.flows.logit import bits_per_dim, logit_to_pixels, pixel_log_likelihood, pixels_to_logit
from nprefgen.models.gaussian import GaussianDensity

LAMBDA = 0.05                 # lambda of (SPL.14) for 17 grey levels
TEST_NOISE_SEED = 20_190_917  # the test set's one fixed dequantization (SPL.14)
MODELS = ("gaussian", "realnvp", "maf", "spline")


def preprocess(v, levels: int, *, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(SPL.14) :func:`pixels_to_logit` with the experiments' lambda = 0.05."""
    return pixels_to_logit(v, levels, LAMBDA, rng=rng)


@dataclass
class FlowConfig:
    """Sizes and training budget of the digits flows (one config for all three families)."""

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


def digits_flow(kind: str, dim: int, *, rng=None, context_dim: int = 0, config: FlowConfig = FULL,
                side: int | None = None):
    """A RealNVP (checkerboard masks when ``side`` is given, as the RealNVP paper does for
    images), MAF (random permutations between layers, as sbi) or spline flow of ``config``'s size
    on (n, dim) logit-space pixels.

    No Standardize in front (``standardize=False``): logit-space pixels with lambda = 0.05 lie in
    [-2.94, 2.94], inside the spline's tail bound 3.5, and the numbers in RESULTS.md were
    measured that way.
    """
    check_choice(kind, "kind", ("realnvp", "maf", "spline"))
    n_layers = config.n_layers[kind]
    image = side is not None and side * side == dim
    mask = dict(mask="checkerboard", image_shape=(side, side)) if image else {}
    if kind == "realnvp":
        return realnvp(dim, n_layers, config.hidden, rng=rng, context_dim=context_dim,
                       standardize=False, **mask)
    if kind == "maf":
        return maf(dim, n_layers, config.hidden, rng=rng, context_dim=context_dim,
                   permutation="random", standardize=False)
    return spline_flow(dim, n_layers, config.hidden, rng=rng, context_dim=context_dim,
                       n_bins=config.n_bins, bound=config.bound, standardize=False, **mask)


def _limit_blas(fun):
    """Give ``fun`` an ``n_blas_threads`` keyword (default 1): these networks are too small for
    a multi-threaded BLAS to pay off (see :func:`nprefgen._threads.blas_threads`)."""

    @functools.wraps(fun)
    def wrapper(*args, n_blas_threads: int | None = 1, **kwargs):
        if n_blas_threads is not None:
            check_int(n_blas_threads, "n_blas_threads", low=1)
        with blas_threads(n_blas_threads):
            return fun(*args, **kwargs)
    return wrapper


# ---------------------------------------------------------------------------------------------
# TEMPORARY second training loop: fit_dequantized redraws the dequantization noise every epoch.
# To be replaced at merge by the shared loop of nprefgen/nn/train.py with a per-epoch hook that
# redraws the noise; keep it small and do not copy it elsewhere.
# ---------------------------------------------------------------------------------------------
@_limit_blas
def fit_dequantized(flow, v_train, v_val, levels: int, *, rng=None, config: FlowConfig = FULL,
                    context_train=None, context_val=None, progress: bool = False) -> dict:
    """Maximum likelihood with fresh dequantization noise every epoch (SPL.14).

    Unlike :meth:`nprefgen.flows.Flow.fit`, which trains on one fixed array, this loop draws new
    noise e for the training images every epoch (a free regulariser on 1,078 images) and stops
    early on a *fixed* validation set (dequantized once): Adam, minibatches, gradient clipping,
    the best weights restored. Returns ``{"train_loss", "val_loss", "best_epoch", "epochs"}`` in
    mean nats per image (logit space). Keyword ``n_blas_threads`` (default 1).
    """
    from tqdm.auto import tqdm

    from nprefgen.nn import Adam, clip_grad_norm

    rng = check_rng(rng)
    v_train = check_array(v_train, "v_train", ndim=2)
    y_val, _ = preprocess(v_val, levels, rng=np.random.default_rng(TEST_NOISE_SEED + 1))
    params = flow.parameters()
    opt = Adam(params, lr=config.lr)
    history = {"train_loss": [], "val_loss": [], "best_epoch": 0, "epochs": 0}
    best, best_state, since = np.inf, flow.state_dict(), 0
    n = v_train.shape[0]
    for epoch in tqdm(range(config.epochs), desc=type(flow).__name__, disable=not progress, leave=False):
        y_train, _ = preprocess(v_train, levels, rng=rng)
        perm = rng.permutation(n)
        total = 0.0
        for s in range(0, n, config.batch_size):
            idx = perm[s:s + config.batch_size]
            flow.zero_grad()
            c = None if context_train is None else context_train[idx]
            weights = np.full(idx.size, -1.0 / idx.size)          # mean NLL (FLOW.4)
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


def score(name, log_q, log_jac, n_dims, levels, n_params, seconds, epochs) -> ModelScore:
    """One table row from logit-space log-densities ``log_q`` and the Jacobian terms (SPL.15)."""
    lp = pixel_log_likelihood(log_q, log_jac)
    return ModelScore(name, int(n_params), float(np.mean(lp)), float(np.std(lp) / np.sqrt(lp.size)),
                      pixel_bits_per_dim(float(np.mean(lp)), n_dims, levels), float(seconds),
                      int(epochs))


def pixel_bits_per_dim(log_p_pixels: float, n_dims: int, levels: int) -> float:
    """(SPL.16) -log p / (D ln 2) for a log-density in pixel units (SPL.15): the density on
    [0, 1)^D is log p + D log L, whose :func:`bits_per_dim` (FLOW.22) this is."""
    return float(bits_per_dim(log_p_pixels + n_dims * np.log(levels), n_dims, levels))


@dataclass
class UnconditionalResult:
    data: ImageData
    scores: list
    samples: dict             # model name -> (n, D) integer pixel images
    models: dict              # model name -> fitted model
    histories: dict           # model name -> training history


@_limit_blas
def run_unconditional(data: ImageData | None = None, *, rng=None,
                      config: FlowConfig = FULL, models=MODELS, n_samples: int = 32,
                      progress: bool = False) -> UnconditionalResult:
    """Fit each model of ``models`` to the training images and score the test images.

    data : ImageData (default: the bundled digits); models : subset of
    ("gaussian", "realnvp", "maf", "spline"). Training noise is drawn from ``rng`` afresh every
    epoch; all models are scored on one fixed dequantization of the test set (SPL.14).
    Samples: ``n_samples`` per model, mapped back to integer pixels. Keyword ``n_blas_threads``
    (default 1).
    """
    rng = check_rng(rng)
    data = load_image_data() if data is None else data
    for m in models:
        check_choice(m, "models", MODELS)
    y_test, jac_test = preprocess(data.test, data.levels,
                                  rng=np.random.default_rng(TEST_NOISE_SEED))
    scores, samples, fitted, histories = [], {}, {}, {}
    for name in models:
        t0 = time.perf_counter()
        if name == "gaussian":
            y_train, _ = preprocess(data.train, data.levels, rng=rng)
            model = GaussianDensity().fit(y_train)
            n_params, epochs, history = model.num_parameters(), 0, None
        else:
            model = digits_flow(name, data.dim, rng=rng, config=config, side=data.side)
            history = fit_dequantized(model, data.train, data.val, data.levels, rng=rng,
                                      config=config, progress=progress)
            n_params, epochs = model.num_parameters(), history["epochs"]
        seconds = time.perf_counter() - t0
        scores.append(score(name, model.log_prob(y_test), jac_test, data.dim, data.levels, n_params,
                            seconds,
                             epochs))
        samples[name] = logit_to_pixels(model.sample(n_samples, rng=rng), data.levels, LAMBDA)
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
def run_conditional(data: ImageData | None = None, *, rng=None, kind: str = "spline",
                    config: FlowConfig = FULL, centre_size: int = 2, centres=None,
                    n_centres: int = 5, n_per_centre: int = 8, progress: bool = False) -> ConditionalResult:
    """p(pixels | central pixels): a conditional flow on the other pixels, the central
    ``centre_size x centre_size`` block (as v / (L - 1), no noise) as its context.

    Scores on the test images (pixel units, per image over the modelled pixels): the Gaussian
    p(rest) ignoring the centre, the conditional Gaussian p(rest | centre) (SPL.18) and the flow.
    Samples are drawn at ``centres`` ((k, C) integers; default: all zeros, then the non-zero
    centres of ``n_centres - 1`` random test images).
    """
    rng = check_rng(rng)
    data = load_image_data() if data is None else data
    c_idx = central_indices(data.side, centre_size)
    rest = np.setdiff1d(np.arange(data.dim), c_idx)
    scale = float(data.levels - 1)

    def split(v):
        return v[:, rest], v[:, c_idx] / scale

    (v_tr, c_tr), (v_va, c_va), (v_te, c_te) = split(data.train), split(data.val), split(data.test)
    y_test, jac_test = preprocess(v_te, data.levels, rng=np.random.default_rng(TEST_NOISE_SEED))
    y_train, _ = preprocess(v_tr, data.levels, rng=rng)
    d = rest.size
    scores = []
    t0 = time.perf_counter()
    g = GaussianDensity().fit(y_train)
    scores.append(score("gaussian p(rest)", g.log_prob(y_test), jac_test, d, data.levels, g.num_parameters(),
                         time.perf_counter() - t0, 0))
    t0 = time.perf_counter()
    gc = GaussianDensity().fit(y_train, c_tr)
    scores.append(score("gaussian p(rest | centre)", gc.log_prob(y_test, c_te), jac_test, d,
                        data.levels, gc.num_parameters(), time.perf_counter() - t0, 0))
    t0 = time.perf_counter()
    flow = digits_flow(kind, d, rng=rng, context_dim=c_idx.size, config=config)
    flow.standardize_context(c_tr)
    history = fit_dequantized(flow, v_tr, v_va, data.levels, rng=rng, config=config,
                              context_train=c_tr, context_val=c_va, progress=progress)
    scores.append(score(f"{kind} flow p(rest | centre)", flow.log_prob(y_test, c_te), jac_test, d,
                        data.levels,
                         flow.num_parameters(), time.perf_counter() - t0, history["epochs"]))
    if centres is None:
        nonzero = np.flatnonzero(np.any(data.test[:, c_idx] > 0, axis=1))
        picks = rng.choice(nonzero, min(max(n_centres - 1, 0), nonzero.size), replace=False)
        centres = np.concatenate([np.zeros((1, c_idx.size)), data.test[picks][:, c_idx]])
    centres = check_array(centres, "centres", shape=(None, c_idx.size), dtype=np.float64)
    n_per_centre = check_int(n_per_centre, "n_per_centre", low=1)
    images = np.empty((centres.shape[0], n_per_centre, data.dim))
    for k, centre in enumerate(centres):
        y = flow.sample(n_per_centre, centre / scale, rng=rng)
        images[k][:, rest] = logit_to_pixels(y, data.levels, LAMBDA)
        images[k][:, c_idx] = centre
    return ConditionalResult(data, c_idx, rest, scores, centres, images, flow, history)


def score_rows(scores) -> list[list]:
    """Table rows: model, parameters, test nats/image (+- se), bits/dim, epochs, seconds."""
    return [[s.name, s.n_params, f"{s.test_nats:.2f} +- {s.test_se:.2f}", s.bits_per_dim, s.epochs,
             s.seconds] for s in scores]


SCORE_HEADER = ["model", "parameters", "test log-lik. (nats/image)", "bits/dim", "epochs", "seconds"]
