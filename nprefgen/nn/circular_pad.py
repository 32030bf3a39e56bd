"""Circular (periodic) padding and its adjoint, the circular fold (derivations/gan.md, GAN.19-GAN.20).

A convolution with zero padding treats an image as surrounded by zeros, so its border pixels see a
different statistic from the interior. Fields on a periodic box (the log-normal maps of
nprefgen.data.grf) have no border: the pixel left of column 0 is column w - 1. Padding by wrapping
the image around,

    (GAN.19)  (P x)_{r, s} = x_{(r - t) mod h, (s - l) mod w},   r < t + h + b,  s < l + w + r_,

(t, b, l, r_ the rows and columns added on top, bottom, left and right), then convolving with no
padding, makes a ``Conv2d`` periodic. P is linear, and its adjoint P^T (the backward pass of the
padding) *folds* an image back onto the torus, adding every padded pixel into the pixel it copied,

    (GAN.20)  (P^T y)_{i, j} = sum_{r = i + t (mod h), s = j + l (mod w)} y_{r, s}.

The fold is itself a layer: a transposed convolution with no padding writes kernel taps past the
border of the image, and folding them back is the periodic transposed convolution, as a
zero-padded one crops them. The backward pass of each layer is the forward pass of the other.

The two convolutions on the torus, with the weights, bias and output sizes of their zero-padded
counterparts (derivations/nn.md NN.21, NN.27), are

    PeriodicConv2d:           y = conv(P x; padding 0) + b                  (GAN.19)
    PeriodicConvTranspose2d:  y = P^T convT(x; padding 0) + b               (GAN.20)

with P padding (p, p) rows and (p, p) columns for the convolution, and (p, p - output_padding)
for the transposed one (so that 3 x 3 kernels, stride 2, padding 1, output_padding 1 map an
s x s image to 2s x 2s exactly as the zero-padded layer does). The bias is added after the fold,
once per output pixel. Their backward passes are the zero-padded layers' with padding 0, composed
with P^T (convolution) or P (transposed convolution) on the input side.

Images are (n, c, h, w); every pad must be at most the image's size along its axis (one wrap).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_int
from nprefgen.nn.base import Module, check_cotangent, check_input
from nprefgen.nn.conv import (
    Conv2d, ConvTranspose2d, conv2d_backward, conv2d_forward, conv_transpose2d_backward,
    conv_transpose2d_forward,
)


def _check_padding(padding, name: str = "padding") -> tuple[int, int, int, int]:
    """An int p (p on every side), a pair (ph, pw) or four ints (top, bottom, left, right), each
    >= 0 -> (top, bottom, left, right)."""
    if isinstance(padding, (tuple, list, np.ndarray)):
        if len(padding) == 2:
            ph, pw = (check_int(p, name, low=0) for p in padding)
            return ph, ph, pw, pw
        if len(padding) == 4:
            return tuple(check_int(p, name, low=0) for p in padding)
        raise ValueError(f"{name}: expected an int, (height, width) or (top, bottom, left, "
                         f"right), got {len(padding)} values")
    p = check_int(padding, name, low=0)
    return p, p, p, p


def _circular_pad(x: np.ndarray, padding) -> np.ndarray:
    """(GAN.19) x: (n, c, h, w) -> (n, c, t + h + b, l + w + r) wrapped around; padding as
    :func:`_check_padding`, each pad at most the size of its axis."""
    t, b, l, r = padding
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), mode="wrap")


def _circular_fold(y: np.ndarray, padding) -> np.ndarray:
    """(GAN.20) the adjoint of :func:`circular_pad`: y: (n, c, t + h + b, l + w + r) ->
    (n, c, h, w), each padded row and column added into the one it wraps onto."""
    t, b, l, r = padding
    H, W = y.shape[2:]
    h, w = H - t - b, W - l - r
    rows = y[:, :, t:t + h].copy()                          # (n, c, h, W): fold the rows first
    if t:
        rows[:, :, h - t:] += y[:, :, :t]                   # the top strip copied rows h-t..h-1
    if b:
        rows[:, :, :b] += y[:, :, t + h:]                   # the bottom strip copied rows 0..b-1
    out = rows[:, :, :, l:l + w].copy()                     # (n, c, h, w): then the columns
    if l:
        out[:, :, :, w - l:] += rows[:, :, :, :l]
    if r:
        out[:, :, :, :r] += rows[:, :, :, l + w:]
    return out


def _check_image(x, name: str, padding, layer: str, folded: bool) -> np.ndarray:
    x = check_array(x, name, ndim=4)
    t, b, l, r = padding
    h, w = x.shape[2:]
    if folded:
        h, w = h - t - b, w - l - r
    if h < max(t, b, 1) or w < max(l, r, 1):
        raise ValueError(f"{name}: {layer} with padding (top, bottom, left, right) = {padding} "
                         f"needs an image at least as large as each pad (one wrap), got "
                         f"spatial size {x.shape[2:]}")
    return x


class CircularPad2d(Module):
    """Periodic padding (GAN.19): (n, c, h, w) -> (n, c, h + t + b, w + l + r). No parameters.

    ``padding``: an int, (height, width) or (top, bottom, left, right). Put it before a
    ``Conv2d(..., padding=0)`` to make the convolution periodic. Backward: the fold (GAN.20).
    """

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _check_padding(padding)

    def forward(self, x):
        x = _check_image(x, "x", self.padding, repr(self), folded=False)
        return self._forward(x)

    def _forward(self, x):
        return _circular_pad(x, self.padding), x.shape

    def backward(self, shape, d_y):
        t, b, l, r = self.padding
        d_y = check_cotangent(d_y, (shape[0], shape[1], shape[2] + t + b, shape[3] + l + r))
        return self._backward(shape, d_y)

    def _backward(self, shape, d_y):
        return _circular_fold(d_y, self.padding)

    def __repr__(self) -> str:
        return f"CircularPad2d({self.padding})"


class CircularFold2d(Module):
    """The adjoint of :class:`CircularPad2d` (GAN.20): (n, c, h + t + b, w + l + r) -> (n, c, h, w),
    every pixel outside the central h x w block added into the pixel it wraps onto. No parameters.

    After ``ConvTranspose2d(c_in, c_out, 3, stride=2, padding=0, bias=False)`` (output 2h + 1),
    ``CircularFold2d((1, 0, 1, 0))`` gives the periodic counterpart of ``padding=1,
    output_padding=1`` (output 2h): the taps that the zero-padded layer crops are wrapped
    around instead. Without ``bias=False`` the bias would be folded too, counted twice on the
    wrapped row and column (four times in the corner): :class:`PeriodicConvTranspose2d` adds it
    after the fold. Backward: the circular padding (GAN.19).
    """

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _check_padding(padding)

    def forward(self, x):
        x = _check_image(x, "x", self.padding, repr(self), folded=True)
        return self._forward(x)

    def _forward(self, x):
        return _circular_fold(x, self.padding), x.shape

    def backward(self, shape, d_y):
        t, b, l, r = self.padding
        d_y = check_cotangent(d_y, (shape[0], shape[1], shape[2] - t - b, shape[3] - l - r))
        return self._backward(shape, d_y)

    def _backward(self, shape, d_y):
        return _circular_pad(d_y, self.padding)

    def __repr__(self) -> str:
        return f"CircularFold2d({self.padding})"


class PeriodicConv2d(Conv2d):
    """A ``Conv2d`` on the torus (GAN.19): circular padding by ``padding`` on both sides of each
    axis, then the convolution with no padding. Same constructor, parameters (``weight`` (out, in,
    kh, kw), ``bias`` (out,)), initialisation and output size (NN.21) as ``Conv2d``; as
    ``torch.nn.Conv2d(..., padding_mode="circular")``.

    ``forward(x)``: x: (n, in_channels, h, w) -> y: (n, out_channels, oh, ow).
    """

    def _pads(self):
        (ph, pw) = self.padding
        return ph, ph, pw, pw

    def forward(self, x):
        x = check_input(x, "x", self.in_channels, self, ndim=4)
        x = _check_image(x, "x", self._pads(), repr(self), folded=False)
        oh, ow = self.output_shape(*x.shape[2:])
        if oh < 1 or ow < 1:
            raise ValueError(f"x: {self!r} needs a padded input of at least {self.kernel_size}, "
                             f"got spatial size {x.shape[2:]}")
        xp = _circular_pad(x, self._pads())                  # (GAN.19)
        y, X = conv2d_forward(self.params["weight"], self.params.get("bias"), xp, self.stride, 0)
        return y, (x.shape, xp.shape, X)

    def backward(self, cache, d_y):
        """d_y: (n, out_channels, oh, ow) -> d_x: (n, in_channels, h, w); accumulates grads."""
        x_shape, xp_shape, X = cache
        d_y = check_cotangent(d_y, (x_shape[0], self.out_channels)
                              + self.output_shape(*x_shape[2:]))
        d_xp, d_W, d_b = conv2d_backward(self.params["weight"], X, xp_shape, d_y, self.stride, 0)
        self._accumulate(d_W, d_b)
        return _circular_fold(d_xp, self._pads())            # P^T (GAN.20)


class PeriodicConvTranspose2d(ConvTranspose2d):
    """A ``ConvTranspose2d`` on the torus (GAN.20): the transposed convolution with no padding,
    its taps past the border folded back by (top, bottom, left, right) = (p_h, p_h - op_h, p_w,
    p_w - op_w), then the bias. Same constructor, parameters, initialisation and output size
    (NN.27) as ``ConvTranspose2d``; needs ``output_padding <= padding``.

    ``forward(x)``: x: (n, in_channels, h, w) -> y: (n, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, *, rng=None, bias: bool = True, init: str = "torch",
                 dtype=np.float64) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding,
                         rng=rng, bias=bias, init=init, dtype=dtype)
        if any(op > p for op, p in zip(self.output_padding, self.padding)):
            raise ValueError(f"output_padding: a periodic transposed convolution needs "
                             f"output_padding <= padding {self.padding}, got {self.output_padding}")
        (ph, pw), (oph, opw) = self.padding, self.output_padding
        self.fold = (ph, ph - oph, pw, pw - opw)

    def forward(self, x):
        x = check_input(x, "x", self.in_channels, self, ndim=4)
        out_h, out_w = self.output_shape(*x.shape[2:])
        if out_h < max(1, *self.fold[:2]) or out_w < max(1, *self.fold[2:]):
            raise ValueError(f"x: {self!r} gives an output ({out_h} x {out_w}) smaller than its "
                             f"fold {self.fold} for spatial size {x.shape[2:]}")
        full, x_rows = conv_transpose2d_forward(self.params["weight"], None, x, self.stride, 0, 0)
        y = _circular_fold(full, self.fold)                  # (GAN.20) P^T, then the bias
        if self.has_bias:
            y += self.params["bias"][:, None, None]
        return y, (x.shape, x_rows)

    def backward(self, cache, d_y):
        """d_y: (n, out_channels, H, W) -> d_x: (n, in_channels, h, w); accumulates grads."""
        x_shape, x_rows = cache
        d_y = check_cotangent(d_y, (x_shape[0], self.out_channels)
                              + self.output_shape(*x_shape[2:]))
        d_full = _circular_pad(d_y, self.fold)               # P, the adjoint of the fold
        d_x, d_W, _ = conv_transpose2d_backward(self.params["weight"], x_rows, x_shape, d_full,
                                                self.stride, 0)
        self._accumulate(d_W, d_y.sum(axis=(0, 2, 3)))
        return d_x
