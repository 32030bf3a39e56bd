"""Image augmentations for contrastive learning, batch-vectorised, every draw from ``rng``
(derivations/representation.md, REP.10-REP.11).

All geometric transforms (rotation, zoom, random resized crop) are one affine map of the output
pixel grid into the input image followed by bilinear resampling (:func:`warp_affine`, REP.10),
written in NumPy: each image in the batch gets its own map, and a whole batch is resampled by
fancy indexing at once. Photometric transforms are brightness/contrast (REP.11) and Gaussian
noise. Flips exist but are off by default: a mirrored 2 is not a 2.

Images are ``(n, h, w)`` or ``(n, c, h, w)``; :class:`Augment` also takes flat ``(n, c h w)``
rows (the layout of ``nprefgen.data.load_digits(flatten=True)``). Works for any size, e.g. the
8x8 digits and 28x28 MNIST. Coordinates are (row, column) with pixel centres at integers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nprefgen._validation import check_array, check_finite_result, check_int, check_rng, check_scalar


def _as_nchw(images, name: str = "images") -> tuple[np.ndarray, bool]:
    """(n, h, w) or (n, c, h, w) -> ((n, c, h, w), had_channel_axis)."""
    x = check_array(images, name, ndim=(3, 4))
    if x.ndim == 3:
        return x[:, None], False
    return x, True


def _restore(x: np.ndarray, had_channels: bool) -> np.ndarray:
    return x if had_channels else x[:, 0]


def _per_image(values, n: int, name: str) -> np.ndarray:
    """A scalar or an (n,) array of per-image parameters -> (n,) float64."""
    v = check_array(values, name, ndim=(0, 1))
    if v.ndim == 0:
        return np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got {v.shape}")
    return v


def _check_range(pair, name: str, low: float, high: float | None = None) -> tuple[float, float]:
    if len(pair) != 2:
        raise ValueError(f"{name}: expected a pair (low, high), got {pair!r}")
    a = check_scalar(pair[0], name, low=low, high=high)
    b = check_scalar(pair[1], name, low=low, high=high)
    if a > b:
        raise ValueError(f"{name}: expected low <= high, got {pair!r}")
    return a, b


# -- geometry -----------------------------------------------------------------------------------

def warp_affine(images, A, t, fill: float = 0.0) -> np.ndarray:
    """(REP.10) Resample each image at q = m + A_k (p - m) + t_k, bilinearly.

    For output pixel p = (row, col) of image k, m = ((h-1)/2, (w-1)/2) the image centre, the
    value is the bilinear interpolation of the input at the source point q; neighbours outside
    the image count as ``fill``. A = identity, t = 0 returns the input exactly.

    images: (n, h, w) or (n, c, h, w); A: (n, 2, 2) or (2, 2); t: (n, 2) or (2,) -> same shape
    as images.
    """
    x, had_c = _as_nchw(images)
    n, c, h, w = x.shape
    A = check_array(A, "A", ndim=(2, 3))
    A = np.broadcast_to(A, (n, 2, 2)) if A.shape == (2, 2) else A
    if A.shape != (n, 2, 2):
        raise ValueError(f"A: expected shape (2, 2) or ({n}, 2, 2), got {A.shape}")
    t = check_array(t, "t", ndim=(1, 2))
    t = np.broadcast_to(t, (n, 2)) if t.shape == (2,) else t
    if t.shape != (n, 2):
        raise ValueError(f"t: expected shape (2,) or ({n}, 2), got {t.shape}")
    fill = check_scalar(fill, "fill")

    m = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                             indexing="ij")
    p = np.stack([rows - m[0], cols - m[1]], axis=-1).reshape(-1, 2)     # (h w, 2) centred
    q = p @ A.transpose(0, 2, 1) + (m + t)[:, None, :]                  # (n, h w, 2) source
    r0 = np.floor(q[..., 0])
    c0 = np.floor(q[..., 1])
    fr = q[..., 0] - r0                                                  # (n, h w) in [0, 1)
    fc = q[..., 1] - c0
    r0 = r0.astype(np.int64)
    c0 = c0.astype(np.int64)
    flat = x.reshape(n, c, h * w)
    out = np.zeros((n, c, h * w), dtype=x.dtype)
    k_idx = np.arange(n)[:, None]
    for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                        (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)             # (n, h w)
        lin = np.where(inside, rr * w + cc, 0)
        vals = np.where(inside[:, None, :], flat[k_idx, :, lin].transpose(0, 2, 1), fill)
        out += wgt[:, None, :] * vals
    return _restore(out.reshape(n, c, h, w), had_c)


def rotation_matrices(angles_deg) -> np.ndarray:
    """Source-from-output maps that rotate the content counter-clockwise by ``angles_deg``
    (as ``np.rot90`` does for 90), the A of q = m + A(p - m) fed to
    (REP.10): [[cos, sin], [-sin, cos]] in (row, col)
    coordinates.
    angles_deg: (n,) -> (n, 2, 2)"""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    cos, sin = np.cos(a), np.sin(a)
    return np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)


def rotate(images, angles_deg, fill: float = 0.0) -> np.ndarray:
    """Rotate each image about its centre by its angle (degrees, counter-clockwise).
    images: (n, [c,] h, w); angles_deg: scalar or (n,)."""
    x, _ = _as_nchw(images)
    return warp_affine(images, rotation_matrices(_per_image(angles_deg, x.shape[0], "angles_deg")),
                       np.zeros(2), fill)


def zoom(images, factors, fill: float = 0.0) -> np.ndarray:
    """Scale each image's content about the centre by its factor (> 1 enlarges).
    images: (n, [c,] h, w); factors: scalar or (n,) positive."""
    x, _ = _as_nchw(images)
    f = _per_image(factors, x.shape[0], "factors")
    if np.any(f <= 0):
        raise ValueError(f"factors: expected positive zoom factors, got min {f.min()}")
    A = np.eye(2)[None] / f[:, None, None]
    return warp_affine(images, A, np.zeros(2), fill)


def crop_maps(boxes, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps that resample the crop box (top, left, height, width), in pixel-edge
    coordinates, to the full h x w grid: the (A, t) of q = m + A(p - m) + t fed to (REP.10), with
    A = diag(height / h, width / w) and t = box centre minus image centre.
    boxes: (n, 4) -> A: (n, 2, 2), t: (n, 2)."""
    b = check_array(boxes, "boxes", shape=(None, 4))
    A = np.zeros((b.shape[0], 2, 2))
    A[:, 0, 0] = b[:, 2] / h
    A[:, 1, 1] = b[:, 3] / w
    t = np.stack([b[:, 0] + b[:, 2] / 2 - h / 2, b[:, 1] + b[:, 3] / 2 - w / 2], axis=-1)
    return A, t


