"""What the convolutional builders of nprefgen.models (autoencoder, SimCLR, VAE, GAN) share: the
argument checks, and the two-stage encoder and decoder. Two 3x3 stride-2 convolutions halve
height and width twice, so both must be divisible by 4."""
from __future__ import annotations

from nprefgen._validation import check_int
from nprefgen.nn import Conv2d, ConvTranspose2d, Flatten, Linear, Reshape
from nprefgen.nn.circular_pad import PeriodicConv2d, PeriodicConvTranspose2d


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


def conv_encoder_layers(image_shape, channels, out_features: int, act, *, rng,
                        extra_channels: int = 0, circular: bool = False,
                        extra_features: int = 0) -> list:
    """Reshape(c, h, w) -> Conv2d(c, c1, 3, stride 2, padding 1) -> act -> Conv2d(c1, c2) -> act
    -> Flatten -> Linear(c2 h/4 w/4, out_features): flat (n, c h w) rows -> (n, out_features).
    ``image_shape`` and ``channels`` as checked by :func:`check_two_stage_conv`; ``act`` an
    activation class; layers drawn from ``rng`` (a Generator) in that order. ``extra_channels``:
    channels a layer inserted before Flatten adds (the Linear then takes (c2 + extra) h/4 w/4).
    ``circular``: PeriodicConv2d instead of Conv2d (the image wraps around, GAN.19); same
    weights drawn in the same order, same output shapes. ``extra_features``: inputs the final
    Linear takes beside the flattened image (features of a parallel branch)."""
    (c, h, w), (c1, c2) = image_shape, channels
    conv = PeriodicConv2d if circular else Conv2d
    return [Reshape(c, h, w),
            conv(c, c1, 3, stride=2, padding=1, rng=rng), act(),        # (c1, h/2, w/2)
            conv(c1, c2, 3, stride=2, padding=1, rng=rng), act(),       # (c2, h/4, w/4)
            Flatten(), Linear((c2 + extra_channels) * (h // 4) * (w // 4) + extra_features,
                              out_features, rng=rng)]


def conv_decoder_layers(in_features: int, image_shape, channels, act, *, rng,
                        circular: bool = False) -> list:
    """The mirror of :func:`conv_encoder_layers` without its final Flatten: Linear(in_features,
    c2 h/4 w/4) -> act -> Reshape(c2, h/4, w/4) -> ConvTranspose2d(c2, c1, 3, stride 2, padding
    1, output_padding 1) -> act -> ConvTranspose2d(c1, c): (n, in_features) -> (n, c, h, w).
    ``circular``: PeriodicConvTranspose2d instead (the taps past the border wrap around instead of
    being cropped, GAN.20); same weights drawn in the same order, same output shapes."""
    (c, h, w), (c1, c2) = image_shape, channels
    up = PeriodicConvTranspose2d if circular else ConvTranspose2d
    return [Linear(in_features, c2 * (h // 4) * (w // 4), rng=rng), act(),
            Reshape(c2, h // 4, w // 4),
            up(c2, c1, 3, stride=2, padding=1, output_padding=1, rng=rng), act(),
            up(c1, c, 3, stride=2, padding=1, output_padding=1, rng=rng)]
