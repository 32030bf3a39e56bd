"""nprefgen.data: bundled 8x8 digits, an MNIST IDX reader, 2-D toy densities, Gaussian random
fields (derivations/data.md).

- :func:`load_digits`: the UCI 8x8 digits shipped with the package, fixed stratified split.
- :func:`load_mnist`, :func:`read_idx`: MNIST from its IDX files (not bundled).
- ``TOYS`` and ``sample_*`` / ``log_prob_*``: two moons, rings, checkerboard, 8 Gaussians, pinwheel.
- :func:`gaussian_random_field`: fields with a prescribed power spectrum P(k).

Samplers take a keyword-only ``rng`` (None, an int seed or a Generator, SPEC 7):
``sample_two_moons(500, rng=0)``, ``TOYS["rings"].sample(500, rng=rng)``.
"""
from nprefgen.data.digits import load_digits, split_indices
from nprefgen.data.grf import field_variance, gaussian_random_field, power_law
from nprefgen.data.images import ImageData, central_indices, load_image_data
from nprefgen.data.mnist import MNISTDownloadError, MNISTNotFoundError, load_mnist, read_idx
from nprefgen.data.toys import (
    TOYS, Toy, eight_gaussians_means, log_prob_8gaussians, log_prob_checkerboard, log_prob_rings,
    sample_8gaussians, sample_checkerboard, sample_pinwheel, sample_rings, sample_two_moons,
)

__all__ = [
    "load_digits", "split_indices", "load_mnist", "read_idx", "MNISTDownloadError",
    "MNISTNotFoundError", "TOYS", "Toy", "sample_two_moons", "sample_rings", "sample_checkerboard",
    "sample_8gaussians", "sample_pinwheel", "log_prob_rings", "log_prob_checkerboard",
    "log_prob_8gaussians", "eight_gaussians_means", "gaussian_random_field", "field_variance",
    "power_law", "ImageData", "load_image_data", "central_indices",
]