def sample_crop_boxes(n: int, h: int, w: int, *, rng=None,
                      scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)) -> np.ndarray:
    """Random resized crop boxes as in Inception / SimCLR: area fraction ~ U(scale), aspect
    ratio log-uniform in ``ratio``, position uniform inside the image. -> (n, 4) boxes
    (top, left, height, width), continuous."""
    rng = check_rng(rng)
    n = check_int(n, "n", low=0)
    s = rng.uniform(scale[0], scale[1], size=n)
    r = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), size=n))
    bh = np.minimum(h * np.sqrt(s / r), h)
    bw = np.minimum(w * np.sqrt(s * r), w)
    top = rng.uniform(0.0, 1.0, size=n) * (h - bh)
    left = rng.uniform(0.0, 1.0, size=n) * (w - bw)
    return np.stack([top, left, bh, bw], axis=-1)


def random_resized_crop(images, *, rng=None, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3),
                        fill: float = 0.0) -> np.ndarray:
    """Crop a random box from each image and resample it to the full size (bilinear)."""
    x, _ = _as_nchw(images)
    scale = _check_range(scale, "scale", 0.0, 1.0)
    ratio = _check_range(ratio, "ratio", 1e-6)
    A, t = crop_maps(sample_crop_boxes(x.shape[0], x.shape[2], x.shape[3], rng=rng, scale=scale,
                                       ratio=ratio),
                     x.shape[2], x.shape[3])
    return warp_affine(images, A, t, fill)


