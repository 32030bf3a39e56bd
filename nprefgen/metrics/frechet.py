"""A Frechet distance on the bundled 8x8 digits: one yardstick for every image model (derivations/
gan.md, GAN.13).

Samples are mapped to the 64 tanh features of the second hidden layer of a small digits
classifier (an nprefgen MLP 64 -> 128 -> 64 -> 10, test accuracy 0.961), trained once,
deterministically, by ``nprefgen/data/_make_frechet_classifier.py`` and shipped as
``nprefgen/data/frechet_digits_mlp.npz``. Each sample set is summarised by the mean and covariance
of its features and the two Gaussians are compared by the squared Frechet (2-Wasserstein)
distance, the FID recipe of Heusel et al. (2017) on a scale that fits the 8x8 digits::

    fd = frechet_distance(vae.sample(1000, rng=0), load_digits("test")[0])
    floor = frechet_floor()        # the test split against the train split

The digits' own sampling noise sets the floor: two finite samples of the same distribution have
a positive distance, so a model is judged by how far above :func:`frechet_floor` it lands, not by
its distance to zero. Sample sizes matter (the estimate is biased upwards for small n); compare
models at the same n.
"""
from __future__ import annotations

import functools
import pathlib

import numpy as np

from nprefgen._validation import check_array

N_FEATURES = 64
WEIGHTS_PATH = pathlib.Path(__file__).resolve().parents[1] / "data" / "frechet_digits_mlp.npz"
ARCH = {"in_features": 64, "hidden": (128, 64), "out_features": 10, "activation": "tanh"}


def build_classifier(*, rng=None):
    """The untrained classifier, ``Sequential`` (n, 64) -> (n, 10) logits (``ARCH``)."""
    from nprefgen.nn import MLP

    return MLP(ARCH["in_features"], list(ARCH["hidden"]), ARCH["out_features"], rng=rng,
               activation=ARCH["activation"])


@functools.lru_cache(maxsize=1)
def _bundled():
    """(classifier with the shipped weights, the file's metadata)."""
    from nprefgen.nn import load_npz

    net = build_classifier(rng=0)                  # weights replaced by the file's
    meta = load_npz(WEIGHTS_PATH, net)
    return net, meta


def digits_features(x, *, classifier=None) -> np.ndarray:
    """The classifier's 64 second-hidden-layer features. x: (n, 64) digits with pixels in [0, 1]
    (``load_digits(scale="unit")``; samples of a model, clipped or not) -> (n, 64).
    ``classifier``: another network built by :func:`build_classifier` (default: the bundled)."""
    x = check_array(x, "x", shape=(None, 64), dtype=np.float64)
    net = _bundled()[0] if classifier is None else classifier
    h = x
    for layer in net.layers[:-1]:                   # every layer but the logits
        h = layer.forward(h)[0]
    return h


def frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    """(GAN.13) squared Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b):
    ||mu_a - mu_b||^2 + tr(cov_a) + tr(cov_b) - 2 tr((cov_a^{1/2} cov_b cov_a^{1/2})^{1/2}).

    mu: (d,), cov: (d, d) symmetric positive semi-definite -> float >= 0.

    The matrix square root is taken by two symmetric eigendecompositions (numpy.linalg.eigh):
    cov_a^{1/2} from cov_a's eigenpairs, then the eigenvalues of the symmetric PSD matrix
    cov_a^{1/2} cov_b cov_a^{1/2}, which equal those of cov_a cov_b (similar matrices). Unlike
    scipy.linalg.sqrtm on the non-symmetric product cov_a cov_b, this never produces complex
    round-off for rank-deficient covariances (fewer samples than features, dead features), and
    eigenvalues that round-off pushes below zero are clipped at 0.
    """
    mu_a = check_array(mu_a, "mu_a", ndim=1, dtype=np.float64)
    d = mu_a.shape[0]
    mu_b = check_array(mu_b, "mu_b", shape=(d,), dtype=np.float64)
    cov_a = check_array(cov_a, "cov_a", shape=(d, d), dtype=np.float64)
    cov_b = check_array(cov_b, "cov_b", shape=(d, d), dtype=np.float64)
    for name, c in (("cov_a", cov_a), ("cov_b", cov_b)):
        if not np.allclose(c, c.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(c).max()))):
            raise ValueError(f"{name}: expected a symmetric covariance matrix, got an asymmetric "
                             f"one (max |C - C^T| = {float(np.abs(c - c.T).max()):.3g})")
    lam, v = np.linalg.eigh(0.5 * (cov_a + cov_a.T))
    if lam.min() < -1e-8 * max(1.0, float(lam.max())):
        raise ValueError(f"cov_a: expected a positive semi-definite matrix, got smallest "
                         f"eigenvalue {lam.min():.3g}")
    root_a = (v * np.sqrt(np.clip(lam, 0.0, None))) @ v.T
    m = root_a @ (0.5 * (cov_b + cov_b.T)) @ root_a
    ev = np.linalg.eigvalsh(0.5 * (m + m.T))
    if ev.min() < -1e-8 * max(1.0, float(ev.max())):
        raise ValueError(f"cov_b: expected a positive semi-definite matrix, got "
                         f"cov_a^1/2 cov_b cov_a^1/2 with eigenvalue {ev.min():.3g}")
    diff = mu_a - mu_b
    d2 = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b)
               - 2.0 * np.sum(np.sqrt(np.clip(ev, 0.0, None))))
    return max(d2, 0.0)


def feature_moments(x, *, classifier=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (64,) and covariance (64, 64) (ddof 1) of the features of x: (n, 64), n >= 2."""
    x = check_array(x, "x", shape=(None, 64), dtype=np.float64)
    if x.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 samples for a covariance, got {x.shape[0]}")
    f = digits_features(x, classifier=classifier)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(samples_a, samples_b) -> float:
    """(GAN.13) squared Frechet distance between two sets of 8x8 digits in the classifier's
    feature space. samples_a: (n, 64), samples_b: (m, 64), n, m >= 2, pixels on the [0, 1] scale
    -> float >= 0 (0 for identical sets up to round-off)."""
    a = check_array(samples_a, "samples_a", shape=(None, 64), dtype=np.float64)
    b = check_array(samples_b, "samples_b", shape=(None, 64), dtype=np.float64)
    for name, s in (("samples_a", a), ("samples_b", b)):
        if s.shape[0] < 2:
            raise ValueError(f"{name}: expected at least 2 samples, got {s.shape[0]}")
    return frechet_from_moments(*feature_moments(a), *feature_moments(b))


def frechet_floor() -> float:
    """The digits' own distance: the test split (360 images) against the train split (1,078),
    computed by the script that trained the classifier and stored with its weights (this module
    sits below nprefgen.data and does not load the digits itself). A model's samples (compared
    with the train split at a similar n) cannot be expected below it."""
    return float(_bundled()[1]["floor"])
