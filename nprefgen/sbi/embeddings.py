"""Embedding (summary) networks trained jointly with NPE (derivations/fields.md, FIELD.1-FIELD.3).

An embedding h_psi maps one simulation x of any shape to a vector c = h_psi(x) of
``out_features`` numbers, which conditions the flow: NPE then learns q_phi(theta | h_psi(x)), and
(FIELD.1) both networks minimise the same loss,

    L(phi, psi) = -(1/n) sum_i log q_phi(theta_i | h_psi(x_i)).

(FIELD.2) The flow's backward already returns dL/dc_i (FLOW.4); the embedding's backward turns
it into dL/dpsi (accumulated into its grads) and dL/dx_i, the chain rule through the context.

Three networks, all with hand-written backward passes built from :mod:`nprefgen.nn` layers:

* :class:`MLPEmbedding`: vectors (n, d) -> an MLP;
* :class:`CNNEmbedding`: maps (n, c, h, w) or (n, h, w) -> convolutions (stride 1, then 2),
  a spatial mean (translation invariant, as a statistically homogeneous field asks) and an MLP;
* :class:`DeepSetEmbedding`: iid sets (n, k, d) -> (FIELD.3) rho( (1/k) sum_j phi(x_j) ), which
  is invariant under permutations of the k elements and takes any k.

Each z-scores its input with statistics of the NPE training split (:meth:`Embedding.standardize`:
per feature for vectors and set elements, per channel for maps), stored with the posterior.
A new network is a subclass of :class:`Embedding` that sets ``input_shape`` and
``out_features`` and implements ``_net_forward`` / ``_net_backward``.
"""
from __future__ import annotations

import numpy as np

from nprefgen._validation import check_array, check_choice, check_int, check_rng
from nprefgen.nn.activations import ACTIVATIONS
from nprefgen.nn.base import Module, check_cotangent
from nprefgen.nn.containers import MLP, Sequential
from nprefgen.nn.conv import Conv2d


def _widths(value, name: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple, range)):
        raise ValueError(f"{name}: expected a sequence of positive widths, got {value!r}")
    return tuple(check_int(v, name, low=1) for v in value)


def structured_x_message(shape, estimator: str = "NPE") -> str:
    """What to do with a simulation output that is not (n, dx): flatten it, or pass the
    embedding network that fits its shape to ``estimator`` (NPE or NRE)."""
    shape = tuple(shape)
    if len(shape) == 3:
        how = (f"for iid sets (n, k, d) pass embedding=DeepSetEmbedding({shape[2]}, out_features)"
               f", for single-channel maps (n, h, w) embedding=CNNEmbedding({shape[1:]}, "
               f"out_features)")
    elif len(shape) == 4:
        how = f"for images (n, c, h, w) pass embedding=CNNEmbedding({shape[1:]}, out_features)"
    else:
        how = "pass an embedding network (nprefgen.sbi.embeddings)"
    return (f"x: expected shape (n, dx), got {shape}; flatten with x.reshape(len(x), -1) or "
            f"{how} to {estimator} (nprefgen.sbi.embeddings)")