def random_rotation(images, *, rng=None, max_degrees: float = 15.0,
                    fill: float = 0.0) -> np.ndarray:
    """Rotate each image by an angle ~ U(-max_degrees, max_degrees)."""
    x, _ = _as_nchw(images)
    rng = check_rng(rng)
    max_degrees = check_scalar(max_degrees, "max_degrees", low=0.0, high=180.0)
    return rotate(images, rng.uniform(-max_degrees, max_degrees, size=x.shape[0]), fill)


def random_zoom(images, *, rng=None, factors=(0.9, 1.1), fill: float = 0.0) -> np.ndarray:
    """Zoom each image by a factor ~ U(factors)."""
    x, _ = _as_nchw(images)
    rng = check_rng(rng)
    lo, hi = _check_range(factors, "factors", 1e-6)
    return zoom(images, rng.uniform(lo, hi, size=x.shape[0]), fill)


# -- photometry ---------------------------------------------------------------------------------

def adjust_brightness_contrast(images, brightness, contrast) -> np.ndarray:
    """(REP.11) x' = mean_k + contrast_k (x - mean_k) + brightness_k per image k, mean_k its
    mean pixel value. images: (n, ...); brightness, contrast: scalar or (n,)."""
    x = check_array(images, "images", ndim=(2, 3, 4))
    n = x.shape[0]
    b = _per_image(brightness, n, "brightness")
    c = _per_image(contrast, n, "contrast")
    axes = tuple(range(1, x.ndim))
    shape = (n,) + (1,) * (x.ndim - 1)
    with np.errstate(over="ignore", invalid="ignore"):                     # checked next
        mean = x.mean(axis=axes, keepdims=True)
        out = mean + c.reshape(shape) * (x - mean) + b.reshape(shape)
    return check_finite_result(out, "images", "adjusted images", x)


def random_brightness_contrast(images, *, rng=None, brightness: float = 0.2,
                               contrast: float = 0.2) -> np.ndarray:
    """(REP.11) with brightness ~ U(-brightness, brightness), contrast ~ U(1 - c, 1 + c)."""
    x = check_array(images, "images", ndim=(2, 3, 4))
    rng = check_rng(rng)
    brightness = check_scalar(brightness, "brightness", low=0.0)
    contrast = check_scalar(contrast, "contrast", low=0.0, high=1.0)
    n = x.shape[0]
    b = rng.uniform(-brightness, brightness, size=n)
    c = rng.uniform(1.0 - contrast, 1.0 + contrast, size=n)
    return adjust_brightness_contrast(x, b, c)


def gaussian_noise(images, *, rng=None, sigma: float = 0.05) -> np.ndarray:
    """x + sigma * standard normal noise, independent per pixel."""
    x = check_array(images, "images", ndim=(2, 3, 4))
    rng = check_rng(rng)
    sigma = check_scalar(sigma, "sigma", low=0.0)
    return x + sigma * rng.standard_normal(x.shape)


def random_flip(images, *, rng=None, p: float = 0.5, axis: str = "horizontal") -> np.ndarray:
    """Mirror each image with probability p (left-right for "horizontal", up-down for
    "vertical"). For natural images, not for digits or text."""
    x, had_c = _as_nchw(images)
    rng = check_rng(rng)
    p = check_scalar(p, "p", low=0.0, high=1.0)
    if axis not in ("horizontal", "vertical"):
        raise ValueError(f"axis: expected 'horizontal' or 'vertical', got {axis!r}")
    flip = rng.uniform(size=x.shape[0]) < p
    out = x.copy()
    ax = 3 if axis == "horizontal" else 2
    out[flip] = np.flip(x[flip], axis=ax)
    return _restore(out, had_c)


# -- the pipeline -------------------------------------------------------------------------------

