"""Minibatch standard deviation: a discriminator feature that sees a whole batch
(derivations/gan.md, GAN.16-GAN.17).

Karras et al. (2018, ProGAN) let the discriminator compare the *spread* of a batch with that of
real data: the standard deviation of every feature over the batch, averaged to one number, is
appended as one more constant channel (or feature). A generator that covers too little of the
data's variance (partial mode collapse) then gives D an easy signal, and the gradient through the
appended channel pushes the generator's samples apart.

For x: (n, C, H, W) (or (n, F), treated as (n, F, 1, 1)),

    (GAN.16)  s = (1 / (C H W)) sum_{c,h,w} sqrt( (1/n) sum_i (x_{i,chw} - xbar_{chw})^2 + eps ),
              y = concat(x, s 1_{n x 1 x H x W}) along axis 1,

and the backward pass, with t = sum of the cotangent over the appended channel (one number),

    (GAN.17)  dL/dx_{i,chw} = dL/dy_{i,chw} + t (x_{i,chw} - xbar_{chw}) / (n C H W sigma_{chw}),

sigma_{chw} the square root in (GAN.16) (xbar's own dependence on x_i drops out, since the
deviations sum to zero). The layer couples the samples of a batch: apply it to a real batch and to
a generated batch in separate forward calls (the GAN class does), never to a mixed batch.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_scalar
from nprefgen.nn.base import Module, check_cotangent


class MinibatchStd(Module):
    """Append the batch-averaged standard deviation (GAN.16) as one more channel.

    (n, C, H, W) -> (n, C + 1, H, W), or (n, F) -> (n, F + 1). No parameters. ``eps`` > 0 keeps
    the square root differentiable when every sample is the same. Needs n >= 2.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)

    def forward(self, x):
        x = check_array(x, "x", ndim=(2, 4))
        if x.shape[0] < 2:
            raise ValueError(f"x: MinibatchStd needs a batch of at least 2 samples, "
                             f"got shape {x.shape}")
        return self._forward(x)

    def _forward(self, x):
        dev = x - x.mean(axis=0)                                   # (n, ...)
        sigma = np.sqrt(np.mean(dev * dev, axis=0) + self.eps)     # (...), (GAN.16)
        s = float(np.mean(sigma))
        extra = np.full((x.shape[0], 1) + x.shape[2:], s, dtype=x.dtype)
        return np.concatenate([x, extra], axis=1), (dev, sigma, x.shape)

    def backward(self, cache, d_y):
        dev, sigma, shape = cache
        d_y = check_cotangent(d_y, (shape[0], shape[1] + 1) + tuple(shape[2:]))
        return self._backward(cache, d_y)

    def _backward(self, cache, d_y):
        dev, sigma, shape = cache
        t = float(np.sum(d_y[:, -1]))                              # the appended channel
        return d_y[:, :-1] + (t / (shape[0] * sigma.size)) * dev / sigma   # (GAN.17)

    def __repr__(self) -> str:
        return f"MinibatchStd(eps={self.eps})"
