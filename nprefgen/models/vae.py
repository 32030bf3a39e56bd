"""Variational autoencoders with hand-written gradients and importance-weighted bounds
(derivations/vae.md, VAE.1-VAE.16).

:class:`VAE` holds an encoder network ``(n, D) -> (n, 2d)`` (the first d outputs are mu, the
last d the log-variance of q(z | x), VAE.1) and a decoder network ``(n, d) -> (n, D)`` (Bernoulli
logits, or Gaussian means with a fixed or learned scalar variance)::

    vae = dense_vae(64, latent_dim=2, rng=0)
    vae.fit(X, rng=0, epochs=50)                   # X: (n, 64) in [0, 1]
    mu, log_var = vae.encode(X)                    # (n, 2) each
    X_new = vae.sample(16, rng=1)                  # (16, 64) decoder means at z ~ N(0, I)
    lp = vae.log_prob_iwae(X, k=5000, rng=2)       # (n,) IWAE bound L_5000 per row

The one-sample gradient is a deterministic function of (x, eps): :meth:`VAE.elbo_and_grad`
takes ``eps`` or draws it from ``rng``, and the dot-product test checks it with eps fixed.
Data are flat ``(n, D)`` rows; a convolutional VAE also accepts ``(n, c, h, w)`` images of its
``image_shape``. Builders: :func:`dense_vae`, :func:`conv_vae`, :func:`linear_gaussian_vae`
(probabilistic PCA as a VAE, VAE.16); :func:`load_vae` rebuilds a saved builder-made VAE.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from nprefgen._validation import (
    check_array, check_choice, check_int, check_rng, check_scalar,
)
from nprefgen.models._conv import check_two_stage_conv, conv_decoder_layers, conv_encoder_layers
from nprefgen.kernels.elbo import bernoulli_log_lik, elbo as elbo_kernel, gaussian_log_lik
from nprefgen.nn import (
    Flatten, Linear, MLP, Module, Sequential, load_npz, read_npz, save_npz, sigmoid,
)
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.train import fit_loop_keeping_adam, validation_split

LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------
# The reparameterisation and its VJP, pure functions
# --------------------------------------------------------------------------------------------
def reparameterize(mu: np.ndarray, log_var: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """(VAE.5) z = mu + exp(log_var / 2) * eps. mu, log_var: (n, d); eps: (n, d) or (k, n, d)
    (broadcast over the k importance samples) -> z shaped like eps."""
    return mu + np.exp(0.5 * log_var) * eps


def reparameterize_backward(log_var: np.ndarray, eps: np.ndarray, d_z: np.ndarray):
    """(VAE.6) VJP of (VAE.5) with eps fixed: d_mu = d_z,
    d_log_var = d_z * exp(log_var / 2) * eps / 2.

    d_z: shaped like eps, (n, d) or (k, n, d); a leading k axis is summed
    -> (d_mu, d_log_var): (n, d) each
    """
    d_lv = 0.5 * d_z * np.exp(0.5 * log_var) * eps
    if d_z.ndim == 3:
        return d_z.sum(axis=0), d_lv.sum(axis=0)
    return d_z, d_lv


def log_importance_weights(log_lik: np.ndarray, z: np.ndarray, log_var: np.ndarray,
                           eps: np.ndarray) -> np.ndarray:
    """(VAE.12) log w = log p(x | z) + log p(z) - log q(z | x) with z = mu + sigma eps:
    log_lik - |z|^2 / 2 + sum_j (log_var_j + eps_j^2) / 2 (the log 2 pi terms cancel).

    log_lik: (k, n); z, eps: (k, n, d); log_var: (n, d) -> (k, n)
    """
    return log_lik - 0.5 * np.sum(z * z, axis=-1) + 0.5 * np.sum(log_var + eps * eps, axis=-1)


def _streaming_logsumexp(state, a: np.ndarray):
    """(VAE.14) fold a batch a: (kb, n) into the running (max M: (n,), scaled sum S: (n,))."""
    m_b = a.max(axis=0)
    if state is None:
        return m_b, np.exp(a - m_b).sum(axis=0)
    M, S = state
    M_new = np.maximum(M, m_b)
    return M_new, S * np.exp(M - M_new) + np.exp(a - M_new).sum(axis=0)


class _Networks(Module):
    """The VAE's trainable parts as one Module: children ``encoder``, ``decoder`` and, for a
    Gaussian decoder with a learned variance, the scalar parameter ``decoder_log_var`` (1,).
    Only a parameter holder (save/load, optimizers); the VAE runs the two networks itself."""

    def __init__(self, encoder: Module, decoder: Module, learned_log_var: float | None) -> None:
        super().__init__()
        self.add_child("encoder", encoder)
        self.add_child("decoder", decoder)
        if learned_log_var is not None:
            self.add_param("decoder_log_var", np.array([learned_log_var], dtype=np.float64))


class VAE:
    """A variational autoencoder (VAE.1) trained on the beta-weighted ELBO (VAE.2) or the IWAE
    bound (VAE.12).

    Parameters
    ----------
    encoder : Module, (n, D) -> (n, 2 latent_dim): [mu, log_var] of q(z | x)
    decoder : Module, (n, latent_dim) -> (n, D): logits ("bernoulli") or means ("gaussian")
    in_features, latent_dim : D and d
    likelihood : {"bernoulli", "gaussian"}
        "bernoulli" needs data in [0, 1] (VAE.7); "gaussian" uses (VAE.9).
    decoder_var : "learned" or a positive float
        Gaussian decoder variance: one learned scalar (initialised at 1), or fixed.
    beta : float >= 0, the KL weight of (VAE.2)
    image_shape : (c, h, w) or None; when given, ``(n, c, h, w)`` inputs are accepted too
    """

    def __init__(self, encoder: Module, decoder: Module, *, in_features: int, latent_dim: int,
                 likelihood: str = "bernoulli", decoder_var="learned", beta: float = 1.0,
                 image_shape: Sequence[int] | None = None, config: dict | None = None) -> None:
        for name, net in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(net, Module):
                raise ValueError(f"{name}: expected an nprefgen.nn.Module, "
                                 f"got {type(net).__name__}")
        self.in_features = check_int(in_features, "in_features", low=1)
        self.latent_dim = check_int(latent_dim, "latent_dim", low=1)
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.beta = check_scalar(beta, "beta", low=0.0)
        learned = None
        self.fixed_log_var = None
        if self.likelihood == "gaussian":
            if isinstance(decoder_var, str) and decoder_var == "learned":
                learned = 0.0
            else:
                var = check_scalar(decoder_var, "decoder_var", low=0.0, low_inclusive=False)
                self.fixed_log_var = float(np.log(var))
        self.decoder_var = decoder_var
        self.image_shape = None
        if image_shape is not None:
            shape = tuple(check_int(s, "image_shape", low=1) for s in image_shape)
            if len(shape) != 3 or int(np.prod(shape)) != self.in_features:
                raise ValueError(f"image_shape: expected (c, h, w) with c h w = in_features = "
                                 f"{self.in_features}, got {tuple(image_shape)}")
            self.image_shape = shape
        self.nets = _Networks(encoder, decoder, learned)
        self.encoder, self.decoder = encoder, decoder
        self.config = config
        self.history_: dict = {}

    # -- input checks ------------------------------------------------------------------------
    def _check_x(self, x, name: str = "x") -> np.ndarray:
        """(n, D) rows, or (n, c, h, w) images of ``image_shape``, finite -> (n, D) float64."""
        x = check_array(x, name, ndim=(2, 4), dtype=np.float64)
        if x.ndim == 4:
            if self.image_shape is None or x.shape[1:] != self.image_shape:
                want = f"(n, {self.in_features})"
                if self.image_shape is not None:
                    want += " or (n, {}, {}, {})".format(*self.image_shape)
                raise ValueError(f"{name}: expected shape {want}, got {x.shape}")
            x = x.reshape(x.shape[0], -1)
        elif x.shape[1] != self.in_features:
            raise ValueError(f"{name}: expected shape (n, {self.in_features}), got {x.shape}")
        if self.likelihood == "bernoulli" and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(f"{name}: the Bernoulli likelihood expects values in [0, 1], got "
                             f"range [{x.min():.4g}, {x.max():.4g}]")
        return x

    def _check_eps(self, eps, shape: tuple, rng) -> np.ndarray:
        if eps is None:
            return check_rng(rng).standard_normal(shape)
        return check_array(eps, "eps", shape=shape, dtype=np.float64)

    def _check_weights(self, weights, n: int) -> np.ndarray:
        if weights is None:
            return np.ones(n)
        return check_array(weights, "weights", shape=(n,), dtype=np.float64)

    # -- the two networks --------------------------------------------------------------------
    def _encode(self, x: np.ndarray):
        """(VAE.1) x: (n, D) -> mu, log_var: (n, d) each, and the encoder cache."""
        h, cache = self.encoder.forward(x)
        if h.shape != (x.shape[0], 2 * self.latent_dim):
            raise ValueError(f"encoder: expected outputs of shape (n, {2 * self.latent_dim}) "
                             f"(mu and log_var), got {h.shape}")
        d = self.latent_dim
        return h[:, :d], h[:, d:], cache

    @property
    def _decoder_log_var(self) -> float:
        if "decoder_log_var" in self.nets.params:
            return float(self.nets.params["decoder_log_var"][0])
        return self.fixed_log_var

    def _log_lik(self, x: np.ndarray, out: np.ndarray):
        """log p(x | z) per row from the decoder output out: (m, D) and the data x: (m, D).

        Returns (log_lik: (m,), d_out: (m, D), d_x: (m, D), d_log_var: (m,) or None): the
        derivatives of each row's log-likelihood w.r.t. the decoder output (VAE.8), (VAE.10), the
        data (the target path) and a learned decoder log-variance (summed over the row)."""
        if self.likelihood == "bernoulli":
            log_lik, d_out = bernoulli_log_lik(x, out)                 # (VAE.7), (VAE.8)
            return log_lik, d_out, out, None                            # d/dx = a   (VAE.8)
        log_var = np.full(out.shape, self._decoder_log_var)
        log_lik, d_out, d_lv = gaussian_log_lik(x, out, log_var)       # (VAE.9), (VAE.10)
        d_lv_row = d_lv.sum(axis=1) if self.fixed_log_var is None else None
        return log_lik, d_out, -d_out, d_lv_row                         # d/dx = -r e^{-l}

    # -- the public API ----------------------------------------------------------------------
    def encode(self, x):
        """(VAE.1) q(z | x): x (n, D) or (n, c, h, w) -> (mu: (n, d), log_var: (n, d))."""
        mu, log_var, _ = self._encode(self._check_x(x))
        return mu, log_var

    def decode(self, z):
        """Mean of p(x | z): z (n, d) -> (n, D), sigmoid(logits) or the Gaussian mean."""
        z = check_array(z, "z", shape=(None, self.latent_dim), dtype=np.float64)
        out = self.decoder.forward(z)[0]
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    def reconstruct(self, x):
        """Decoder mean at the encoder mean: x (n, D) -> (n, D)."""
        return self.decode(self.encode(x)[0])

    def sample(self, n: int, *, rng=None, mean: bool = True):
        """(VAE.1) z ~ N(0, I), then the decoder mean (``mean=True``) or x ~ p(x | z): (n, D)."""
        n = check_int(n, "n", low=1)
        rng = check_rng(rng)
        m = self.decode(rng.standard_normal((n, self.latent_dim)))
        if mean:
            return m
        if self.likelihood == "bernoulli":
            return (rng.random(m.shape) < m).astype(np.float64)
        return m + np.exp(0.5 * self._decoder_log_var) * rng.standard_normal(m.shape)

    def elbo(self, x, *, rng=None, n_samples: int = 1) -> np.ndarray:
        """(VAE.2) per-row ELBO with the analytic KL and ``n_samples`` draws for the
        reconstruction term: x (n, D) -> (n,)."""
        x = self._check_x(x)
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_rng(rng)
        mu, log_var, _ = self._encode(x)
        total = np.zeros(x.shape[0])
        for _ in range(n_samples):
            z = reparameterize(mu, log_var, rng.standard_normal(mu.shape))
            total += self._log_lik(x, self.decoder.forward(z)[0])[0]
        out, _, _ = elbo_kernel(total / n_samples, mu, log_var, self.beta)
        return out

    def elbo_and_grad(self, x, eps=None, *, rng=None, weights=None):
        """(VAE.11) one-sample ELBO per row and the gradients of S = sum_i weights_i ELBO_i.

        x: (n, D) or images; eps: (n, d) or None (drawn from ``rng``); weights: (n,), default
        ones (training uses -1/n). Parameter gradients of S are *added* into the networks'
        grads (call ``zero_grad`` first). Returns (elbo: (n,), d_x: (n, D)).
        """
        x = self._check_x(x)
        n, d = x.shape[0], self.latent_dim
        eps = self._check_eps(eps, (n, d), rng)
        c = self._check_weights(weights, n)[:, None]
        mu, log_var, c_enc = self._encode(x)
        z = reparameterize(mu, log_var, eps)                            # (VAE.5)
        out, c_dec = self.decoder.forward(z)
        log_lik, d_out, d_x_lik, d_lv_x = self._log_lik(x, out)
        value, d_mu_kl, d_lv_kl = elbo_kernel(log_lik, mu, log_var, self.beta)  # (VAE.2)-(VAE.4)
        d_z = self.decoder.backward(c_dec, c * d_out)                  # (VAE.11)
        d_mu, d_lv = reparameterize_backward(log_var, eps, d_z)        # (VAE.6)
        d_h = np.concatenate([d_mu + c * d_mu_kl, d_lv + c * d_lv_kl], axis=1)
        d_x = self.encoder.backward(c_enc, d_h) + c * d_x_lik
        if d_lv_x is not None:
            self.nets.grads["decoder_log_var"] += np.sum(c[:, 0] * d_lv_x)
        return value, d_x

    def iwae_and_grad(self, x, k: int, eps=None, *, rng=None, weights=None):
        """(VAE.15) the k-sample IWAE estimate per row (VAE.12) and the gradients of
        S = sum_i weights_i L_k(x_i), eps fixed.

        x: (n, D); eps: (k, n, d) or None; weights: (n,) (default ones). Parameter gradients
        are added into the grads. Returns (L_k: (n,), d_x: (n, D)). Memory grows as k n D:
        for evaluation at large k use :meth:`log_prob_iwae`.
        """
        x = self._check_x(x)
        k = check_int(k, "k", low=1)
        n, d = x.shape[0], self.latent_dim
        eps = self._check_eps(eps, (k, n, d), rng)
        c = self._check_weights(weights, n)
        mu, log_var, c_enc = self._encode(x)
        z = reparameterize(mu, log_var, eps)                            # (k, n, d) (VAE.5)
        x_rep = np.broadcast_to(x, (k,) + x.shape).reshape(k * n, -1)
        out, c_dec = self.decoder.forward(z.reshape(k * n, d))
        log_lik, d_out, d_x_lik, d_lv_x = self._log_lik(x_rep, out)
        log_w = log_importance_weights(log_lik.reshape(k, n), z, log_var, eps)   # (VAE.12)
        m = log_w.max(axis=0)
        w_tilde = np.exp(log_w - m)
        total = w_tilde.sum(axis=0)
        value = m + np.log(total) - np.log(k)
        w_tilde = c * (w_tilde / total)                                 # c_i w~_is: (k, n)
        cw = w_tilde.reshape(k * n, 1)
        d_z = self.decoder.backward(c_dec, cw * d_out).reshape(k, n, d)
        d_z = d_z - w_tilde[:, :, None] * z                             # (VAE.15) log p(z) path
        d_mu, d_lv = reparameterize_backward(log_var, eps, d_z)        # (VAE.6), summed over s
        d_lv = d_lv + 0.5 * c[:, None]                                  # direct log q term
        d_x = self.encoder.backward(c_enc, np.concatenate([d_mu, d_lv], axis=1))
        d_x = d_x + (cw * d_x_lik).reshape(k, n, -1).sum(axis=0)
        if d_lv_x is not None:
            self.nets.grads["decoder_log_var"] += np.sum(cw[:, 0] * d_lv_x)
        return value, d_x

    def log_prob_iwae(self, x, k: int = 1000, *, rng=None, batch: int = 4096) -> np.ndarray:
        """(VAE.12)-(VAE.14) the IWAE bound L_k per row, an estimate of log p(x) from below
        (VAE.13).

        x: (n, D); k >= 1 importance samples; ``batch`` bounds the number of decoder rows per
        pass (data rows x particles), so the decoder's memory stays O(batch D) for any k (the
        noise of one pass over the data, O(n d), is drawn at once). The result does not depend
        on ``batch``: the noise stream is consumed in the same order. -> (n,)
        """
        x = self._check_x(x)
        k = check_int(k, "k", low=1)
        batch = check_int(batch, "batch", low=1)
        rng = check_rng(rng)
        n, d = x.shape[0], self.latent_dim
        mu, log_var, _ = self._encode(x)
        rows = min(n, batch)                                            # data rows per pass
        kb = max(1, batch // rows)                                      # particles per pass
        state = None
        for s0 in range(0, k, kb):
            ks = min(kb, k - s0)
            # (ks, n, d) in C order: the noise stream is consumed in the same order for any batch
            eps = rng.standard_normal((ks, n, d))
            z = reparameterize(mu, log_var, eps)                        # (VAE.5)
            log_lik = np.empty((ks, n))
            for r0 in range(0, n, rows):
                zb = z[:, r0:r0 + rows]
                nb = zb.shape[1]
                dec = self.decoder.forward(zb.reshape(ks * nb, d))[0]
                xb = np.broadcast_to(x[r0:r0 + rows], (ks, nb, x.shape[1])).reshape(ks * nb, -1)
                log_lik[:, r0:r0 + nb] = self._log_lik(xb, dec)[0].reshape(ks, nb)
            log_w = log_importance_weights(log_lik, z, log_var, eps)    # (VAE.12)
            state = _streaming_logsumexp(state, log_w)                  # (VAE.14)
        M, S = state
        out = M + np.log(S) - np.log(k)
        return out

    def loss_and_grad(self, x, *, rng=None, objective: str = "elbo", k: int = 1) -> float:
        """The training loss of a batch, the mean negative ELBO (or IWAE bound with ``k``
        samples for ``objective="iwae"``); its parameter gradients are added into the grads."""
        x = self._check_x(x)
        w = np.full(x.shape[0], -1.0 / x.shape[0])
        if check_choice(objective, "objective", ("elbo", "iwae")) == "iwae":
            value, _ = self.iwae_and_grad(x, k, rng=rng, weights=w)
        else:
            value, _ = self.elbo_and_grad(x, rng=rng, weights=w)
        return -float(np.mean(value))

    # -- parameters --------------------------------------------------------------------------
    def parameters(self):
        return self.nets.parameters()

    def zero_grad(self) -> None:
        self.nets.zero_grad()

    def num_parameters(self) -> int:
        return self.nets.num_parameters()

    # -- training ----------------------------------------------------------------------------
    def fit(self, x, *, rng=None, epochs: int = 50, batch_size: int | None = 128,
            lr: float = 1e-3, weight_decay: float = 0.0, x_val=None,
            validation_fraction: float = 0.0, patience: int | None = None,
            clip: float | None = None, objective: str = "elbo", k: int = 1,
            on_divergence: str = "raise", progress: bool | None = True) -> "VAE":
        """Minimise :meth:`loss_and_grad` (the mean negative ELBO, or the negative IWAE bound
        with ``k`` samples for ``objective="iwae"``) with Adam on shuffled minibatches, by the
        shared loop :func:`nprefgen.nn.train.fit_loop_keeping_adam`.

        x: (n, D) or images; x_val: a fixed validation set, or ``validation_fraction`` of x held
        out (default 0: the training loss is monitored). The validation loss is the same
        objective, estimated with fresh noise. ``patience`` stops early (None: never); ``clip``
        clips the gradient norm (NN.17). The weights of the best monitored epoch are restored; a
        diverging loss restores them and raises :class:`nprefgen.nn.train.TrainingDivergedError`
        (``on_divergence="warn"``: warns). A second ``fit`` with the same lr and weight_decay
        continues with the same Adam state. Returns ``self``; ``self.history_`` holds
        ``{"train_loss", "val_loss", "best_epoch", "epochs", "stopped", "message"}`` (nats per
        row).
        """
        x = self._check_x(x)
        if x_val is not None:
            x_val = self._check_x(x_val, "x_val")
        rng = check_rng(rng)
        check_int(epochs, "epochs", low=1)
        lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        objective = check_choice(objective, "objective", ("elbo", "iwae"))
        k = check_int(k, "k", low=1)
        if x_val is None:
            train, val = validation_split(x.shape[0], validation_fraction, rng=rng)
            x, x_val = x[train], (x[val] if val.size else None)
        def loss_and_grad(xb):
            return self.loss_and_grad(xb, rng=rng, objective=objective, k=k)

        def evaluate(xv):
            if objective == "iwae":
                return -float(np.mean(self.log_prob_iwae(xv, k, rng=rng)))
            return -float(np.mean(self.elbo(xv, rng=rng)))

        self.history_ = fit_loop_keeping_adam(
            self, loss_and_grad, (x,), lr=lr, weight_decay=weight_decay, rng=rng,
            evaluate=evaluate, val_data=None if x_val is None else (x_val,), epochs=epochs,
            batch_size=batch_size, clip=clip, patience=patience, on_divergence=on_divergence,
            progress=progress, desc="VAE.fit")
        return self

    # -- files -------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Parameters (and the builder configuration, if any) to ``.npz``, written to a
        temporary file and renamed over ``path`` (:func:`nprefgen.nn.io.save_npz`)."""
        meta = {"beta": np.array(self.beta)}
        if self.config is not None:
            meta["vae_config"] = np.array(json.dumps(self.config))
        save_npz(path, self.nets, meta=meta)       # atomic (nprefgen.nn.io.atomic_write)

    def load(self, path) -> "VAE":
        """Load parameters saved by :meth:`save` into this (identically built) VAE."""
        meta = load_npz(path, self.nets)
        if "beta" in meta:
            self.beta = float(meta["beta"])
        return self

    def __repr__(self) -> str:
        return (f"VAE(in_features={self.in_features}, latent_dim={self.latent_dim}, "
                f"likelihood={self.likelihood!r}, beta={self.beta}, "
                f"parameters={self.num_parameters()})")


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------
def dense_vae(in_features: int, latent_dim: int, hidden: Sequence[int] = (128, 64), *, rng=None,
              activation: str = "relu", likelihood: str = "bernoulli", decoder_var="learned",
              beta: float = 1.0) -> VAE:
    """MLP encoder ``D -> hidden -> 2d`` and mirrored MLP decoder ``d -> hidden[::-1] -> D``."""
    rng = check_rng(rng)
    in_features = check_int(in_features, "in_features", low=1)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    hidden = [check_int(h, "hidden", low=1) for h in hidden]
    config = {"builder": "dense_vae", "in_features": in_features, "latent_dim": latent_dim,
              "hidden": hidden, "activation": activation, "likelihood": likelihood,
              "decoder_var": decoder_var, "beta": beta}
    enc = MLP(in_features, hidden, 2 * latent_dim, rng=rng, activation=activation)
    dec = MLP(latent_dim, hidden[::-1], in_features, rng=rng, activation=activation)
    return VAE(enc, dec, in_features=in_features, latent_dim=latent_dim, likelihood=likelihood,
               decoder_var=decoder_var, beta=beta, config=config)