class Augment:
    """A random view of each image: one affine warp (random resized crop composed with a random
    rotation), optional flip, brightness/contrast, Gaussian noise, clipping.

    Parameters
    ----------
    image_shape : (h, w) or (c, h, w)
        Shape of one image; inputs may be flat rows (n, c h w) or images (n, [c,] h, w).
    rotation : float, maximum absolute angle in degrees (0 turns it off)
    crop_scale : (low, high) area fraction of the random resized crop, or None (no crop)
    crop_ratio : (low, high) aspect-ratio range of the crop
    brightness, contrast : floats for :func:`random_brightness_contrast` (0, 0 turns it off)
    noise : float, standard deviation of the additive Gaussian noise
    hflip : bool, random left-right flips (p = 0.5); off by default (digits)
    clip : (low, high) or None, the value range enforced at the end (data in [0, 1] by default)

    ``aug(X, rng)`` returns an array of X's shape. ``rng`` is None, an int seed or a Generator
    (SPEC 7), and may be passed positionally: :meth:`SimCLR.fit` calls any ``augment(x, rng)``
    callable. Defaults suit the 8x8 digits and MNIST.
    """

    def __init__(self, image_shape: Sequence[int], *, rotation: float = 15.0,
                 crop_scale=(0.6, 1.0), crop_ratio=(3 / 4, 4 / 3), brightness: float = 0.2,
                 contrast: float = 0.2, noise: float = 0.05, hflip: bool = False,
                 clip=(0.0, 1.0)) -> None:
        shape = tuple(image_shape)
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3:
            raise ValueError(f"image_shape: expected (h, w) or (c, h, w), got {tuple(image_shape)}")
        self.image_shape = tuple(check_int(s, "image_shape", low=1) for s in shape)
        self.rotation = check_scalar(rotation, "rotation", low=0.0, high=180.0)
        self.crop_scale = None if crop_scale is None else _check_range(crop_scale, "crop_scale", 0.0, 1.0)
        self.crop_ratio = _check_range(crop_ratio, "crop_ratio", 1e-6)
        self.brightness = check_scalar(brightness, "brightness", low=0.0)
        self.contrast = check_scalar(contrast, "contrast", low=0.0, high=1.0)
        self.noise = check_scalar(noise, "noise", low=0.0)
        self.hflip = bool(hflip)
        self.clip = None if clip is None else _check_range(clip, "clip", -np.inf)

    def __call__(self, X, rng=None) -> np.ndarray:
        """X: (n, c h w) flat rows or (n, [c,] h, w) images -> a random view, same shape."""
        rng = check_rng(rng)
        X = check_array(X, "X", ndim=(2, 3, 4))
        c, h, w = self.image_shape
        n = X.shape[0]
        if X.shape[1:] not in ((c * h * w,), (h, w), (c, h, w)) or (X.ndim == 3 and c != 1):
            raise ValueError(f"X: expected rows of {c * h * w} values or images of shape "
                             f"{self.image_shape}, got shape {X.shape}")
        x = X.reshape(n, c, h, w)
        A = rotation_matrices(rng.uniform(-self.rotation, self.rotation, size=n))   # (n, 2, 2)
        t = np.zeros((n, 2))
        if self.crop_scale is not None:
            A_crop, t = crop_maps(sample_crop_boxes(n, h, w, rng=rng, scale=self.crop_scale,
                                                       ratio=self.crop_ratio), h, w)
            A = A_crop @ A                     # rotate inside the crop: q = m + A_crop R (p - m) + t
        x = warp_affine(x, A, t)
        if self.hflip:
            x = random_flip(x, rng=rng)
        if self.brightness or self.contrast:
            x = random_brightness_contrast(x, rng=rng, brightness=self.brightness,
                                           contrast=self.contrast)
        if self.noise:
            x = gaussian_noise(x, rng=rng, sigma=self.noise)
        if self.clip is not None:
            x = np.clip(x, *self.clip)
        return x.reshape(X.shape)

    def __repr__(self) -> str:
        return (f"Augment(image_shape={self.image_shape}, rotation={self.rotation}, "
                f"crop_scale={self.crop_scale}, brightness={self.brightness}, "
                f"contrast={self.contrast}, noise={self.noise}, hflip={self.hflip})")
