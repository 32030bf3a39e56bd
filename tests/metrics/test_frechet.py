"""The Frechet distance on the digits (derivations/gan.md, GAN.13): the closed form for Gaussians,
a set's distance to itself, growth with added noise, the floor, and the bundled classifier
weights regenerated bit for bit by their script."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.data import load_digits
from nprefgen.data._make_frechet_classifier import OUT, train_weights
from nprefgen.metrics.frechet import (
    digits_features, feature_moments, frechet_distance, frechet_floor, frechet_from_moments,
)

EPS = np.finfo(np.float64).eps


def test_closed_form_for_commuting_gaussians(rng):
    """(GAN.13) with diagonal covariances the distance is ||mu_a - mu_b||^2 +
    sum_j (sqrt(a_j) - sqrt(b_j))^2 (in 1-D: (m_a - m_b)^2 + (s_a - s_b)^2, W2 squared)."""
    d = 64
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    a, b = rng.uniform(0.1, 2.0, d), rng.uniform(0.1, 2.0, d)
    want = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_from_moments(mu_a, np.diag(a), mu_b, np.diag(b))
    assert got == pytest.approx(want, rel=1e-12)


def test_closed_form_for_rotated_gaussians(rng):
    """(GAN.13) non-commuting covariances: rotating both Gaussians by the same orthogonal Q
    leaves the distance unchanged, so a rotated diagonal pair has the diagonal pair's distance;
    and it agrees with scipy.linalg.sqrtm's route on a well-conditioned pair."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    d = 10
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a, b = rng.uniform(0.1, 2.0, d), rng.uniform(0.1, 2.0, d)
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    want = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_from_moments(q @ mu_a, q @ np.diag(a) @ q.T, q @ mu_b, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(want, rel=1e-10)
    # a genuinely non-commuting pair: S_b = R diag(b) R^T with an unrelated rotation R
    r, _ = np.linalg.qr(rng.standard_normal((d, d)))
    sa, sb = q @ np.diag(a) @ q.T, r @ np.diag(b) @ r.T
    ref = (np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb)
           - 2.0 * np.trace(scipy_linalg.sqrtm(sa @ sb)).real)
    assert frechet_from_moments(mu_a, sa, mu_b, sb) == pytest.approx(ref, rel=1e-9)


def test_rank_deficient_covariances_stay_real(rng):
    """Sample covariances of fewer samples than dimensions are singular: the eigendecomposition
    route returns a finite real distance >= 0, and the distance of the set to itself is ~0."""
    f = rng.standard_normal((10, 30))
    mu, cov = f.mean(axis=0), np.cov(f, rowvar=False)
    assert np.linalg.matrix_rank(cov) == 9
    d0 = frechet_from_moments(mu, cov, mu, cov)
    # round-off: the clipped eigenvalues of cov^2 are O(eps ||cov||^2), their roots
    # O(sqrt(eps) ||cov||), and 2 d of them enter the trace
    assert 0.0 <= d0 <= 2 * 30 * np.sqrt(EPS) * np.linalg.eigvalsh(cov).max()


def test_distance_to_itself_is_zero():
    """(GAN.13) a set against itself: 0 up to the round-off bound 2 d sqrt(eps) lambda_max
    (the square roots of eigenvalues that should be 0)."""
    x = load_digits("test")[0]
    lam = np.linalg.eigvalsh(feature_moments(x)[1]).max()
    assert frechet_distance(x, x) <= 2 * 64 * np.sqrt(EPS) * lam


def test_grows_with_added_noise(rng):
    """Gaussian pixel noise of growing scale (clipped to [0, 1]) gives a strictly growing
    distance to the train split, every step well above the floor's scale."""
    xs, xt = load_digits("test")[0], load_digits("train")[0]
    noise = rng.standard_normal(xs.shape)
    d = [frechet_distance(np.clip(xs + s * noise, 0.0, 1.0), xt) for s in (0.0, 0.1, 0.2, 0.4)]
    assert d[0] == pytest.approx(frechet_floor(), rel=1e-12)      # the stored floor is this
    assert all(b > 1.5 * a for a, b in zip(d, d[1:])), d


def test_floor_and_real_splits():
    """The floor (test vs train) is of the size of the other real-vs-real distances (val vs
    train), and far below a set of uniform noise images or the mean image repeated."""
    xt = load_digits("train")[0]
    floor = frechet_floor()
    val = frechet_distance(load_digits("val")[0], xt)
    assert 0.5 < val / floor < 2.0
    noise = np.random.default_rng(0).uniform(size=(360, 64))
    assert frechet_distance(noise, xt) > 50 * floor


def test_features_shape_and_bad_input():
    f = digits_features(load_digits("test")[0][:5])
    assert f.shape == (5, 64) and np.all(np.abs(f) <= 1.0)        # tanh features
    with pytest.raises(ValueError, match="samples_a"):
        frechet_distance(np.zeros((1, 64)), np.zeros((5, 64)))
    with pytest.raises(ValueError, match="samples_b"):
        frechet_distance(np.zeros((5, 64)), np.zeros((5, 63)))
    with pytest.raises(ValueError, match="cov_a"):
        frechet_from_moments(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="cov_b"):
        frechet_from_moments(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 2.0], [0, 1]]))


@pytest.mark.slow
def test_bundled_weights_regenerate_bit_identically():
    """Re-running the training script (about 6 s of CPU) reproduces every shipped array bit
    for bit, and the classifier reaches its recorded test accuracy."""
    net, acc = train_weights()
    with np.load(OUT, allow_pickle=False) as f:
        shipped = {k: f[k] for k in f.files}
        for name, p, _ in net.named_parameters():
            assert np.array_equal(shipped[name], p), name
        assert acc["test_accuracy"] == float(shipped["__meta__.test_accuracy"])
        assert acc["floor"] == float(shipped["__meta__.floor"])
    assert acc["test_accuracy"] > 0.95
