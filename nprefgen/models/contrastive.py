"""Contrastive self-supervised learning (SimCLR): a siamese encoder + projection head trained by
the NT-Xent loss on two augmented views of each image (derivations/representation.md,
REP.12-REP.16).

One training step::

    x_a, x_b = augment(x, rng), augment(x, rng)          # two views of each of N images
    h_a = f(x_a), h_b = f(x_b)                           # the SAME encoder f, two forward calls
    z_a = g(h_a), z_b = g(h_b)                           # the SAME projection head g
    L = NT-Xent([z_a; z_b], tau)                         # (REP.13), gradient (REP.14-REP.15)
    backward through g and f for view a, then for view b # (REP.16) grads add up in f.grads
    one Adam step

The layers keep no per-call state (the forward returns an explicit cache), so applying a network
twice and back-propagating twice is exactly the chain rule for shared weights: the gradient is
the sum of the two per-view contributions (REP.16).

After training the head is dropped and ``features(X) = f(X)`` is the representation that the
linear probe and k-NN of :mod:`nprefgen.models.probe` evaluate.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng, check_scalar
from nprefgen.models._conv import check_two_stage_conv, conv_encoder_layers
from nprefgen.kernels.ntxent import ntxent, ntxent_numpy
from nprefgen.nn import MLP, Module, Sequential
from nprefgen.models._files import load_networks, save_networks
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.train import fit_loop_keeping_adam


def ntxent_loss(z_a, z_b, tau: float = 0.5, *, use_kernel: bool = True):
    """(REP.13) NT-Xent of N positive pairs (z_a[i], z_b[i]) and its gradients (REP.14-REP.15).

    z_a, z_b: (N, p) un-normalised projections -> (loss, d_z_a: (N, p), d_z_b: (N, p)).
    ``use_kernel=False`` uses the NumPy twin.
    """
    z_a = check_array(z_a, "z_a", ndim=2, dtype=np.float64)
    z_b = check_array(z_b, "z_b", ndim=2, dtype=np.float64)
    if z_a.shape != z_b.shape:
        raise ValueError(f"z_b: expected shape {z_a.shape} to match z_a, got {z_b.shape}")
    n = z_a.shape[0]
    loss, d_h = (ntxent if use_kernel else ntxent_numpy)(np.concatenate([z_a, z_b]), tau)
    return loss, d_h[:n], d_h[n:]


class SimCLR:
    """Siamese encoder f and projection head g trained by NT-Xent.

    Parameters
    ----------
    encoder : Module, (n, D) -> (n, m) features h (the representation kept after training)
    head : Module, (n, m) -> (n, p) projections z (the loss is computed on z)
    in_features : int, D
    tau : float, temperature of (REP.13)
    """

    def __init__(self, encoder: Module, head: Module, *, in_features: int, tau: float = 0.5) -> None:
        for name, mod in (("encoder", encoder), ("head", head)):
            if not isinstance(mod, Module):
                raise ValueError(f"{name}: expected an nprefgen.nn.Module, got {type(mod).__name__}")
        self.encoder = encoder
        self.head = head
        self.in_features = check_int(in_features, "in_features", low=1)
        self.tau = check_scalar(tau, "tau", low=0.0, low_inclusive=False)
        self.history_: dict | None = None          # set by fit

    def _check_X(self, X, name: str = "X") -> np.ndarray:
        return check_array(X, name, shape=(None, self.in_features))

    def features(self, X) -> np.ndarray:
        """The frozen representation h = f(x). X: (n, D) -> (n, m)."""
        return self.encoder(self._check_X(X))

    def project(self, X) -> np.ndarray:
        """z = g(f(x)), the space the loss sees. X: (n, D) -> (n, p)."""
        return self.head(self.encoder(self._check_X(X)))

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return self.encoder.parameters() + self.head.parameters()

    def zero_grad(self) -> None:
        self.encoder.zero_grad()
        self.head.zero_grad()

    def num_parameters(self) -> int:
        return self.encoder.num_parameters() + self.head.num_parameters()

    def forward_view(self, x: np.ndarray):
        """One view through f then g: x: (N, D) -> (z: (N, p), caches)."""
        h, c_f = self.encoder.forward(x)
        z, c_g = self.head.forward(h)
        return z, (c_f, c_g)

    def backward_view(self, caches, d_z: np.ndarray) -> np.ndarray:
        """Back-propagate one view's d_z: (N, p); adds into the shared grads, returns d_x."""
        c_f, c_g = caches
        return self.encoder.backward(c_f, self.head.backward(c_g, d_z))

    def loss_and_grad(self, x_a, x_b, *, views: str = "both") -> float:
        """(REP.16) NT-Xent of the pairs (x_a[i], x_b[i]) and its parameter gradient, added into
        the networks' grads.

        x_a, x_b: (N, D) the two views. ``views="a"`` or ``"b"`` back-propagates only that
        view's contribution (the other view's cotangent is dropped), so that a test can check
        that the two contributions add up to the full gradient.
        """
        x_a = self._check_X(x_a, "x_a")
        x_b = self._check_X(x_b, "x_b")
        if x_a.shape != x_b.shape:
            raise ValueError(f"x_b: expected shape {x_a.shape} to match x_a, got {x_b.shape}")
        if views not in ("both", "a", "b"):
            raise ValueError(f"views: expected 'both', 'a' or 'b', got {views!r}")
        z_a, c_a = self.forward_view(x_a)                  # same network, two calls
        z_b, c_b = self.forward_view(x_b)
        loss, d_z_a, d_z_b = ntxent_loss(z_a, z_b, self.tau)
        if views in ("both", "a"):
            self.backward_view(c_a, d_z_a)                 # (REP.16) view a's contribution
        if views in ("both", "b"):
            self.backward_view(c_b, d_z_b)                 # (REP.16) + view b's, accumulated
        return loss

    def fit(self, X, augment: Callable, *, rng=None, epochs: int = 50, batch_size: int = 256,
            lr: float = 1e-3, weight_decay: float = 0.0, patience: int | None = None,
            clip: float | None = None, on_divergence: str = "raise",
            progress: bool | None = True) -> "SimCLR":
        """Minimise NT-Xent (:meth:`loss_and_grad`, REP.13-REP.16) on unlabelled X: (n, D) with
        two fresh ``augment(x, rng)`` views per step, by :func:`nprefgen.nn.train.fit_loop`.

        A batch holds N = batch_size images (2N views); a last batch of fewer than 2 images is
        skipped. The training loss is monitored (``patience`` stops early, None: never) and the
        best epoch's weights are restored; a diverging loss restores them and raises
        :class:`nprefgen.nn.train.TrainingDivergedError` (``on_divergence="warn"``: warns).
        Returns ``self``; ``self.history_`` holds ``{"train_loss": per-epoch mean NT-Xent, ...}``.
        """
        X = self._check_X(X)
        if not callable(augment):
            raise ValueError(f"augment: expected a callable (x, rng) -> x', got {type(augment).__name__}")
        rng = check_rng(rng)
        check_int(epochs, "epochs", low=1)
        batch_size = check_int(batch_size, "batch_size", low=2)
        lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        def views_loss_and_grad(x):
            """(REP.16) two fresh views of the batch x: (N, D), their NT-Xent and gradient."""
            return self.loss_and_grad(augment(x, rng), augment(x, rng))

        self.history_ = fit_loop_keeping_adam(
            self, views_loss_and_grad, (X,), lr=lr, weight_decay=weight_decay, rng=rng,
            epochs=epochs, batch_size=batch_size, clip=clip, patience=patience, min_batch_size=2,
            on_divergence=on_divergence, progress=progress, desc="SimCLR.fit")
        return self

    # -- files -------------------------------------------------------------------------------
    def _networks(self) -> Module:
        """encoder and head as children of one module: state_dict names ``encoder.<name>``
        and ``head.<name>`` (PyTorch's, for a module with these two attributes)."""
        both = Module()
        both.add_child("encoder", self.encoder)
        both.add_child("head", self.head)
        return both

    def _config(self) -> dict:
        return {"in_features": self.in_features, "tau": self.tau}

    def save(self, path) -> None:
        """Write the weights of encoder and head, the hyper-parameters and ``history_`` to
        ``.npz`` at ``path`` by :func:`nprefgen.nn.io.save_npz` (atomic: a failed save leaves an
        existing file byte-identical; non-finite weights are refused). The optimizer state is
        not saved: a ``fit`` after ``load`` starts a fresh Adam."""
        save_networks(path, "SimCLR", self._networks(), self._config(), self.history_)

    def load(self, path) -> "SimCLR":
        """Load weights saved by :meth:`save` into this identically built model; returns self.

        All or nothing (:func:`nprefgen.nn.io.load_npz`): parameter names, shapes, dtypes,
        finite values, the class and the hyper-parameters are checked before any weight is
        assigned; a bad file raises ValueError naming ``path`` and the field and leaves the
        model unchanged."""
        return load_networks(self, path, "SimCLR", self._networks(), self._config())

    def __repr__(self) -> str:
        return (f"SimCLR(in_features={self.in_features}, tau={self.tau}, "
                f"parameters={self.num_parameters()})")