class Embedding(Module):
    """Base class: a network x (n, *input_shape) -> c (n, out_features) with a manual backward.

    ``input_shape`` is the shape of one simulation (``None`` for an axis of any length, as the
    set size of a deep set). ``forward(x) -> (c, cache)``; ``backward(cache, d_c) -> d_x``
    accumulates parameter gradients (FIELD.2), as every :mod:`nprefgen.nn` layer. The input is
    z-scored first with ``x_mean`` / ``x_std`` (identity until :meth:`standardize`).
    """

    stat_axes: tuple[int, ...] = (0,)        # axes of (n, *input_shape) pooled by standardize

    def __init__(self, input_shape, out_features: int) -> None:
        super().__init__()
        self.input_shape = tuple(None if s is None else check_int(s, "input_shape", low=1)
                                 for s in input_shape)
        self.out_features = check_int(out_features, "out_features", low=1)
        stat_shape = tuple(1 if (i + 1) in self.stat_axes or s is None else s
                           for i, s in enumerate(self.input_shape))
        self.x_mean = np.zeros(stat_shape)
        self.x_std = np.ones(stat_shape)

    # -- input checks ---------------------------------------------------------------------------
    def _fits(self, shape) -> bool:
        return len(shape) == len(self.input_shape) and all(
            s is None or s == t for s, t in zip(self.input_shape, shape))

    def _alias(self, shape) -> tuple | None:
        """A shorter shape accepted for one sample (a single-channel map without its channel
        axis); None if there is none."""
        return None

    def check_x(self, x, name: str = "x") -> np.ndarray:
        """A batch (n, *input_shape), finite float64 (float32 kept) -> itself (or reshaped from
        an alias)."""
        x = check_array(x, name, ndim=(2, 3, 4, 5))
        if self._fits(x.shape[1:]):
            return x
        alias = self._alias(x.shape[1:])
        if alias is not None:
            return x.reshape((x.shape[0],) + alias)
        want = tuple("*" if s is None else s for s in self.input_shape)
        raise ValueError(f"{name}: expected shape (n, {', '.join(map(str, want))}) for "
                         f"{type(self).__name__}, got {x.shape}")

    def check_one(self, x, name: str = "x") -> np.ndarray:
        """One simulation (*input_shape) or a batch of one -> (1, *input_shape)."""
        x = check_array(x, name)
        if self._fits(x.shape) or self._alias(x.shape) is not None:
            x = x[None]
        if x.shape[0] != 1:
            raise ValueError(f"{name}: expected one observation of shape {self.input_shape}, "
                             f"got {x.shape}")
        return self.check_x(x, name)

    def astype(self, dtype) -> "Embedding":
        """Parameters and the z-scoring statistics in ``dtype`` (float64 or float32)."""
        super().astype(dtype)
        self.x_mean = self.x_mean.astype(dtype)
        self.x_std = self.x_std.astype(dtype)
        return self

    # -- standardisation ------------------------------------------------------------------------
    def standardize(self, x) -> "Embedding":
        """Set ``x_mean`` / ``x_std`` from the (training) simulations x (n, *input_shape)."""
        x = self.check_x(x)
        mean = x.mean(axis=self.stat_axes, keepdims=True)[0]
        std = np.sqrt(((x - mean) ** 2).mean(axis=self.stat_axes, keepdims=True))[0]
        self.x_mean = mean
        self.x_std = np.where(std > 1e-12, std, 1.0)
        return self

    # -- the layer contract (FIELD.2) -----------------------------------------------------------
    def forward(self, x):
        """x: (n, *input_shape) (or an alias) -> c: (n, out_features), cache."""
        checked = self.check_x(x)
        c, (_, inner) = self._forward(checked)
        return c, (np.shape(x), inner)             # d_x comes back shaped like x

    def _forward(self, x):
        c, cache = self._net_forward((x - self.x_mean) / self.x_std)
        return c, (x.shape, cache)

    def backward(self, cache, d_y):
        """d_y = dL/dc: (n, out_features) -> d_x shaped like the forward's x; accumulates
        grads (FIELD.2)."""
        d_y = check_cotangent(d_y, (cache[0][0], self.out_features))
        return self._backward(cache, d_y)

    def _backward(self, cache, d_c):
        shape, inner = cache
        d_z = self._net_backward(inner, d_c)
        return (d_z / self.x_std).reshape(shape)          # z = (x - mean) / std

    def _net_forward(self, z):
        raise NotImplementedError

    def _net_backward(self, cache, d_c):
        raise NotImplementedError

    def config(self) -> dict | None:
        """The constructor's arguments (JSON), so a saved posterior can rebuild the network;
        None for a network that cannot be rebuilt from arguments."""
        return None


