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

from nprefgen._validation import (
    check_alloc, check_array, check_int, check_pair, check_rng, check_shape,
)
from nprefgen.kernels.im2col import col2im, conv_output_size, im2col
from nprefgen.nn.base import Module, check_cotangent, check_input
from nprefgen.nn.init import init_weight_and_bias


def _rows_to_image(y_rows: np.ndarray, n: int, oh: int, ow: int) -> np.ndarray:
    """(n oh ow, k) -> (n, k, oh, ow), contiguous."""
    return np.ascontiguousarray(y_rows.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2))


def _image_to_rows(y: np.ndarray) -> np.ndarray:
    """(n, k, oh, ow) -> (n oh ow, k): one row per spatial position."""
    return y.transpose(0, 2, 3, 1).reshape(-1, y.shape[1])


def _check_weight_input(W, b, x, transposed: bool = False):
    """W: (out, c, kh, kw), or (c, out, kh, kw) if ``transposed``; x: (n, c, h, w); b: (out,) or
    None."""
    W = check_array(W, "W", ndim=4)
    x = check_array(x, "x", ndim=4)
    c, out = (W.shape[0], W.shape[1]) if transposed else (W.shape[1], W.shape[0])
    if x.shape[1] != c:
        raise ValueError(f"x: expected {c} channels on axis 1 for a weight of shape {W.shape}, "
                         f"got shape {x.shape}")
    if b is not None:
        b = check_array(b, "b", shape=(out,))
    return W, b, x


# -- Conv2d: pure functions ---------------------------------------------------------------------

def conv2d_forward(W: np.ndarray, b: np.ndarray | None, x: np.ndarray, stride, padding):
    """(NN.25) y = im2col(x) W_mat^T + b, reshaped to an image.

    W: (out, c, kh, kw), b: (out,) or None, x: (n, c, h, w) -> y: (n, out, oh, ow) with oh, ow
    from (NN.21); also returns the cache X = im2col(x): (n oh ow, c kh kw).
    """
    W, b, x = _check_weight_input(W, b, x)
    stride, padding = check_pair(stride, "stride", low=1), check_pair(padding, "padding", low=0)
    n, _, h, w = x.shape
    kh, kw = W.shape[2:]
    X = im2col(x, (kh, kw), stride, padding)               # (NN.22) (n oh ow, c kh kw)
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    y_rows = X @ W.reshape(W.shape[0], -1).T               # (NN.25) (n oh ow, out)
    if b is not None:
        y_rows += b
    return _rows_to_image(y_rows, n, oh, ow), X


