"""im2col and its adjoint col2im: convolution as a matrix product (derivations/nn.md, NN.21-NN.24).

For an image batch x: (n, c, h, w), a kernel (kh, kw), stride (sh, sw) and zero padding (ph, pw),

    (NN.21)  oh = floor((h + 2 ph - kh) / sh) + 1,   ow = floor((w + 2 pw - kw) / sw) + 1,

im2col gathers every receptive field into one row:

    (NN.22)  X[(b, i, j), (ch, p, q)] = x[b, ch, i sh + p - ph, j sw + q - pw]   (0 outside the image)

with rows ordered (b, i, j) and columns ordered (ch, p, q), so that the column index matches a
PyTorch weight ``(out, c, kh, kw)`` reshaped to ``(out, c kh kw)``. col2im is the adjoint linear
map: it scatters each row back into its receptive field and *sums* where fields overlap,

    (NN.23)  col2im(C)[b, ch, r, s] = sum over (i, j, p, q) with i sh + p - ph = r, j sw + q - pw = s
                                      of C[(b, i, j), (ch, p, q)],

so that <im2col(x), C> = <x, col2im(C)> for every x and C (NN.24). Entries that fall in the padding
are dropped. col2im is therefore the input gradient of im2col, not its inverse.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int, check_pair, check_shape
from nprefgen.kernels.jit import kernel


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """(NN.21) Number of kernel positions along one axis: floor((size + 2 p - k) / s) + 1."""
    size, kernel_size = check_int(size, "size", low=1), check_int(kernel_size, "kernel_size", low=1)
    stride, padding = check_int(stride, "stride", low=1), check_int(padding, "padding", low=0)
    return (size + 2 * padding - kernel_size) // stride + 1


def _geometry(x_shape, kernel_size, stride, padding, shape_name="x"):
    """Validated geometry ``(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)`` (NN.21)."""
    n, c, h, w = check_shape(x_shape, shape_name, ndim=4, low=1)
    kh, kw = check_pair(kernel_size, "kernel_size", low=1)
    sh, sw = check_pair(stride, "stride", low=1)
    ph, pw = check_pair(padding, "padding", low=0)
    oh = conv_output_size(h, kh, sh, ph)
    ow = conv_output_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel_size: expected a kernel that fits the padded input "
                         f"({h + 2 * ph} x {w + 2 * pw}), got {kh} x {kw}")
    return n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow


def _check_x(x, kernel_size, stride, padding):
    """x: (n, c, h, w) finite, and its geometry; the one check both im2col twins run."""
    x = check_array(x, "x", ndim=4)
    return x, _geometry(x.shape, kernel_size, stride, padding)


def _check_cols(cols, x_shape, kernel_size, stride, padding):
    """cols: (n oh ow, c kh kw) finite, for images of shape x_shape; both col2im twins run it."""
    g = _geometry(x_shape, kernel_size, stride, padding, "x_shape")
    n, c, _, _, kh, kw, _, _, _, _, oh, ow = g
    return check_array(cols, "cols", shape=(n * oh * ow, c * kh * kw)), g


# -- NumPy twins (the oracles) ------------------------------------------------------------------

def im2col_numpy(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """(NN.22) x: (n, c, h, w) -> X: (n oh ow, c kh kw). The NumPy oracle.

    ``kernel_size``, ``stride``, ``padding`` are pairs of ints (height, width).
    """
    x, (n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow) = _check_x(x, kernel_size, stride, padding)
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            # all output positions at once: rows p, p + sh, ... of the padded image
            patch = xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]  # (n, c, oh, ow)
            cols[:, :, :, :, p, q] = patch.transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * kh * kw)


def col2im_numpy(cols: np.ndarray, x_shape, kernel_size, stride, padding) -> np.ndarray:
    """(NN.23) X: (n oh ow, c kh kw) -> x: x_shape = (n, c, h, w), summing overlaps. The oracle."""
    cols, (n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow) = _check_cols(cols, x_shape, kernel_size,
                                                                     stride, padding)
    c6 = cols.reshape(n, oh, ow, c, kh, kw)
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for p in range(kh):
        for q in range(kw):
            xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += \
                c6[:, :, :, :, p, q].transpose(0, 3, 1, 2)
    return xp[:, :, ph:ph + h, pw:pw + w].copy()


# -- numba kernels ------------------------------------------------------------------------------

@kernel
def _im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, out):
    n, c, h, w = x.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                row = (b * oh + i) * ow + j
                for ch in range(c):
                    for p in range(kh):
                        r = i * sh + p - ph
                        for q in range(kw):
                            s = j * sw + q - pw
                            col = (ch * kh + p) * kw + q
                            if 0 <= r < h and 0 <= s < w:
                                out[row, col] = x[b, ch, r, s]
                            else:
                                out[row, col] = 0.0


@kernel
def _col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, out):
    n, c, h, w = out.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                row = (b * oh + i) * ow + j
                for ch in range(c):
                    for p in range(kh):
                        r = i * sh + p - ph
                        if r < 0 or r >= h:
                            continue
                        for q in range(kw):
                            s = j * sw + q - pw
                            if 0 <= s < w:
                                out[b, ch, r, s] += cols[row, (ch * kh + p) * kw + q]


def im2col(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """(NN.22) Numba kernel; same contract as ``im2col_numpy``. Accepts strided ``x``."""
    x, (n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow) = _check_x(x, kernel_size, stride, padding)
    out = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, out)
    return out


def col2im(cols: np.ndarray, x_shape, kernel_size, stride, padding) -> np.ndarray:
    """(NN.23) Numba kernel; same contract as ``col2im_numpy`` (the adjoint of ``im2col``)."""
    cols, (n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow) = _check_cols(cols, x_shape, kernel_size,
                                                                     stride, padding)
    out = np.zeros((n, c, h, w), dtype=cols.dtype)
    _col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, out)
    return out
