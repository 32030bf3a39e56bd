"""Manual-backprop building blocks: ``y, cache = layer.forward(x)``, ``d_x = layer.backward(cache, d_y)``.

See :mod:`nprefgen.nn.base` for the contract and derivations/nn.md for every equation. Layers with
weights take a keyword-only ``rng`` (None, an int seed or a Generator, SPEC 7) for their
initialisation: ``Linear(3, 4, rng=0)``.
"""
from nprefgen.nn.activations import ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh, sigmoid
from nprefgen.nn.base import Module
from nprefgen.nn.conv import Conv2d, ConvTranspose2d
from nprefgen.nn.circular_pad import (
    CircularFold2d, CircularPad2d, PeriodicConv2d, PeriodicConvTranspose2d,
)
from nprefgen.nn.init import (
    INITIALIZERS, init_weight, init_weight_and_bias, kaiming_normal, torch_default, xavier_uniform,
)
from nprefgen.nn.containers import MLP, Flatten, Reshape, Sequential
from nprefgen.nn.io import load_npz, read_npz, save_npz
from nprefgen.nn.linear import Linear, MaskedLinear
from nprefgen.nn.minibatch_std import MinibatchStd
from nprefgen.nn.spectral_power import BinnedLogPower, Branches
from nprefgen.nn.losses import (
    bce_with_logits_loss, gaussian_nll_loss, mse_loss, softmax, softmax_cross_entropy_loss,
)
from nprefgen.nn.optim import SGD, Adam, Optimizer, clip_grad_norm
from nprefgen.nn.train import TrainingDivergedError, fit_loop, validation_split

__all__ = [
    "Module", "Linear", "MaskedLinear", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softplus", "ELU",
    "Identity", "sigmoid", "Sequential", "MLP", "Flatten", "Reshape", "Conv2d", "ConvTranspose2d",
    "MinibatchStd", "CircularPad2d", "CircularFold2d", "PeriodicConv2d", "PeriodicConvTranspose2d",
    "BinnedLogPower", "Branches",
    "mse_loss", "bce_with_logits_loss", "gaussian_nll_loss", "softmax_cross_entropy_loss", "softmax",
    "SGD", "Adam", "Optimizer", "clip_grad_norm", "save_npz", "load_npz", "read_npz",
    "INITIALIZERS", "torch_default", "xavier_uniform", "kaiming_normal", "init_weight",
    "init_weight_and_bias",
    "TrainingDivergedError", "fit_loop", "validation_split",
]
