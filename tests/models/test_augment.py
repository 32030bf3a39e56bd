"""Augmentations (derivations/representation.md, REP.10-REP.11)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nprefgen.models.augment import (
    Augment, adjust_brightness_contrast, crop_maps, gaussian_noise, random_brightness_contrast,
    random_flip, random_resized_crop, random_rotation, random_zoom, rotate, rotation_matrices,
    sample_crop_boxes, warp_affine, zoom,
)
from nprefgen.testing.strategies import seeds


def _affine_image(n, c, h, w, coef):
    """f(r, col) = a r + b col + e, per image and channel: coef (n, c, 3)."""
    r, col = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    return coef[..., 0, None, None] * r + coef[..., 1, None, None] * col + coef[..., 2, None, None]


@given(seed=seeds(), n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(4, 12), w=st.integers(4, 12))
def test_bilinear_reproduces_affine_functions(seed, n, c, h, w):
    """(REP.10) bilinear interpolation is exact on functions affine in (row, col): wherever the
    source point q = m + A (p - m) + t and its 2x2 neighbourhood lie inside the image, the
    warped image equals f(q). One map per image, drawn at random."""
    rng = np.random.default_rng(seed)
    coef = rng.standard_normal((n, c, 3))
    x = _affine_image(n, c, h, w, coef)
    A = np.eye(2) + 0.3 * rng.standard_normal((n, 2, 2))
    t = rng.uniform(-1, 1, size=(n, 2))
    y = warp_affine(x, A, t)
    m = np.array([(h - 1) / 2, (w - 1) / 2])
    r, col = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    p = np.stack([r - m[0], col - m[1]], -1)                       # (h, w, 2)
    q = np.einsum("kij,rcj->krci", A, p) + (m + t)[:, None, None]  # (n, h, w, 2)
    inside = (q[..., 0] >= 0) & (q[..., 0] <= h - 1) & (q[..., 1] >= 0) & (q[..., 1] <= w - 1)
    inside &= (np.floor(q[..., 0]) + 1 <= h - 1) | (q[..., 0] == np.floor(q[..., 0]))
    inside &= (np.floor(q[..., 1]) + 1 <= w - 1) | (q[..., 1] == np.floor(q[..., 1]))
    want = coef[..., 0, None, None] * q[:, None, ..., 0] + coef[..., 1, None, None] * q[:, None, ..., 1] \
        + coef[..., 2, None, None]
    mask = np.broadcast_to(inside[:, None], y.shape)
    np.testing.assert_allclose(y[mask], want[mask], rtol=1e-12, atol=1e-12)
    # the identity map returns the input exactly
    np.testing.assert_array_equal(warp_affine(x, np.eye(2), np.zeros(2)), x)


def test_rotation_by_right_angles_is_rot90(rng):
    """(REP.10) with A(phi) = [[cos, sin], [-sin, cos]], 90/180/270 degrees are np.rot90,
    counter-clockwise, for square images; 180 degrees also for rectangular ones."""
    x = rng.standard_normal((3, 2, 7, 7))
    for k in (1, 2, 3):
        np.testing.assert_allclose(rotate(x, 90.0 * k), np.rot90(x, k, axes=(2, 3)), atol=1e-12)
    y = rng.standard_normal((2, 6, 9))
    np.testing.assert_allclose(rotate(y, 180.0), y[:, ::-1, ::-1], atol=1e-12)
    np.testing.assert_array_equal(rotate(y, 0.0), y)
    np.testing.assert_allclose(rotation_matrices([30.0]) @ rotation_matrices([-30.0]), np.eye(2)[None],
                               atol=1e-15)


def test_crop_maps():
    """(REP.10) the full box is the identity; a box of half the size at the top-left resamples
    that quadrant: output edge coordinate u maps to b + u * b_h / h."""
    h, w = 8, 6
    A, t = crop_maps(np.array([[0.0, 0.0, h, w]]), h, w)
    np.testing.assert_allclose(A[0], np.eye(2))
    np.testing.assert_allclose(t[0], 0.0)
    coef = np.array([[[1.5, -0.5, 2.0]]])
    x = _affine_image(1, 1, h, w, coef)
    box = np.array([[2.0, 1.0, 4.0, 3.0]])                 # top, left, height, width
    y = warp_affine(x, *crop_maps(box, h, w))
    rows = 2.0 + (np.arange(h) + 0.5) * 4.0 / h - 0.5       # pixel centres of the box
    cols = 1.0 + (np.arange(w) + 0.5) * 3.0 / w - 0.5
    want = 1.5 * rows[:, None] - 0.5 * cols[None, :] + 2.0
    np.testing.assert_allclose(y[0, 0], want, atol=1e-12)


def test_zoom_and_crop_sampling(rng):
    """Zoom by 1 is the identity and zoom keeps the centre pixel of an odd image; sampled crop
    boxes lie inside the image and have area fractions in the requested range (when not
    clipped by the aspect ratio)."""
    x = rng.standard_normal((4, 9, 9))
    np.testing.assert_array_equal(zoom(x, 1.0), x)
    np.testing.assert_allclose(zoom(x, [0.7, 1.3, 2.0, 1.1])[:, 4, 4], x[:, 4, 4], atol=1e-12)
    b = sample_crop_boxes(500, 8, 8, rng=rng, scale=(0.5, 0.9), ratio=(1.0, 1.0))
    assert np.all(b[:, 0] >= 0) and np.all(b[:, 0] + b[:, 2] <= 8 + 1e-12)
    assert np.all(b[:, 1] >= 0) and np.all(b[:, 1] + b[:, 3] <= 8 + 1e-12)
    area = b[:, 2] * b[:, 3] / 64
    assert area.min() >= 0.5 - 1e-12 and area.max() <= 0.9 + 1e-12


def test_batch_is_vectorised_per_image(rng):
    """A batch call with per-image parameters equals one call per image."""
    x = rng.standard_normal((5, 2, 8, 8))
    angles = rng.uniform(-40, 40, size=5)
    batch = rotate(x, angles)
    for k in range(5):
        np.testing.assert_allclose(batch[k], rotate(x[k:k + 1], angles[k])[0], rtol=1e-14, atol=1e-14)
    b = rng.uniform(-0.2, 0.2, size=5)
    c = rng.uniform(0.8, 1.2, size=5)
    out = adjust_brightness_contrast(x, b, c)
    for k in range(5):
        np.testing.assert_allclose(out[k], adjust_brightness_contrast(x[k:k + 1], b[k], c[k])[0], rtol=1e-14)


def test_brightness_contrast_formula(rng):
    """(REP.11) x' = mean + c (x - mean) + b: the mean moves by b, the std is multiplied by c."""
    x = rng.uniform(size=(6, 8, 8))
    b = rng.uniform(-0.3, 0.3, size=6)
    c = rng.uniform(0.5, 1.5, size=6)
    y = adjust_brightness_contrast(x, b, c)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), x.mean(axis=(1, 2)) + b, rtol=1e-12)
    np.testing.assert_allclose(y.std(axis=(1, 2)), c * x.std(axis=(1, 2)), rtol=1e-12)
    z = random_brightness_contrast(x, rng=rng, brightness=0.0, contrast=0.0)
    np.testing.assert_allclose(z, x, atol=1e-15)


