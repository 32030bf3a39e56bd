"""nprefgen.models: one module per lecture model, each a thin estimator over pure functions.

- :class:`GaussianMixture` (gmm.py, derivations/gmm.md): EM with restarts; the pure functions in
  gmm_params.py (parameterisation), gmm_density.py (log-density, sampling) and gmm_em.py (EM);
  k-means++ / Lloyd seeding in kmeans.py.
- :class:`GaussianDensity` (gaussian.py): the maximum-likelihood (conditional) Gaussian, the
  baseline every flow must beat.
- :class:`PCA` (pca.py): the SVD, whitening, principal angles.
- :class:`Autoencoder` and its builders (autoencoder.py), :class:`SimCLR` and its builders
  (contrastive.py) with the image augmentations of augment.py.
- :class:`LinearProbe`, :class:`KNNClassifier` (probe.py): how good is a representation?
- :class:`NCSN`, :class:`ConvNCSN` (ncsn.py, ncsn_conv.py, derivations/score.md): score networks
  trained by denoising score matching; closed-form scores in score.py.
- :class:`VAE` and its builders (vae.py, derivations/vae.md), :class:`GAN` (gan.py,
  derivations/gan.md).

Every ``fit`` returns self; randomness is a keyword-only ``rng`` (None, an int seed or a
Generator, SPEC 7): ``GaussianMixture(3).fit(X, rng=0).sample(100, rng=1)``.
"""
from nprefgen.models.augment import (
    Augment, adjust_brightness_contrast, gaussian_noise, random_brightness_contrast, random_flip,
    random_resized_crop, random_rotation, random_zoom, rotate, warp_affine, zoom,
)
from nprefgen.models.autoencoder import (
    Autoencoder, conv_autoencoder, dense_autoencoder, linear_autoencoder,
)
from nprefgen.models.contrastive import SimCLR, conv_simclr, dense_simclr, ntxent_loss
from nprefgen.models.gaussian import GaussianDensity
from nprefgen.models.gmm import EMResult, GaussianMixture, NotFittedError
from nprefgen.models.kmeans import kmeans_plusplus, lloyd
from nprefgen.models.pca import PCA, PCAFit, principal_angles
from nprefgen.models.probe import KNNClassifier, LinearProbe, probe_accuracies
from nprefgen.models.ncsn import NCSN, geometric_sigmas, sigma_max_from_data
from nprefgen.models.ncsn_conv import ConvNCSN
from nprefgen.models.score import (
    GaussianMixtureScore, gaussian_score, mixture_score, mode_weights, song_ermon_mixture,
)
from nprefgen.models.gan import GAN, conv_gan, mlp_gan, mode_coverage
from nprefgen.models.vae import VAE, conv_vae, dense_vae, linear_gaussian_vae, load_vae, ppca_ml

__all__ = [
    "GaussianDensity", "GaussianMixture", "EMResult", "NotFittedError", "kmeans_plusplus", "lloyd",
    "PCA", "PCAFit", "principal_angles",
    "Autoencoder", "dense_autoencoder", "conv_autoencoder", "linear_autoencoder",
    "SimCLR", "dense_simclr", "conv_simclr", "ntxent_loss",
    "Augment", "warp_affine", "rotate", "zoom", "adjust_brightness_contrast", "random_rotation",
    "random_zoom", "random_resized_crop", "random_brightness_contrast", "gaussian_noise",
    "random_flip",
    "LinearProbe", "KNNClassifier", "probe_accuracies",
    "NCSN", "ConvNCSN", "geometric_sigmas", "sigma_max_from_data",
    "GaussianMixtureScore", "gaussian_score", "mixture_score", "mode_weights", "song_ermon_mixture",
    "VAE", "dense_vae", "conv_vae", "linear_gaussian_vae", "load_vae", "ppca_ml",
    "GAN", "mlp_gan", "conv_gan", "mode_coverage",
]