def conv_vae(image_shape: Sequence[int], latent_dim: int, channels: Sequence[int] = (16, 32), *,
             rng=None, activation: str = "relu", likelihood: str = "bernoulli",
             decoder_var="learned", beta: float = 1.0) -> VAE:
    """Convolutional VAE for ``(c, h, w)`` images, h and w divisible by 4.

    Encoder: Reshape -> [Conv2d(3x3, stride 2, padding 1) -> act] x 2 -> Flatten -> Linear(2d).
    Decoder: Linear -> act -> Reshape -> ConvTranspose2d(3x3, stride 2, padding 1,
    output_padding 1) -> act -> ConvTranspose2d -> Flatten (logits or means, (n, c h w)).
    """
    rng = check_rng(rng)
    c, h, w, c1, c2 = check_two_stage_conv(image_shape, channels)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    act = ACTIVATIONS[check_choice(activation, "activation", ACTIVATIONS)]
    config = {"builder": "conv_vae", "image_shape": [c, h, w], "latent_dim": latent_dim,
              "channels": [c1, c2], "activation": activation, "likelihood": likelihood,
              "decoder_var": decoder_var, "beta": beta}
    enc = Sequential(*conv_encoder_layers((c, h, w), (c1, c2), 2 * latent_dim, act, rng=rng))
    dec = Sequential(*conv_decoder_layers(latent_dim, (c, h, w), (c1, c2), act, rng=rng), Flatten())
    return VAE(enc, dec, in_features=c * h * w, latent_dim=latent_dim, likelihood=likelihood,
               decoder_var=decoder_var, beta=beta, image_shape=(c, h, w), config=config)


