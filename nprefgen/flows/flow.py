"""Flow = a chain of bijectors + a standard normal base, optionally conditioned on a context
(derivations/flows.md, FLOW.1-FLOW.3, FLOW.22).

    log p(x | c) = log N(f(x; c); 0, I) + log|det J_f(x; c)|                            (FLOW.1)
    log N(z; 0, I) = -|z|^2 / 2 - (D/2) log 2 pi                                         (FLOW.3)

Sampling draws z ~ N(0, I) and inverts the chain. Training minimises the mean negative
log-likelihood by Adam; its gradient enters the chain's backward through (FLOW.22):

    L = -(1/n) sum_i log p(x_i | c_i):   d_z = z / n,   d_log_det = -1/n.

A conditional flow (``context_dim = C > 0``) passes the context to every conditional bijector.
Contexts can be z-scored inside the flow (``standardize_context``): the shift and scale are
buffers, applied before the conditioners see the context, and the context gradient is scaled back,
so ``grad_log_prob`` is always with respect to the raw context.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from nprefgen._validation import (
    check_array, check_choice, check_int, check_rng, check_scalar,
)
from nprefgen.flows.base import Bijector
from nprefgen.flows.chain import Chain
from nprefgen.nn.io import META_BYTES, load_npz, read_npz, save_npz
from nprefgen.nn.optim import Adam, clip_grad_norm

LOG_2PI = float(np.log(2.0 * np.pi))
BASES = ("normal",)


def normal_log_prob(z: np.ndarray) -> np.ndarray:
    """(FLOW.3) log N(z; 0, I) per row. z: (n, D) -> (n,)."""
    return -0.5 * np.einsum("ij,ij->i", z, z) - 0.5 * z.shape[1] * LOG_2PI


class Flow(Chain):
    """A normalizing flow: bijectors x -> z and a standard normal base (FLOW.1).

    Parameters
    ----------
    bijectors : sequence of Bijector, applied in order from data x to base z
    base : "normal" (standard normal N(0, I))
    context_dim : int, C; every conditional bijector must take this context size

    Parameter names are ``"<k>.<name>"`` with k the bijector's position (e.g. ``"0.net.0.weight"``).
    Buffers (masks, permutations, standardizations, ``context_mean``/``context_std``) are saved
    with the parameters by :meth:`save`.
    """

    def __init__(self, bijectors, base: str = "normal", context_dim: int = 0) -> None:
        context_dim = check_int(context_dim, "context_dim", low=0)
        super().__init__(bijectors, context_dim=context_dim)
        self.base = check_choice(base, "base", BASES)
        if context_dim and not any(b.context_dim for b in self.bijectors):
            raise ValueError(f"context_dim: expected at least one conditional bijector for "
                             f"context_dim={context_dim}, got none")
        self.config: dict | None = None         # set by the builders; lets load_flow rebuild
        self.history_: dict | None = None
        if context_dim:
            self.context_mean = self.register_buffer("context_mean", np.zeros(context_dim))
            self.context_std = self.register_buffer("context_std", np.ones(context_dim))

    # -- context handling ---------------------------------------------------------------------
    def standardize_context(self, context) -> "Flow":
        """Z-score contexts inside the flow with the mean and std of ``context: (n, C)``."""
        if not self.context_dim:
            raise ValueError("context: this flow is unconditional (context_dim=0)")
        context = check_array(context, "context", shape=(None, self.context_dim), dtype=np.float64)
        mean = context.mean(axis=0)
        std = np.sqrt(((context - mean) ** 2).mean(axis=0))
        self.context_mean[...] = mean
        self.context_std[...] = np.where(std > 1e-12, std, 1.0)
        return self

    def _context_rows(self, context, n: int):
        """Context for n samples: (n, C) as given, or one (C,) row broadcast (flag True)."""
        if not self.context_dim:
            if context is not None:
                raise ValueError(f"context: this flow is unconditional, expected None, got shape "
                                 f"{np.shape(context)}")
            return None, False
        if context is None:
            raise ValueError(f"context: expected shape ({n}, {self.context_dim}) or "
                             f"({self.context_dim},), got None")
        context = check_array(context, "context", ndim=(1, 2))
        if context.ndim == 1:
            if context.shape != (self.context_dim,):
                raise ValueError(f"context: expected shape ({self.context_dim},), got {context.shape}")
            return np.broadcast_to(context, (n, self.context_dim)), True
        if context.shape != (n, self.context_dim):
            raise ValueError(f"context: expected shape ({n}, {self.context_dim}) or "
                             f"({self.context_dim},), got {context.shape}")
        return context, False

    def _rows(self, x, context):
        """x: (n, D), or one (D,) row broadcast over the rows of a (n, C) context (NLE: one
        observation, many parameters). -> x, context, x_broadcast, context_broadcast."""
        x = check_array(x, "x", ndim=(1, 2))
        if x.ndim == 2:
            x = self._check_x(x)
            context, c_b = self._context_rows(context, x.shape[0])
            return x, context, False, c_b
        if x.shape != (self.dim,):
            raise ValueError(f"x: expected shape (n, {self.dim}) or ({self.dim},), got {x.shape}")
        if context is None or np.ndim(context) != 2:
            raise ValueError(f"x: a single ({self.dim},) row needs a (n, {self.context_dim}) context "
                             f"to broadcast over, got context of shape {np.shape(context)}")
        n = np.shape(context)[0]
        context, _ = self._context_rows(context, n)
        return np.broadcast_to(x, (n, self.dim)), context, True, False

    # -- the bijector contract (context standardised first) -----------------------------------
    def _scaled(self, context):
        return None if context is None else (context - self.context_mean) / self.context_std

    # Chain.forward_cached / Chain.backward check their arguments and then call these two, which
    # standardise the context on the way in and scale its gradient back on the way out.
    def _forward_cached(self, x, context=None):
        """(FLOW.2) x: (n, D), context: (n, C) -> z: (n, D), log_det: (n,), cache."""
        return super()._forward_cached(x, self._scaled(context))

    def inverse(self, z, context=None):
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        return super().inverse(z, self._scaled(context))

    def _backward(self, cache, d_z, d_log_det):
        d_x, d_context = super()._backward(cache, d_z, d_log_det)
        if d_context is not None:
            d_context = d_context / self.context_std
        return d_x, d_context

    # -- densities ----------------------------------------------------------------------------
    def log_prob(self, x, context=None) -> np.ndarray:
        """(FLOW.1) log p(x | c) per sample. x: (n, D), context: (n, C) or (C,) -> (n,).

        One row of either is broadcast over the rows of the other: x (n, D) with context (C,)
        (iid observations, one parameter), or x (D,) with context (n, C) (one observation, many
        parameters, as NLE needs).
        """
        x, context, _, _ = self._rows(x, context)            # checks x and the context
        z, log_det, _ = self._forward_cached(x, context)
        return normal_log_prob(z) + log_det

    def log_prob_and_grad(self, x, context=None, weights=None):
        """log p per sample and the gradients of  S = sum_i w_i log p(x_i | c_i)  (FLOW.22).

        x: (n, D) or (D,); context: (n, C) or (C,) (broadcast as in :meth:`log_prob`); weights:
        (n,) (default ones). Parameter gradients of S are *added* into ``grads`` (call
        ``zero_grad`` first). Returns ``(log_prob: (n,), d_x, d_context)`` with each gradient
        shaped like its argument: a broadcast row gets the sum over rows, and d_context is None
        for an unconditional flow. Training uses ``weights = -1/n`` (mean NLL).
        """
        x, context, x_broadcast, broadcast = self._rows(x, context)
        n = x.shape[0]
        w = np.ones(n) if weights is None else check_array(weights, "weights", shape=(n,))
        z, log_det, cache = self._forward_cached(x, context)     # checked by _rows above
        log_prob = normal_log_prob(z) + log_det
        d_x, d_context = self._backward(cache, -w[:, None] * z, w)      # (FLOW.22), (FLOW.3)
        if broadcast:
            d_context = d_context.sum(axis=0)
        if x_broadcast:
            d_x = d_x.sum(axis=0)
        return log_prob, d_x, d_context

    def grad_log_prob(self, x, context=None):
        """Gradients of log p(x_i | c_i) with respect to x and the context, per sample.

        x: (n, D) or (D,), context: (n, C) or (C,) -> d_x, d_context shaped like their arguments
        (a broadcast row gets the sum over rows; d_context None without a context). Parameter
        gradients are left as they were (for HMC in NLE, score checks).
        """
        saved = [g.copy() for _, g in self.parameters()]
        try:
            _, d_x, d_context = self.log_prob_and_grad(x, context)
        finally:
            for (_, g), s in zip(self.parameters(), saved):
                g[...] = s
        return d_x, d_context

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, context=None) -> np.ndarray:
        """x = f^{-1}(z), z ~ N(0, I). n: int; context: (n, C) or one (C,) row -> x: (n, D)."""
        return self.sample_and_log_prob(n, rng, context)[0]

    def sample_and_log_prob(self, n: int, rng: np.random.Generator, context=None):
        """Samples and their log-densities in one pass: log p(x) = log N(z) - log_det_inv (FLOW.1).

        -> x: (n, D), log_prob: (n,).
        """
        n = check_int(n, "n", low=1)
        rng = check_rng(rng)
        context, _ = self._context_rows(context, n)
        z = rng.standard_normal((n, self.dim))
        x, log_det_inv = self.inverse(z, context)
        return x, normal_log_prob(z) - log_det_inv

    # -- data-dependent initialisation (ActNorm) ----------------------------------------------
    def initialize(self, x, context=None) -> "Flow":
        """Push ``x`` through the chain, calling ``initialize`` on every bijector that has one and
        is not yet initialised (ActNorm, FLOW.18), on its own input."""
        x = self._check_x(x)
        context, _ = self._context_rows(context, x.shape[0])
        context = self._scaled(context)
        for b in self.bijectors:
            if hasattr(b, "initialize") and not getattr(b, "initialized", True):
                b.initialize(x)
            x, _ = b.forward(x, self._ctx(b, context))
        return self

    def needs_initialization(self) -> bool:
        return any(hasattr(b, "initialize") and not getattr(b, "initialized", True)
                   for b in self.bijectors)

    # -- training -----------------------------------------------------------------------------
    def mean_nll(self, x, context=None, batch_size: int = 4096) -> float:
        """-(1/n) sum log p(x_i | c_i), evaluated in batches (no gradients)."""
        x = self._check_x(x)
        batch_size = check_int(batch_size, "batch_size", low=1)
        context, _ = self._context_rows(context, x.shape[0])
        total = 0.0
        for s in range(0, x.shape[0], batch_size):
            c = None if context is None else context[s:s + batch_size]
            total += float(np.sum(self.log_prob(x[s:s + batch_size], c)))
        return -total / x.shape[0]

    def fit(self, x, context=None, *, rng: np.random.Generator, epochs: int = 100,
            batch_size: int = 256, lr: float = 1e-3, validation_fraction: float = 0.1,
            patience: int | None = 20, clip: float | None = 5.0, weight_decay: float = 0.0,
            progress: bool = True) -> dict:
        """Maximum likelihood by Adam on minibatches, with a validation split and early stopping.

        Parameters
        ----------
        x : (n, D) training data; context : (n, C) or None
        rng : numpy.random.Generator (the split, the shuffles)
        epochs : maximum number of passes over the training part
        batch_size, lr, weight_decay : minibatch size and Adam's settings
        validation_fraction : share of x held out (at least one sample when > 0); 0 monitors
            the training loss instead
        patience : stop after this many epochs without a better validation loss (None: never)
        clip : global gradient-norm clip (NN.17) or None
        progress : a tqdm bar on a terminal (never when stderr is not a tty)

        The best weights (lowest monitored loss) are restored at the end. Returns the history
        ``{"train_loss": [...], "val_loss": [...], "best_epoch": k, "epochs": m}`` (mean NLL in nats
        per sample, one entry per epoch; ``val_loss`` empty without a validation split), also kept
        as ``self.history_``.
        """
        from tqdm.auto import tqdm

        rng = check_rng(rng)
        x = self._check_x(x)
        n = x.shape[0]
        context, _ = self._context_rows(context, n)
        if context is not None:
            context = np.ascontiguousarray(context)
        epochs = check_int(epochs, "epochs", low=1)
        batch_size = check_int(batch_size, "batch_size", low=1)
        check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        check_scalar(validation_fraction, "validation_fraction", low=0.0, high=1.0, high_inclusive=False)
        if patience is not None:
            patience = check_int(patience, "patience", low=1)
        if clip is not None:
            clip = check_scalar(clip, "clip", low=0.0, low_inclusive=False)
        params = self.parameters()
        if not params:
            raise ValueError("bijectors: expected at least one trainable parameter to fit, got none")

        order = rng.permutation(n)
        n_val = max(1, int(validation_fraction * n)) if validation_fraction > 0 else 0
        if n - n_val < 1:
            raise ValueError(f"x: expected at least 2 samples for a validation split, got {n}")
        train, val = order[n_val:], order[:n_val]
        x_tr, x_val = x[train], x[val]
        c_tr = None if context is None else context[train]
        c_val = None if context is None else context[val]
        if self.needs_initialization():
            self.initialize(x_tr[:max(batch_size, 2)], None if c_tr is None else c_tr[:max(batch_size, 2)])

        opt = Adam(params, lr=lr, weight_decay=weight_decay)
        history = {"train_loss": [], "val_loss": [], "best_epoch": 0, "epochs": 0}
        best, best_state, since_best = np.inf, self.state_dict(), 0
        show = bool(progress) and sys.stderr.isatty()
        bar = tqdm(range(epochs), desc="Flow.fit", unit="epoch", disable=not show, leave=False)
        n_tr = x_tr.shape[0]
        for epoch in bar:
            perm = rng.permutation(n_tr)
            total = 0.0
            for s in range(0, n_tr, batch_size):
                idx = perm[s:s + batch_size]
                self.zero_grad()
                lp, _, _ = self.log_prob_and_grad(x_tr[idx], None if c_tr is None else c_tr[idx],
                                                  weights=np.full(idx.size, -1.0 / idx.size))
                batch_loss = -float(np.mean(lp))
                if not np.isfinite(batch_loss):
                    self.load_state_dict(best_state)
                    raise RuntimeError(f"Flow.fit: the loss became {batch_loss} in epoch {epoch}; "
                                       f"best weights restored. Try a smaller lr or a clip.")
                if clip is not None:
                    clip_grad_norm(params, clip)
                opt.step()
                total += batch_loss * idx.size
            history["train_loss"].append(total / n_tr)
            if n_val:
                history["val_loss"].append(self.mean_nll(x_val, c_val))
            monitored = history["val_loss"][-1] if n_val else history["train_loss"][-1]
            history["epochs"] = epoch + 1
            if monitored < best:
                best, best_state, since_best = monitored, self.state_dict(), 0
                history["best_epoch"] = epoch
            else:
                since_best += 1
            bar.set_postfix(train=f"{history['train_loss'][-1]:.3f}",
                            val=f"{history['val_loss'][-1]:.3f}" if n_val else "-")
            if patience is not None and since_best >= patience:
                break
        bar.close()
        self.load_state_dict(best_state)
        self.zero_grad()
        self.history_ = history
        return history

    # -- saving -------------------------------------------------------------------------------
    def validate_buffers(self, buffers) -> None:
        """The context z-scoring buffers: finite, ``context_std`` > 0 (see Bijector)."""
        super().validate_buffers(buffers)
        if "context_std" in buffers and not np.all(np.asarray(buffers["context_std"]) > 0):
            raise ValueError(f"buffers['context_std']: expected positive entries, got min "
                             f"{np.min(buffers['context_std'])}")

    def save(self, path) -> None:
        """Parameters, buffers and (when built by a builder) the configuration to ``.npz``.

        The write is atomic (:func:`nprefgen.nn.io.atomic_write`): a failed save leaves an existing
        file byte-identical. Buffers are validated first, so an invalid flow is never written.
        """
        self.check_buffer_dict(self.buffer_dict())
        meta = {"buffer." + k: v for k, v in self.buffer_dict().items()}
        if self.config is not None:
            try:
                meta["flow_config"] = np.array(json.dumps(self.config, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"config: expected a JSON-serialisable dict of builder "
                                 f"arguments, got {self.config!r}"[:300]) from exc
        save_npz(path, self, meta=meta)

    def load(self, path) -> "Flow":
        """Load parameters and buffers saved by :meth:`save` into this (identically built) flow.

        All or nothing: parameter names, shapes, dtypes and values, every buffer's invariants
        (:meth:`Bijector.validate_buffers`) and the stored configuration (equal to this flow's in
        every key both have) are checked before anything is assigned; a bad file raises ValueError
        naming ``path`` and leaves the flow unchanged.
        """
        checked = {}

        def check_meta(meta):
            buffers = {k[len("buffer."):]: v for k, v in meta.items() if k.startswith("buffer.")}
            try:
                checked["buffers"] = self.check_buffer_dict(buffers)
            except ValueError as exc:
                raise ValueError(f"path: {_name(path)} holds invalid buffers: {exc}") from exc
            if "flow_config" in meta and self.config is not None:
                stored = _parse_config(path, meta["flow_config"])
                own = json.loads(json.dumps(self.config))
                # keys one side lacks (a builder argument added or retired since) are not compared
                differ = sorted(k for k in set(stored) & set(own) if stored[k] != own[k])
                if differ:
                    raise ValueError(f"path: {_name(path)} was saved from another flow: "
                                     f"flow_config differs in {differ} (file "
                                     f"{[stored[k] for k in differ]}, this flow "
                                     f"{[own[k] for k in differ]})"[:600])

        before = (self.state_dict(), self.buffer_dict())
        n_values = self.num_parameters() + sum(b.size for _, b in self.named_buffers())
        load_npz(path, self, check_meta=check_meta, max_bytes=8 * n_values + META_BYTES)
        try:
            self.load_buffer_dict(checked["buffers"])
        except BaseException:                     # not expected after the checks: roll back
            self.load_state_dict(before[0])
            for name, b in self.named_buffers():
                b[...] = before[1][name]
            raise
        return self


def _name(path) -> str:
    return repr(os.fspath(path))


def _parse_config(path, value) -> dict:
    """The stored ``flow_config`` entry: a JSON object as a 0-d string array -> dict."""
    value = np.asarray(value)
    if value.dtype.kind != "U" or value.ndim != 0:
        raise ValueError(f"path: {_name(path)}: flow_config: expected a JSON string, got an "
                         f"array of dtype {value.dtype} and shape {value.shape}")
    try:
        config = json.loads(str(value))
    except (ValueError, RecursionError) as exc:      # JSONDecodeError is a ValueError
        raise ValueError(f"path: {_name(path)}: flow_config: expected valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"path: {_name(path)}: flow_config: expected a JSON object of builder "
                         f"arguments, got {type(config).__name__}")
    return config


def load_flow(path) -> Flow:
    """Rebuild a flow saved by :meth:`Flow.save` from its stored builder configuration.

    A missing, tampered or unbuildable configuration raises ValueError naming ``path`` and
    ``flow_config``; the weights are then loaded all or nothing (:meth:`Flow.load`).
    """
    from nprefgen.flows import builders

    key = "__meta__.flow_config"
    arrays = read_npz(path, keys=[key])
    if key not in arrays:
        raise ValueError(f"path: {_name(path)} holds no builder configuration; build the same "
                         f"flow and call flow.load(path) instead")
    config = _parse_config(path, arrays[key])
    try:
        flow = builders.from_config(config)
    except Exception as exc:          # a tampered config: unknown or mistyped builder arguments
        raise ValueError(f"path: {_name(path)}: flow_config {config} does not build a flow "
                         f"({type(exc).__name__}: {exc})"[:600]) from exc
    return flow.load(path)