def test_gaussian_noise_statistics():
    """Mean 0 and standard deviation sigma: n = 64,000 draws give standard errors of
    sigma / sqrt(n) ~ 4e-4 for the mean; 5 standard errors as tolerance."""
    rng = np.random.default_rng(11)
    x = np.full((1000, 64), 0.5)
    sigma = 0.1
    e = gaussian_noise(x, rng=rng, sigma=sigma) - x
    n = e.size
    assert abs(e.mean()) < 5 * sigma / np.sqrt(n)
    assert abs(e.std() - sigma) < 5 * sigma / np.sqrt(2 * n)


def test_flips(rng):
    x = rng.standard_normal((4, 1, 5, 6))
    np.testing.assert_array_equal(random_flip(x, rng=rng, p=1.0), x[..., ::-1])
    np.testing.assert_array_equal(random_flip(x, rng=rng, p=1.0, axis="vertical"), x[..., ::-1, :])
    np.testing.assert_array_equal(random_flip(x, rng=rng, p=0.0), x)
    flipped = random_flip(x[:, 0], rng=np.random.default_rng(0), p=0.5)
    per = [np.array_equal(f, a) or np.array_equal(f, a[:, ::-1]) for f, a in zip(flipped, x[:, 0])]
    assert all(per)


@pytest.mark.parametrize("shape", [(8, 8), (28, 28), (3, 8, 8)])
def test_augment_pipeline(shape):
    """Shapes (flat rows and images), determinism given the seed, range clipping, views differ
    from the input, no flips by default (an asymmetric image never comes back mirrored)."""
    c = 1 if len(shape) == 2 else shape[0]
    h, w = shape[-2:]
    aug = Augment(shape)
    rng = np.random.default_rng(5)
    X = rng.uniform(size=(6, c * h * w))
    a = aug(X, np.random.default_rng(1))
    b = aug(X, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == X.shape and a.min() >= 0 and a.max() <= 1
    assert not np.allclose(a, X)
    imgs = X.reshape((6,) + ((h, w) if c == 1 else (c, h, w)))
    np.testing.assert_array_equal(aug(imgs, np.random.default_rng(1)).reshape(6, -1), a)
    # with only the geometric identity (no rotation, no crop, no photometry) the pipeline is the identity
    ident = Augment(shape, rotation=0.0, crop_scale=None, brightness=0.0, contrast=0.0, noise=0.0)
    np.testing.assert_array_equal(ident(X, rng), X)
    assert not aug.hflip


def test_random_geometric_helpers(rng):
    x = rng.uniform(size=(3, 8, 8))
    assert random_rotation(x, rng=rng, max_degrees=10.0).shape == x.shape
    assert random_zoom(x, rng=rng, factors=(0.9, 1.1)).shape == x.shape
    assert random_resized_crop(x, rng=rng).shape == x.shape
    np.testing.assert_array_equal(random_rotation(x, rng=rng, max_degrees=0.0), x)


def test_augment_bad_inputs(rng):
    x = rng.uniform(size=(2, 8, 8))
    with pytest.raises(ValueError, match="images"):
        rotate(np.zeros(5), 10.0)
    with pytest.raises(ValueError, match="angles_deg"):
        rotate(x, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="A: expected shape"):
        warp_affine(x, np.eye(3), np.zeros(2))
    with pytest.raises(ValueError, match="t: expected shape"):
        warp_affine(x, np.eye(2), np.zeros(3))
    with pytest.raises(ValueError, match="factors"):
        zoom(x, -1.0)
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop(x, rng=rng, scale=(0.9, 0.5))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise(x, rng=rng, sigma=-0.1)
    with pytest.raises(ValueError, match="rng"):
        gaussian_noise(x, rng="3")
    with pytest.raises(ValueError, match="axis"):
        random_flip(x, rng=rng, axis="diagonal")
    with pytest.raises(ValueError, match="image_shape"):
        Augment((1, 2, 3, 4))
    with pytest.raises(ValueError, match="X: expected rows of 64"):
        Augment((8, 8))(np.zeros((2, 63)), rng)
    with pytest.raises(ValueError, match="contrast"):
        Augment((8, 8), contrast=2.0)