def conv2d_backward(W: np.ndarray, X: np.ndarray, x_shape, d_y: np.ndarray, stride, padding):
    """VJP of (NN.25). d_y: (n, out, oh, ow) -> d_x: x_shape (NN.26a), d_W: W.shape (NN.26b),
    d_b: (out,) (NN.26c).

    X is the cache of :func:`conv2d_forward` (im2col of a checked input): its shape is checked,
    its values are not scanned again."""
    W = check_array(W, "W", ndim=4)
    n, c, h, w = check_shape(x_shape, "x_shape", ndim=4, low=1)
    stride, padding = check_pair(stride, "stride", low=1), check_pair(padding, "padding", low=0)
    oh = conv_output_size(h, W.shape[2], stride[0], padding[0])
    ow = conv_output_size(w, W.shape[3], stride[1], padding[1])
    X = check_array(X, "X", shape=(n * oh * ow, W[0].size), finite=False)
    d_y = check_array(d_y, "d_y", shape=(n, W.shape[0], oh, ow))
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
    size, kernel_size = check_int(size, "size", low=1), check_int(kernel_size, "kernel_size", low=1)
    stride, padding = check_int(stride, "stride", low=1), check_int(padding, "padding", low=0)
    output_padding = check_int(output_padding, "output_padding", low=0)
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def conv_transpose2d_forward(W: np.ndarray, b: np.ndarray | None, x: np.ndarray, stride, padding,
                             output_padding):
    """(NN.28) y = col2im(x_rows W_mat) + b: the input gradient of a Conv2d whose weight is W.

    W: (c_in, c_out, kh, kw), b: (c_out,) or None, x: (n, c_in, h, w) -> y: (n, c_out, H, W_)
    with H, W_ from (NN.27); also returns the cache x_rows: (n h w, c_in).
    ``output_padding`` must be smaller than ``stride`` (as in PyTorch).
    """
    W, b, x = _check_weight_input(W, b, x, transposed=True)
    stride, padding = check_pair(stride, "stride", low=1), check_pair(padding, "padding", low=0)
    output_padding = check_pair(output_padding, "output_padding", low=0)
    if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
        raise ValueError(f"output_padding: expected values smaller than stride {stride}, "
                         f"got {output_padding}")
    n, c_in, h, w = x.shape
    c_out, kh, kw = W.shape[1:]
    out_h = conv_transpose_output_size(h, kh, stride[0], padding[0], output_padding[0])
    out_w = conv_transpose_output_size(w, kw, stride[1], padding[1], output_padding[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x: spatial size {x.shape[2:]} gives an empty output "
                         f"({out_h} x {out_w}) for kernel {(kh, kw)} and padding {padding}")
    x_rows = _image_to_rows(x)                             # (n h w, c_in)
    cols = x_rows @ W.reshape(c_in, -1)                    # (n h w, c_out kh kw)
    y = col2im(cols, (n, c_out, out_h, out_w), (kh, kw), stride, padding)   # (NN.28)
    if b is not None:
        y += b[:, None, None]
    return y, x_rows


def conv_transpose2d_backward(W: np.ndarray, x_rows: np.ndarray, x_shape, d_y: np.ndarray,
                              stride, padding):
    """VJP of (NN.28), a Conv2d forward of d_y. d_y: (n, c_out, H, W_) -> d_x: x_shape (NN.29a),
    d_W: W.shape (NN.29b), d_b: (c_out,) (NN.29c).

    x_rows is the cache of :func:`conv_transpose2d_forward`: its shape is checked, its values
    are not scanned again. d_y's spatial size must give back (h, w) under (NN.21)."""
    W = check_array(W, "W", ndim=4)
    n, c_in, h, w = check_shape(x_shape, "x_shape", ndim=4, low=1)
    if c_in != W.shape[0]:
        raise ValueError(f"x_shape: expected {W.shape[0]} channels for a weight of shape "
                         f"{W.shape}, got {tuple(x_shape)}")
    x_rows = check_array(x_rows, "x_rows", shape=(n * h * w, c_in), finite=False)
    d_y = check_array(d_y, "d_y", ndim=4)
    stride, padding = check_pair(stride, "stride", low=1), check_pair(padding, "padding", low=0)
    sizes = [conv_output_size(s, k, st, p) if s >= 1 else 0 for s, k, st, p in
             zip(d_y.shape[2:], W.shape[2:], stride, padding)]
    if d_y.shape[:2] != (n, W.shape[1]) or sizes != [h, w]:
        raise ValueError(f"d_y: expected shape ({n}, {W.shape[1]}, H, W) with H, W mapped back "
                         f"to ({h}, {w}) by (NN.21), got {d_y.shape}")
    d_Y = im2col(d_y, W.shape[2:], stride, padding)        # (n h w, c_out kh kw)
    W_mat = W.reshape(c_in, -1)                            # (c_in, c_out kh kw)
    d_x = _rows_to_image(d_Y @ W_mat.T, n, h, w)           # (NN.29a) Conv2d forward with weight W
    d_W = (x_rows.T @ d_Y).reshape(W.shape)                # (NN.29b)
    d_b = d_y.sum(axis=(0, 2, 3))                          # (NN.29c)
    return d_x, d_W, d_b


# -- layers -------------------------------------------------------------------------------------

class _ConvBase(Module):
    """What Conv2d and ConvTranspose2d share: geometry, parameters, gradient accumulation.

    ``weight`` is ``(out, in, kh, kw)`` (Conv2d) or ``(in, out, kh, kw)`` (``transposed``); in
    both layouts PyTorch's fan_in is ``weight.shape[1] kh kw``, fan_out ``weight.shape[0] kh kw``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, rng, bias, init,
                 dtype, transposed: bool) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = check_pair(kernel_size, "kernel_size", low=1)
        self.stride = check_pair(stride, "stride", low=1)
        self.padding = check_pair(padding, "padding", low=0)
        rng = check_rng(rng)
        kh, kw = self.kernel_size
        check_alloc((self.out_channels, self.in_channels, kh, kw),
                    "in_channels x out_channels x kernel_size")
        c0, c1 = ((self.in_channels, self.out_channels) if transposed
                  else (self.out_channels, self.in_channels))
        weight, b = init_weight_and_bias(init, (c0, c1, kh, kw), self.out_channels, c1 * kh * kw,
                                         c0 * kh * kw, rng=rng, bias=bias, dtype=dtype)
        self.add_param("weight", weight)
        self.has_bias = b is not None
        if self.has_bias:
            self.add_param("bias", b)

    def _accumulate(self, d_W: np.ndarray, d_b: np.ndarray) -> None:
        self.grads["weight"] += d_W
        if self.has_bias:
            self.grads["bias"] += d_b

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
    rng : None, an int seed or a Generator (SPEC 7)
    bias : bool
    init : {"torch", "xavier", "kaiming", "zeros"}
        "torch" is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels kh kw.
    dtype : float64 (default) or float32

    ``forward(x)``: x: (n, in_channels, h, w) -> y: (n, out_channels, oh, ow).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, *,
                 rng=None, bias: bool = True, init: str = "torch",
                 dtype=np.float64) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, rng, bias, init,
                         dtype, transposed=False)

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(NN.21) spatial size of the output for an (h, w) input."""
        h, w = check_int(h, "h", low=1), check_int(w, "w", low=1)
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
        self._accumulate(d_W, d_b)
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
                 output_padding=0, *, rng=None, bias: bool = True,
                 init: str = "torch", dtype=np.float64) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, rng, bias, init,
                         dtype, transposed=True)
        self.output_padding = check_pair(output_padding, "output_padding", low=0)
        for op, s in zip(self.output_padding, self.stride):
            if op >= s:
                raise ValueError(f"output_padding: expected values smaller than stride {self.stride}, "
                                 f"got {self.output_padding}")

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(NN.27) spatial size of the output for an (h, w) input."""
        h, w = check_int(h, "h", low=1), check_int(w, "w", low=1)
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
        self._accumulate(d_W, d_b)
        return d_x
