"""2-D convolution and transposed convolution via im2col/col2im (derivations/nn.md, NN.21-NN.29c).

Layouts follow PyTorch: ``Conv2d.weight`` is ``(out_channels, in_channels, kh, kw)``,
``ConvTranspose2d.weight`` is ``(in_channels, out_channels, kh, kw)``, biases are
``(out_channels,)``, images are ``(n, c, h, w)``. No dilation and no groups.

With X = im2col(x) of shape ``(n oh ow, c kh kw)`` (NN.22) and W_mat = weight reshaped to
``(out, c kh kw)``, a convolution is one matrix product (NN.25), so its VJPs are those of a Linear
layer applied to the rows of X, followed by col2im, the adjoint of im2col (NN.26a-c). A transposed
convolution *is* the input gradient of a convolution (NN.28), so its backward pass is a
convolution's forward pass (NN.29a-c).
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_int, check_rng
from nprefgen.kernels.im2col import col2im, conv_output_size, im2col
from nprefgen.nn.base import Module, check_cotangent, check_input
from nprefgen.nn.init import init_weight


def _pair(value, name: str, low: int) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each >= low."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return check_int(value[0], name, low=low), check_int(value[1], name, low=low)
    v = check_int(value, name, low=low)
    return v, v


def _rows_to_image(y_rows: np.ndarray, n: int, oh: int, ow: int) -> np.ndarray:
    """(n oh ow, k) -> (n, k, oh, ow), contiguous."""
    return np.ascontiguousarray(y_rows.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2))


def _image_to_rows(y: np.ndarray) -> np.ndarray:
    """(n, k, oh, ow) -> (n oh ow, k): one row per spatial position."""
    return y.transpose(0, 2, 3, 1).reshape(-1, y.shape[1])


# -- Conv2d: pure functions ---------------------------------------------------------------------

def conv2d_forward(W: np.ndarray, b: np.ndarray | None, x: np.ndarray, stride, padding):
    """(NN.25) y = im2col(x) W_mat^T + b, reshaped to an image.

    W: (out, c, kh, kw), b: (out,) or None, x: (n, c, h, w) -> y: (n, out, oh, ow) with oh, ow
    from (NN.21); also returns the cache X = im2col(x): (n oh ow, c kh kw).
    """
    n, _, h, w = x.shape
    kh, kw = W.shape[2:]
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    X = im2col(x, (kh, kw), stride, padding)               # (NN.22) (n oh ow, c kh kw)
    y_rows = X @ W.reshape(W.shape[0], -1).T               # (NN.25) (n oh ow, out)
    if b is not None:
        y_rows += b
    return _rows_to_image(y_rows, n, oh, ow), X


def conv2d_backward(W: np.ndarray, X: np.ndarray, x_shape, d_y: np.ndarray, stride, padding):
    """VJP of (NN.25). d_y: (n, out, oh, ow) -> d_x: x_shape (NN.26a), d_W: W.shape (NN.26b),
    d_b: (out,) (NN.26c)."""
    d_rows = _image_to_rows(d_y)                           # (n oh ow, out)
    W_mat = W.reshape(W.shape[0], -1)                      # (out, c kh kw)
    d_X = d_rows @ W_mat                                   # (n oh ow, c kh kw)
    d_x = col2im(d_X, x_shape, W.shape[2:], stride, padding)   # (NN.26a) adjoint of im2col (NN.24)
    d_W = (d_rows.T @ X).reshape(W.shape)                  # (NN.26b)
    d_b = d_y.sum(axis=(0, 2, 3))                          # (NN.26c)
    return d_x, d_W, d_b


# -- ConvTranspose2d: pure functions ------------------------------------------------------------

def conv_transpose_output_size(size: int, kernel_size: int, stride: int, padding: int,
                               output_padding: int) -> int:
    """(NN.27) PyTorch's formula: (size - 1) s - 2 p + k + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def conv_transpose2d_forward(W: np.ndarray, b: np.ndarray | None, x: np.ndarray, stride, padding,
                             output_padding):
    """(NN.28) y = col2im(x_rows W_mat) + b: the input gradient of a Conv2d whose weight is W.

    W: (c_in, c_out, kh, kw), b: (c_out,) or None, x: (n, c_in, h, w) -> y: (n, c_out, H, W_)
    with H, W_ from (NN.27); also returns the cache x_rows: (n h w, c_in).
    """
    n, c_in, h, w = x.shape
    c_out, kh, kw = W.shape[1:]
    out_h = conv_transpose_output_size(h, kh, stride[0], padding[0], output_padding[0])
    out_w = conv_transpose_output_size(w, kw, stride[1], padding[1], output_padding[1])
    x_rows = _image_to_rows(x)                             # (n h w, c_in)
    cols = x_rows @ W.reshape(c_in, -1)                    # (n h w, c_out kh kw)
    y = col2im(cols, (n, c_out, out_h, out_w), (kh, kw), stride, padding)   # (NN.28)
    if b is not None:
        y += b[:, None, None]
    return y, x_rows


