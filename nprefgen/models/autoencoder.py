"""Autoencoders: an encoder f and a decoder g trained so that g(f(x)) reconstructs x
(derivations/representation.md, REP.7-REP.9).

:class:`Autoencoder` holds any two :class:`nprefgen.nn.Module` networks and offers the API the
rest of the package builds on::

    ae = dense_autoencoder(64, latent_dim=2, rng=rng)
    ae.fit(X, rng=rng, epochs=30)               # returns ae; ae.history_["train_loss"]
    Z = ae.encode(X)                            # (n, latent_dim)
    X_hat = ae.decode(Z)                        # (n, 64)

Inputs and outputs are always flat ``(n, D)`` rows; the convolutional autoencoder reshapes to
``(n, c, h, w)`` inside its networks. Builders: :func:`dense_autoencoder`,
:func:`linear_autoencoder` (no activations: spans the PCA subspace, REP.7-REP.8) and
:func:`conv_autoencoder`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.models._conv import check_two_stage_conv, conv_decoder_layers, conv_encoder_layers
from nprefgen.nn import (
    Flatten, Linear, MLP, Module, Sequential, bce_with_logits_loss, mse_loss, sigmoid,
)
from nprefgen.models._files import load_networks, save_networks
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.train import fit_loop_keeping_adam, validation_split

LOSSES = ("mse", "bce")


def reconstruction_loss(kind: str, out: np.ndarray, X: np.ndarray):
    """(REP.9) the reconstruction loss and its gradient w.r.t. the decoder output ``out``.

    "mse": mean over all n D entries of (out - x)^2 (NN.11); "bce": the decoder outputs logits
    and the loss is the mean Bernoulli cross-entropy with targets x in [0, 1] (NN.12).
    out, X: (n, D) -> (loss, d_out: (n, D))
    """
    if kind == "mse":
        return mse_loss(out, X)
    return bce_with_logits_loss(out, X)


class Autoencoder:
    """An encoder/decoder pair trained by reconstruction (REP.9).

    Parameters
    ----------
    encoder : Module, (n, D) -> (n, latent_dim)
    decoder : Module, (n, latent_dim) -> (n, D); outputs logits when ``loss="bce"``
    loss : {"mse", "bce"}
        "bce" needs data in [0, 1]; :meth:`decode` then applies the sigmoid.
    """

    def __init__(self, encoder: Module, decoder: Module, *, in_features: int, latent_dim: int,
                 loss: str = "mse") -> None:
        if not isinstance(encoder, Module):
            raise ValueError(f"encoder: expected an nprefgen.nn.Module, got {type(encoder).__name__}")
        if not isinstance(decoder, Module):
            raise ValueError(f"decoder: expected an nprefgen.nn.Module, got {type(decoder).__name__}")
        self.encoder = encoder
        self.decoder = decoder
        self.in_features = check_int(in_features, "in_features", low=1)
        self.latent_dim = check_int(latent_dim, "latent_dim", low=1)
        self.loss = check_choice(loss, "loss", LOSSES)
        self.history_: dict | None = None          # set by fit

    # -- the public API ----------------------------------------------------------------------
    def _check_X(self, X, name: str = "X") -> np.ndarray:
        return check_array(X, name, shape=(None, self.in_features))

    def encode(self, X) -> np.ndarray:
        """X: (n, D) -> Z: (n, latent_dim)."""
        return self.encoder.forward(self._check_X(X))[0]

    def decode(self, Z) -> np.ndarray:
        """Z: (n, latent_dim) -> X_hat: (n, D) (sigmoid of the logits for ``loss="bce"``)."""
        Z = check_array(Z, "Z", shape=(None, self.latent_dim))
        out = self.decoder.forward(Z)[0]
        return sigmoid(out) if self.loss == "bce" else out

    def reconstruct(self, X) -> np.ndarray:
        """X: (n, D) -> g(f(X)): (n, D)."""
        return self.decode(self.encode(X))

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return self.encoder.parameters() + self.decoder.parameters()

    def zero_grad(self) -> None:
        self.encoder.zero_grad()
        self.decoder.zero_grad()

    def num_parameters(self) -> int:
        return self.encoder.num_parameters() + self.decoder.num_parameters()

    # -- training ----------------------------------------------------------------------------
    def loss_and_grad(self, X: np.ndarray) -> float:
        """(REP.9) loss of one batch X: (n, D); adds its gradients into the networks' grads."""
        Z, c_enc = self.encoder.forward(X)
        out, c_dec = self.decoder.forward(Z)
        loss, d_out = reconstruction_loss(self.loss, out, X)
        d_Z = self.decoder.backward(c_dec, d_out)          # (NN.10) chain rule, decoder first
        self.encoder.backward(c_enc, d_Z)
        return loss

    def evaluate(self, X) -> float:
        """Mean reconstruction loss (REP.9) of X: (n, D), no gradients."""
        X = self._check_X(X)
        out = self.decoder.forward(self.encoder.forward(X)[0])[0]
        return reconstruction_loss(self.loss, out, X)[0]

    def fit(self, X, *, rng=None, epochs: int = 20, batch_size: int | None = 64,
            lr: float = 1e-3, weight_decay: float = 0.0, X_val=None,
            validation_fraction: float = 0.0, patience: int | None = None,
            clip: float | None = None, on_divergence: str = "raise",
            progress: bool | None = True) -> "Autoencoder":
        """Minimise :meth:`loss_and_grad` (REP.9) with Adam on shuffled minibatches, by
        :func:`nprefgen.nn.train.fit_loop`.

        X: (n, D); X_val: (m, D) a fixed validation set, or ``validation_fraction`` of X held out
        (default 0: the training loss is monitored). ``batch_size=None`` trains full-batch;
        ``patience`` stops early (None: never); ``clip`` clips the gradient norm (NN.17). The
        weights of the best monitored epoch are restored; a diverging loss restores them and
        raises :class:`nprefgen.nn.train.TrainingDivergedError` (``on_divergence="warn"``: warns).
        A second ``fit`` continues from the current weights and, with the same lr and
        weight_decay, the same Adam state. Returns ``self``; ``self.history_`` holds
        ``{"train_loss", "val_loss", "best_epoch", "epochs", "stopped", "message"}``.
        """
        X = self._check_X(X)
        if self.loss == "bce" and (X.min() < 0 or X.max() > 1):
            raise ValueError(f"X: loss='bce' expects data in [0, 1], got range "
                             f"[{X.min():.3g}, {X.max():.3g}]")
        if X_val is not None:
            X_val = self._check_X(X_val, "X_val")
        rng = check_rng(rng)
        check_int(epochs, "epochs", low=1)
        lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        if X_val is None:
            train, val = validation_split(X.shape[0], validation_fraction, rng=rng)
            X, X_val = X[train], (X[val] if val.size else None)
        self.history_ = fit_loop_keeping_adam(
            self, self.loss_and_grad, (X,), lr=lr, weight_decay=weight_decay, rng=rng,
            evaluate=self.evaluate, val_data=None if X_val is None else (X_val,), epochs=epochs,
            batch_size=batch_size, clip=clip, patience=patience, on_divergence=on_divergence,
            progress=progress, desc="Autoencoder.fit")
        return self

    # -- files -------------------------------------------------------------------------------
    def _networks(self) -> Module:
        """encoder and decoder as children of one module: state_dict names ``encoder.<name>``
        and ``decoder.<name>`` (PyTorch's, for a module with these two attributes)."""
        both = Module()
        both.add_child("encoder", self.encoder)
        both.add_child("decoder", self.decoder)
        return both

    def _config(self) -> dict:
        return {"in_features": self.in_features, "latent_dim": self.latent_dim, "loss": self.loss}

    def save(self, path) -> None:
        """Write the weights of encoder and decoder, the hyper-parameters and ``history_`` to
        ``.npz`` at ``path`` by :func:`nprefgen.nn.io.save_npz` (atomic: a failed save leaves an
        existing file byte-identical; non-finite weights are refused). The optimizer state is
        not saved: a ``fit`` after ``load`` starts a fresh Adam."""
        save_networks(path, "Autoencoder", self._networks(), self._config(), self.history_)

    def load(self, path) -> "Autoencoder":
        """Load weights saved by :meth:`save` into this identically built model; returns self.

        All or nothing (:func:`nprefgen.nn.io.load_npz`): parameter names, shapes, dtypes,
        finite values, the class and the hyper-parameters are checked before any weight is
        assigned; a bad file raises ValueError naming ``path`` and the field and leaves the
        model unchanged."""
        return load_networks(self, path, "Autoencoder", self._networks(), self._config())

    def __repr__(self) -> str:
        return (f"Autoencoder(in_features={self.in_features}, latent_dim={self.latent_dim}, "
                f"loss={self.loss!r}, parameters={self.num_parameters()})")