class MLPEmbedding(Embedding):
    """An MLP on vectors: x (n, in_features) -> (n, out_features); per-feature z-scoring.

    ``hidden``: hidden widths; ``activation``: a name of :data:`nprefgen.nn.ACTIVATIONS`;
    ``rng``: None, an int seed or a Generator (SPEC 7), the initial weights."""

    def __init__(self, in_features: int, out_features: int, hidden=(64, 64), *,
                 activation: str = "relu", rng=None) -> None:
        super().__init__((check_int(in_features, "in_features", low=1),), out_features)
        self.hidden = _widths(hidden, "hidden")
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.net = self.add_child("net", MLP(in_features, list(self.hidden), self.out_features,
                                             rng=check_rng(rng), activation=activation))

    def _net_forward(self, z):
        return self.net._forward(z)

    def _net_backward(self, cache, d_c):
        return self.net._backward(cache, d_c)

    def config(self) -> dict:
        return {"kind": "mlp", "in_features": self.input_shape[0],
                "out_features": self.out_features, "hidden": list(self.hidden),
                "activation": self.activation}


class CNNEmbedding(Embedding):
    """A small CNN on maps: (n, c, h, w) (or (n, h, w) when c = 1) -> (n, out_features).

    Convolutions of size ``kernel_size`` with zero padding, the first of stride 1 and the others
    of stride 2, each followed by ``activation``; then the mean over the spatial positions (the
    statistics of a homogeneous field do not depend on position) and an MLP with ``hidden``
    widths. Per-channel z-scoring. ``rng``: SPEC 7, the initial weights.
    """

    stat_axes = (0, 2, 3)

    def __init__(self, image_shape, out_features: int, channels=(8, 16, 16), *,
                 kernel_size: int = 3, hidden=(32,), activation: str = "relu", rng=None) -> None:
        if not isinstance(image_shape, (list, tuple)) or len(image_shape) not in (2, 3):
            raise ValueError(f"image_shape: expected (h, w) or (c, h, w), got {image_shape!r}")
        image_shape = tuple(image_shape)
        self.short = len(image_shape) == 2
        full = (1,) + image_shape if self.short else image_shape
        super().__init__(full, out_features)
        self.channels = _widths(channels, "channels")
        if not self.channels:
            raise ValueError("channels: expected at least one convolution, got none")
        self.kernel_size = check_int(kernel_size, "kernel_size", low=1)
        self.hidden = _widths(hidden, "hidden")
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        rng = check_rng(rng)
        layers, c_in = [], full[0]
        for i, c_out in enumerate(self.channels):
            conv = Conv2d(c_in, c_out, self.kernel_size, stride=1 if i == 0 else 2,
                          padding=self.kernel_size // 2, rng=rng)
            layers += [conv, ACTIVATIONS[activation]()]
            c_in = c_out
        self.convs = self.add_child("convs", Sequential(*layers))
        self.head = self.add_child("head", MLP(c_in, list(self.hidden), self.out_features,
                                               rng=rng, activation=activation))

    def _alias(self, shape):
        return self.input_shape if self.input_shape[0] == 1 and shape == self.input_shape[1:] \
            else None

    def _net_forward(self, z):
        h, c_convs = self.convs._forward(z)                  # (n, C, h', w')
        pooled = h.mean(axis=(2, 3))                         # spatial mean (n, C)
        c, c_head = self.head._forward(pooled)
        return c, (h.shape, c_convs, c_head)

    def _net_backward(self, cache, d_c):
        shape, c_convs, c_head = cache
        d_pooled = self.head._backward(c_head, d_c)          # (n, C)
        d_h = np.broadcast_to(d_pooled[:, :, None, None] / (shape[2] * shape[3]), shape)
        return self.convs._backward(c_convs, np.ascontiguousarray(d_h))

    def config(self) -> dict:
        shape = list(self.input_shape[1:]) if self.short else list(self.input_shape)
        return {"kind": "cnn", "image_shape": shape, "out_features": self.out_features,
                "channels": list(self.channels), "kernel_size": self.kernel_size,
                "hidden": list(self.hidden), "activation": self.activation}


class DeepSetEmbedding(Embedding):
    """(FIELD.3) A permutation-invariant network for iid sets: x (n, k, d) -> (n, out_features),
    rho( (1/k) sum_j phi(x_j) ), with MLPs phi: d -> ``phi_features`` (hidden ``phi_hidden``,
    activated output) and rho: ``phi_features`` -> out_features (hidden ``rho_hidden``).
    Any set size k (the same within one batch). Per-feature z-scoring over sets and elements.
    ``rng``: SPEC 7, the initial weights."""

    stat_axes = (0, 1)

    def __init__(self, element_dim: int, out_features: int, *, phi_hidden=(32,),
                 phi_features: int = 32, rho_hidden=(32,), activation: str = "relu",
                 rng=None) -> None:
        super().__init__((None, check_int(element_dim, "element_dim", low=1)), out_features)
        self.phi_hidden = _widths(phi_hidden, "phi_hidden")
        self.phi_features = check_int(phi_features, "phi_features", low=1)
        self.rho_hidden = _widths(rho_hidden, "rho_hidden")
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        rng = check_rng(rng)
        self.phi = self.add_child("phi", MLP(element_dim, list(self.phi_hidden), self.phi_features,
                                             rng=rng, activation=activation,
                                             out_activation=activation))
        self.rho = self.add_child("rho", MLP(self.phi_features, list(self.rho_hidden),
                                             self.out_features, rng=rng, activation=activation))

    def _net_forward(self, z):
        n, k, d = z.shape
        e, c_phi = self.phi._forward(z.reshape(n * k, d))    # phi(x_j) for every element
        pooled = e.reshape(n, k, -1).mean(axis=1)             # (FIELD.3) mean over the set
        c, c_rho = self.rho._forward(pooled)
        return c, (z.shape, c_phi, c_rho)

    def _net_backward(self, cache, d_c):
        (n, k, d), c_phi, c_rho = cache
        d_pooled = self.rho._backward(c_rho, d_c)              # (n, m)
        d_e = np.repeat(d_pooled / k, k, axis=0)               # (FIELD.3) each element gets 1/k
        return self.phi._backward(c_phi, d_e).reshape(n, k, d)

    def config(self) -> dict:
        return {"kind": "deepset", "element_dim": self.input_shape[1],
                "out_features": self.out_features, "phi_hidden": list(self.phi_hidden),
                "phi_features": self.phi_features, "rho_hidden": list(self.rho_hidden),
                "activation": self.activation}


EMBEDDINGS = {"mlp": MLPEmbedding, "cnn": CNNEmbedding, "deepset": DeepSetEmbedding}


def embedding_from_config(config: dict) -> Embedding:
    """Rebuild an embedding from :meth:`Embedding.config` (weights are loaded afterwards)."""
    if not isinstance(config, dict) or config.get("kind") not in EMBEDDINGS:
        raise ValueError(f"config: expected an embedding configuration with kind in "
                         f"{sorted(EMBEDDINGS)}, got {config!r}"[:300])
    args = {k: v for k, v in config.items() if k != "kind"}
    cls = EMBEDDINGS[config["kind"]]
    if cls is MLPEmbedding:
        return MLPEmbedding(args.pop("in_features"), args.pop("out_features"), **args)
    if cls is CNNEmbedding:
        return CNNEmbedding(tuple(args.pop("image_shape")), args.pop("out_features"), **args)
    return DeepSetEmbedding(args.pop("element_dim"), args.pop("out_features"), **args)


def check_embedding(embedding) -> Embedding | None:
    """None or an :class:`Embedding`; anything else is a ValueError naming ``embedding``."""
    if embedding is None or isinstance(embedding, Embedding):
        return embedding
    raise ValueError(f"embedding: expected None or an nprefgen.sbi.embeddings.Embedding "
                     f"(MLPEmbedding, CNNEmbedding, DeepSetEmbedding or a subclass), got "
                     f"{type(embedding).__name__}")


def check_embedding_output(embedding: Embedding, x) -> None:
    """The embedding's output on a few rows of x must be finite and shaped (n, out_features):
    a ValueError naming ``embedding`` otherwise (a subclass that declares the wrong size)."""
    rows = x[:2]
    c = np.asarray(embedding._forward(rows)[0])
    if c.shape != (rows.shape[0], embedding.out_features):
        raise ValueError(f"embedding: {type(embedding).__name__} declares out_features="
                         f"{embedding.out_features} but maps {rows.shape} to {c.shape}; expected "
                         f"({rows.shape[0]}, {embedding.out_features})")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"embedding: {type(embedding).__name__} gives non-finite outputs on "
                         f"the training simulations")