def linear_gaussian_vae(in_features: int, latent_dim: int, *, rng=None) -> VAE:
    """(VAE.16) probabilistic PCA as a VAE: linear encoder ``Linear(D, 2d)``, linear decoder
    ``Linear(d, D)`` (weight W: (D, d), bias b) and one learned noise variance sigma^2."""
    rng = check_rng(rng)
    in_features = check_int(in_features, "in_features", low=1)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    config = {"builder": "linear_gaussian_vae", "in_features": in_features,
              "latent_dim": latent_dim}
    return VAE(Linear(in_features, 2 * latent_dim, rng=rng),
               Linear(latent_dim, in_features, rng=rng),
               in_features=in_features, latent_dim=latent_dim, likelihood="gaussian",
               decoder_var="learned", config=config)


def ppca_ml(x, latent_dim: int):
    """(VAE.16) the probabilistic-PCA maximum-likelihood fit (Tipping & Bishop 1999).

    x: (n, D); latent_dim d < D -> (mean: (D,), W: (D, d), sigma2: float, C: (D, D) the model
    covariance W W^T + sigma2 I, log_lik: the mean log-likelihood per row at the optimum)."""
    x = check_array(x, "x", ndim=2, dtype=np.float64)
    n, D = x.shape
    d = check_int(latent_dim, "latent_dim", low=1, high=D - 1)
    mean = x.mean(axis=0)
    S = (x - mean).T @ (x - mean) / n
    lam, U = np.linalg.eigh(S)
    lam, U = lam[::-1], U[:, ::-1]
    sigma2 = float(lam[d:].mean())
    W = U[:, :d] * np.sqrt(np.maximum(lam[:d] - sigma2, 0.0))
    C = W @ W.T + sigma2 * np.eye(D)
    _, logdet = np.linalg.slogdet(C)
    log_lik = -0.5 * (D * _LOG_2PI + logdet + np.trace(np.linalg.solve(C, S)))
    return mean, W, sigma2, C, float(log_lik)


_BUILDERS = {"dense_vae": dense_vae, "conv_vae": conv_vae,
             "linear_gaussian_vae": linear_gaussian_vae}


def load_vae(path) -> VAE:
    """Rebuild a VAE saved by :meth:`VAE.save` from its stored builder configuration."""
    arrays = read_npz(path)
    key = "__meta__.vae_config"
    if key not in arrays:
        raise ValueError(f"path: {os.fspath(path)!r} holds no VAE builder configuration; build the "
                         f"same VAE and call vae.load(path) instead")
    try:
        config = json.loads(str(arrays[key]))
        builder = _BUILDERS[config.pop("builder")]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"path: {os.fspath(path)!r} holds an unreadable VAE configuration "
                         f"({exc})") from exc
    if "image_shape" in config:
        config["image_shape"] = tuple(config["image_shape"])
    return builder(**config, rng=0).load(path)