def conv_transpose2d_backward(W: np.ndarray, x_rows: np.ndarray, x_shape, d_y: np.ndarray,
                              stride, padding):
    """VJP of (NN.28), a Conv2d forward of d_y. d_y: (n, c_out, H, W_) -> d_x: x_shape (NN.29a),
    d_W: W.shape (NN.29b), d_b: (c_out,) (NN.29c)."""
    n, c_in, h, w = x_shape
    d_Y = im2col(d_y, W.shape[2:], stride, padding)        # (n h w, c_out kh kw)
    W_mat = W.reshape(c_in, -1)                            # (c_in, c_out kh kw)
    d_x = _rows_to_image(d_Y @ W_mat.T, n, h, w)           # (NN.29a) Conv2d forward with weight W
    d_W = (x_rows.T @ d_Y).reshape(W.shape)                # (NN.29b)
    d_b = d_y.sum(axis=(0, 2, 3))                          # (NN.29c)
    return d_x, d_W, d_b


# -- layers -------------------------------------------------------------------------------------

class _ConvBase(Module):
    def _init_params(self, weight_shape, fan_in, fan_out, rng, bias, init, dtype):
        check_rng(rng)
        self.add_param("weight", init_weight(init, weight_shape, fan_in, fan_out, rng, dtype))
        self.has_bias = bool(bias)
        if self.has_bias:
            bias_init = "zeros" if init == "zeros" else "torch"
            # PyTorch draws the bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in
            self.add_param("bias", init_weight(bias_init, (self.out_channels,), fan_in, fan_out, rng, dtype))

    def __repr__(self) -> str:
        extra = f", output_padding={self.output_padding}" if hasattr(self, "output_padding") else ""
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f"{extra}, bias={self.has_bias})")


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation, as ``torch.nn.Conv2d``) via im2col (NN.25).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int or (int, int)
        Zero padding on both sides; output size from (NN.21).
    rng : numpy.random.Generator
    bias : bool
    init : {"torch", "xavier", "kaiming", "zeros"}
        "torch" is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels kh kw.
    dtype : float64 (default) or float32

    ``forward(x)``: x: (n, in_channels, h, w) -> y: (n, out_channels, oh, ow).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, *,
                 rng: np.random.Generator, bias: bool = True, init: str = "torch",
                 dtype=np.float64) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        kh, kw = self.kernel_size
        self._init_params((self.out_channels, self.in_channels, kh, kw), self.in_channels * kh * kw,
                          self.out_channels * kh * kw, rng, bias, init, dtype)

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(NN.21) spatial size of the output for an (h, w) input."""
        return (conv_output_size(h, self.kernel_size[0], self.stride[0], self.padding[0]),
                conv_output_size(w, self.kernel_size[1], self.stride[1], self.padding[1]))

    def forward(self, x):
        """x: (n, in_channels, h, w) -> y: (n, out_channels, oh, ow); cache: (x.shape, im2col(x))."""
        x = check_input(x, "x", self.in_channels, self, ndim=4)
        oh, ow = self.output_shape(*x.shape[2:])
        if oh < 1 or ow < 1:
            raise ValueError(f"x: {self!r} needs a padded input of at least {self.kernel_size}, "
                             f"got spatial size {x.shape[2:]}")
        y, X = conv2d_forward(self.params["weight"], self.params.get("bias"), x, self.stride,
                              self.padding)
        return y, (x.shape, X)

    def backward(self, cache, d_y):
        """d_y: (n, out_channels, oh, ow) -> d_x: (n, in_channels, h, w); accumulates grads."""
        x_shape, X = cache
        oh, ow = self.output_shape(*x_shape[2:])
        d_y = check_cotangent(d_y, (x_shape[0], self.out_channels, oh, ow))
        d_x, d_W, d_b = conv2d_backward(self.params["weight"], X, x_shape, d_y, self.stride,
                                        self.padding)
        self.grads["weight"] += d_W
        if self.has_bias:
            self.grads["bias"] += d_b
        return d_x


class ConvTranspose2d(_ConvBase):
    """Transposed 2-D convolution, as ``torch.nn.ConvTranspose2d`` (no dilation, no groups).

    Its forward is the input gradient of ``Conv2d(out_channels, in_channels, ...)`` with the same
    weight array (NN.28); output size from (NN.27).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int or (int, int)
    output_padding : int or (int, int)
        Extra rows/columns on the bottom/right of the output; must be smaller than ``stride``.
    rng, bias, init, dtype : as :class:`Conv2d`; "torch" init uses fan_in = out_channels kh kw,
        as PyTorch does for the ``(in, out, kh, kw)`` layout.

    ``forward(x)``: x: (n, in_channels, h, w) -> y: (n, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, *, rng: np.random.Generator, bias: bool = True,
                 init: str = "torch", dtype=np.float64) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.output_padding = _pair(output_padding, "output_padding", 0)
        for op, s in zip(self.output_padding, self.stride):
            if op >= s:
                raise ValueError(f"output_padding: expected values smaller than stride {self.stride}, "
                                 f"got {self.output_padding}")
        kh, kw = self.kernel_size
        self._init_params((self.in_channels, self.out_channels, kh, kw), self.out_channels * kh * kw,
                          self.in_channels * kh * kw, rng, bias, init, dtype)

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(NN.27) spatial size of the output for an (h, w) input."""
        return tuple(conv_transpose_output_size(s, k, st, p, op) for s, k, st, p, op in zip(
            (h, w), self.kernel_size, self.stride, self.padding, self.output_padding))

    def forward(self, x):
        """x: (n, in_channels, h, w) -> y: (n, out_channels, H, W); cache: (x.shape, x_rows)."""
        x = check_input(x, "x", self.in_channels, self, ndim=4)
        out_h, out_w = self.output_shape(*x.shape[2:])
        if out_h < 1 or out_w < 1:
            raise ValueError(f"x: {self!r} gives an empty output ({out_h} x {out_w}) for spatial "
                             f"size {x.shape[2:]}")
        y, x_rows = conv_transpose2d_forward(self.params["weight"], self.params.get("bias"), x,
                                             self.stride, self.padding, self.output_padding)
        return y, (x.shape, x_rows)

    def backward(self, cache, d_y):
        """d_y: (n, out_channels, H, W) -> d_x: (n, in_channels, h, w); accumulates grads."""
        x_shape, x_rows = cache
        d_y = check_cotangent(d_y, (x_shape[0], self.out_channels) + self.output_shape(*x_shape[2:]))
        d_x, d_W, d_b = conv_transpose2d_backward(self.params["weight"], x_rows, x_shape, d_y,
                                                  self.stride, self.padding)
        self.grads["weight"] += d_W
        if self.has_bias:
            self.grads["bias"] += d_b
        return d_x