# -- builders -----------------------------------------------------------------------------------

def dense_autoencoder(in_features: int, latent_dim: int, hidden: Sequence[int] = (128, 64), *,
                      rng=None, activation: str = "relu",
                      loss: str = "mse") -> Autoencoder:
    """MLP encoder ``in -> hidden -> latent`` and the mirrored MLP decoder.

    The latent layer and the decoder output are linear (logits for ``loss="bce"``). ``rng``:
    None, an int seed or a Generator (SPEC 7), the initial weights.
    """
    rng = check_rng(rng)
    in_features = check_int(in_features, "in_features", low=1)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    hidden = [check_int(h, "hidden", low=1) for h in hidden]
    enc = MLP(in_features, hidden, latent_dim, rng=rng, activation=activation)
    dec = MLP(latent_dim, hidden[::-1], in_features, rng=rng, activation=activation)
    return Autoencoder(enc, dec, in_features=in_features, latent_dim=latent_dim, loss=loss)


def linear_autoencoder(in_features: int, latent_dim: int, *, rng=None,
                       bias: bool = True) -> Autoencoder:
    """(REP.7) x_hat = W_d (W_e x + b_e) + b_d: no activation functions, squared error.

    ``encoder`` is ``Linear(D, k)`` (weight W_e: (k, D)), ``decoder`` is ``Linear(k, D)``
    (weight W_d: (D, k)). At a global minimum the columns of W_d span the top-k principal
    subspace (REP.8).
    """
    rng = check_rng(rng)
    in_features = check_int(in_features, "in_features", low=1)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    enc = Linear(in_features, latent_dim, rng=rng, bias=bias)
    dec = Linear(latent_dim, in_features, rng=rng, bias=bias)
    return Autoencoder(enc, dec, in_features=in_features, latent_dim=latent_dim, loss="mse")


