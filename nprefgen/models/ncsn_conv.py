"""A noise-conditional score network for small images (derivations/score.md, SCORE.5-SCORE.7).

Images travel as flattened rows ``x: (n, c h w)``, as the bundled 8x8 digits do, so everything of
:class:`nprefgen.models.ncsn.NCSN` (the DSM loss, fit, the schedule) applies unchanged; only the
network differs: three 3x3 convolutions with padding 1 (the receptive field covers 7x7 pixels),

    (SCORE.7)  "concat": s(x, sigma) = f([x, log sigma 1]) / sigma   (log sigma as a constant channel),
               "scale":  s(x, sigma) = f(x) / sigma.

Sampling runs the Python-level loop :func:`nprefgen.kernels.langevin.langevin_loop` (the numba loop knows
only MLPs).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nprefgen._validation import check_int, check_shape
from nprefgen.models.ncsn import NCSN
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.containers import Sequential
from nprefgen.nn.conv import Conv2d


class ConvNCSN(NCSN):
    """NCSN with a small convolutional network, for images given as rows (n, c h w).

    Parameters
    ----------
    image_shape : (c, h, w), e.g. (1, 8, 8) for the digits.
    channels : hidden channels of the two inner convolutions.
    conditioning, activation, sigmas, n_levels, sigma_min, rng : as :class:`NCSN`.
    """

    supports_numba = False

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), channels: int = 32, *,
                 conditioning: str = "concat", activation: str = "softplus", sigmas=None,
                 n_levels: int = 10, sigma_min: float = 0.01, rng=None) -> None:
        self.image_shape = check_shape(tuple(image_shape), "image_shape", ndim=3, low=1)
        self.channels = check_int(channels, "channels", low=1)
        c, h, w = self.image_shape
        super().__init__(c * h * w, hidden=(channels,), conditioning=conditioning,
                         activation=activation, sigmas=sigmas, n_levels=n_levels,
                         sigma_min=sigma_min, rng=rng)

    def _build_net(self, in_features: int, rng):
        c = self.image_shape[0]
        c_in = c + (1 if self.conditioning == "concat" else 0)
        act = ACTIVATIONS[self.activation]
        k = self.channels
        return Sequential(Conv2d(c_in, k, 3, padding=1, rng=rng), act(),
                          Conv2d(k, k, 3, padding=1, rng=rng), act(),
                          Conv2d(k, c, 3, padding=1, rng=rng))

    def _forward(self, x, sigma_rows):
        """(SCORE.7) x: (n, c h w), sigma_rows: (n,) -> s: (n, c h w) and the network's cache."""
        n = x.shape[0]
        img = x.reshape((n,) + self.image_shape)
        if self.conditioning == "concat":
            h, w = self.image_shape[1:]
            level = np.broadcast_to(np.log(sigma_rows)[:, None, None, None], (n, 1, h, w))
            img = np.concatenate([img, level], axis=1)
        f, cache = self.net.forward(img)
        return f.reshape(n, -1) * (1.0 / sigma_rows)[:, None], cache

    def _backward(self, cache, d_f) -> None:
        self.net.backward(cache, d_f.reshape((d_f.shape[0],) + self.image_shape))

    def mlp_arrays(self):
        raise ValueError("model: a ConvNCSN has no MLP arrays for the numba sampler; sample with "
                         "nprefgen.samplers.langevin.annealed_langevin(method='python')")

    def __repr__(self) -> str:
        return (f"ConvNCSN(image_shape={self.image_shape}, channels={self.channels}, "
                f"conditioning={self.conditioning!r}, "
                f"levels={None if self.sigmas is None else len(self.sigmas)})")
