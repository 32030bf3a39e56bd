"""Argument checks shared by the convolutional builders of nprefgen.models (autoencoder, SimCLR,
VAE, GAN): two 3x3 stride-2 convolutions halve height and width twice, so both must be divisible
by 4."""
from __future__ import annotations

from nprefgen._validation import check_int


def check_two_stage_conv(image_shape, channels) -> tuple[int, int, int, int, int]:
    """``image_shape``: (c, h, w) with h, w divisible by 4; ``channels``: two channel counts.

    -> (c, h, w, c1, c2) as ints; a ValueError naming the argument otherwise."""
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
        raise ValueError(f"image_shape: expected (channels, height, width), got {image_shape!r}")
    c, h, w = (check_int(s, "image_shape", low=1) for s in image_shape)
    if h % 4 or w % 4:
        raise ValueError(f"image_shape: expected height and width divisible by 4, got {(h, w)}")
    if not isinstance(channels, (tuple, list)) or len(channels) != 2:
        raise ValueError(f"channels: expected two channel counts, got {channels!r}")
    c1, c2 = (check_int(ch, "channels", low=1) for ch in channels)
    return c, h, w, c1, c2