def conv_autoencoder(image_shape: Sequence[int], latent_dim: int, channels: Sequence[int] = (16, 32),
                     *, rng=None, loss: str = "mse",
                     activation: str = "relu") -> Autoencoder:
    """Convolutional autoencoder for ``(c, h, w)`` images with h and w divisible by 4.

    Encoder: Reshape(c, h, w) -> [Conv2d(3x3, stride 2, padding 1) -> act] x 2 -> Flatten ->
    Linear(latent). Decoder: Linear -> act -> Reshape -> ConvTranspose2d(3x3, stride 2,
    padding 1, output_padding 1) -> act -> ConvTranspose2d -> Flatten. ``activation`` names an
    entry of ``nprefgen.nn.activations.ACTIVATIONS`` (ReLU by default). Each stride-2 layer halves
    (or doubles) the spatial size, so 8x8 -> 4x4 -> 2x2 and 28x28 -> 14x14 -> 7x7.
    Inputs and outputs are flat (n, c h w) rows.
    """
    rng = check_rng(rng)
    c, h, w, c1, c2 = check_two_stage_conv(image_shape, channels)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    act = ACTIVATIONS[check_choice(activation, "activation", ACTIVATIONS)]
    enc = Sequential(*conv_encoder_layers((c, h, w), (c1, c2), latent_dim, act, rng=rng))
    dec = Sequential(*conv_decoder_layers(latent_dim, (c, h, w), (c1, c2), act, rng=rng), Flatten())
    return Autoencoder(enc, dec, in_features=c * h * w, latent_dim=latent_dim, loss=loss)