# -- builders -----------------------------------------------------------------------------------

def dense_simclr(in_features: int, feature_dim: int = 32, hidden: Sequence[int] = (256,),
                 proj_dim: int = 32, proj_hidden: int = 64, *, rng=None,
                 tau: float = 0.5, activation: str = "relu") -> SimCLR:
    """MLP encoder ``D -> hidden -> feature_dim`` and MLP head ``feature_dim -> proj_hidden ->
    proj_dim`` (SimCLR's non-linear projection head). ``rng``: None, an int seed or a Generator
    (SPEC 7), the initial weights."""
    rng = check_rng(rng)
    enc = MLP(in_features, list(hidden), feature_dim, rng=rng, activation=activation)
    head = MLP(feature_dim, [proj_hidden], proj_dim, rng=rng, activation="relu")
    return SimCLR(enc, head, in_features=in_features, tau=tau)


def conv_simclr(image_shape: Sequence[int], feature_dim: int = 32, channels: Sequence[int] = (16, 32),
                proj_dim: int = 32, proj_hidden: int = 64, *, rng=None,
                tau: float = 0.5, activation: str = "relu") -> SimCLR:
    """Convolutional encoder for ``(c, h, w)`` images (h, w divisible by 4), flat (n, c h w)
    inputs: two 3x3 stride-2 Conv2d + activation, Flatten, Linear(feature_dim); MLP head."""
    rng = check_rng(rng)
    c, h, w, c1, c2 = check_two_stage_conv(image_shape, channels)
    act = ACTIVATIONS[check_choice(activation, "activation", ACTIVATIONS)]
    enc = Sequential(*conv_encoder_layers((c, h, w), (c1, c2), feature_dim, act, rng=rng))
    head = MLP(feature_dim, [proj_hidden], proj_dim, rng=rng, activation="relu")
    return SimCLR(enc, head, in_features=c * h * w, tau=tau)
