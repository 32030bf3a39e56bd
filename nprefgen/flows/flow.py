"""Flow = a chain of bijectors + a standard normal base, optionally conditioned on a context
(derivations/flows.md, FLOW.1-FLOW.3, FLOW.4).

    log p(x | c) = log N(f(x; c); 0, I) + log|det J_f(x; c)|                            (FLOW.1)
    log N(z; 0, I) = -|z|^2 / 2 - (D/2) log 2 pi                                         (FLOW.3)

Sampling draws z ~ N(0, I) and inverts the chain. Training minimises the mean negative
log-likelihood by Adam; its gradient enters the chain's backward through (FLOW.4):

    L = -(1/n) sum_i log p(x_i | c_i):   d_z = z / n,   d_log_det = -1/n.

A conditional flow (``context_dim = C > 0``) passes the context to every conditional bijector.
Contexts can be z-scored inside the flow (``standardize_context``): the shift and scale are
buffers, applied before the conditioners see the context, and the context gradient is scaled back,
so ``grad_log_prob`` is always with respect to the raw context.
"""
from __future__ import annotations

import json
import os

import numpy as np

from nprefgen._validation import (
    check_alloc, check_array, check_choice, check_finite_result, check_int, check_rng,
    check_scalar,
)
from nprefgen.flows.base import Bijector
from nprefgen.flows.chain import Chain
from nprefgen.nn.io import META_BYTES, load_npz, read_json_object, read_npz, save_npz
from nprefgen.nn.train import fit_loop, take, validation_split

LOG_2PI = float(np.log(2.0 * np.pi))
BASES = ("normal",)


def normal_log_prob(z) -> np.ndarray:
    """(FLOW.3) log N(z; 0, I) per row. z: (n, D) -> (n,). |z| beyond ~1e154 gives -inf (the
    correctly rounded value of -|z|^2 / 2)."""
    return _normal_log_prob(check_array(z, "z", ndim=2))


def _normal_log_prob(z: np.ndarray) -> np.ndarray:
    """(FLOW.3) without checks, for the z a flow computed itself. z: (n, D) -> (n,)."""
    return -0.5 * np.einsum("ij,ij->i", z, z) - 0.5 * z.shape[1] * LOG_2PI


# check_array's messages for NaN/inf: raised inside the chain on finite (checked) input, they mean
# that an intermediate overflowed (a bijector or conditioner checking its own input or cotangent)
_NON_FINITE = ("expected finite values", "expected no NaN")


def _overflow(x, context, what: str, cause: Exception | None = None, name: str = "x"):
    """Raise check_finite_result's ValueError for a non-finite ``what`` computed from finite
    (checked) ``x`` (n, D) and ``context`` (n, C) or None, blaming whichever input has the larger
    entries; ``cause``: the inner ValueError it replaces, if any; ``name``: x's argument name."""
    source = x
    if context is not None and np.size(context) and \
            float(np.max(np.abs(context))) > float(np.max(np.abs(x))):
        name, source = "context", context
    try:
        check_finite_result(np.nan, name, what, source)
    except ValueError as exc:
        raise exc from cause


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
        """(FLOW.2) x: (n, D), context: (n, C) -> z: (n, D), log_det: (n,), cache.

        Finite x and context that give a non-finite z or log_det overflowed inside a bijector
        (e.g. an affine coupling's exp(s) x at |x| ~ 1e308): a ValueError blaming their scale.
        """
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # checked next
                z, log_det, cache = super()._forward_cached(x, self._scaled(context))
        except ValueError as exc:
            if not any(s in str(exc) for s in _NON_FINITE):
                raise
            _overflow(x, context, "values inside the flow", exc)
        if not (np.isfinite(z).all() and np.isfinite(log_det).all()):   # one pass over (n, D)
            _overflow(x, context, "flow's output z / log|det J|")
        return z, log_det, cache

    def inverse(self, z, context=None):
        """(FLOW.2) z: (n, D), context: (n, C) -> x: (n, D), log_det_inv: (n,); an overflow inside
        from finite z and context is a ValueError blaming their scale, as in the forward pass."""
        z = self._check_x(z, "z")
        context = self._check_context(context, z.shape[0])
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # checked next
                x, log_det_inv = super().inverse(z, self._scaled(context))
        except ValueError as exc:
            if not any(s in str(exc) for s in _NON_FINITE):
                raise
            _overflow(z, context, "values inside the flow (inverse)", exc, name="z")
        if not (np.isfinite(x).all() and np.isfinite(log_det_inv).all()):
            _overflow(z, context, "flow's inverse x / log|det J^-1|", name="z")
        return x, log_det_inv

    def _backward(self, cache, d_z, d_log_det, context_grad: bool = True):
        d_x, d_context = super()._backward(cache, d_z, d_log_det, context_grad)
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
        return _normal_log_prob(z) + log_det

    def log_prob_and_grad(self, x, context=None, weights=None):
        """log p per sample and the gradients of  S = sum_i w_i log p(x_i | c_i)  (FLOW.4).

        x: (n, D) or (D,); context: (n, C) or (C,) (broadcast as in :meth:`log_prob`); weights:
        (n,) (default ones). Parameter gradients of S are *added* into ``grads`` (call
        ``zero_grad`` first). Returns ``(log_prob: (n,), d_x, d_context)`` with each gradient
        shaped like its argument: a broadcast row gets the sum over rows, and d_context is None
        for an unconditional flow. Training uses ``weights = -1/n`` (mean NLL).
        """
        x, context, x_broadcast, broadcast = self._rows(x, context)
        n = x.shape[0]
        w = np.ones(n) if weights is None else check_array(weights, "weights", shape=(n,))
        log_prob, d_x, d_context = self._log_prob_and_grad(x, context, w)
        if broadcast:
            d_context = d_context.sum(axis=0)
        if x_broadcast:
            d_x = d_x.sum(axis=0)
        return log_prob, d_x, d_context

    def _log_prob_and_grad(self, x, context, w, context_grad: bool = True):
        """:meth:`log_prob_and_grad` for checked rows: x (n, D), context (n, C) or None, weights
        w (n,). ``context_grad`` False skips d_context (returned as None), which training does
        not use."""
        z, log_det, cache = self._forward_cached(x, context)
        w = w.astype(z.dtype, copy=False)           # a float32 flow's gradients stay float32
        log_prob = _normal_log_prob(z) + log_det
        try:
            with np.errstate(over="ignore", invalid="ignore"):             # checked next
                args = (cache, -w[:, None] * z, w)                          # (FLOW.4), (FLOW.3)
                # the flag only when it is set: a subclass's _backward(cache, d_z, d_log_det)
                # keeps working for log_prob_and_grad (fit then takes the public loss)
                d_x, d_context = self._backward(*args) if context_grad else \
                    self._backward(*args, context_grad=False)
        except ValueError as exc:
            if not any(s in str(exc) for s in _NON_FINITE):
                raise
            _overflow(x, context, "gradients inside the flow", exc)
        if not (np.isfinite(d_x).all() and (d_context is None or np.isfinite(d_context).all())):
            _overflow(x, context, "gradient d log p / d(x, context)")
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
    def sample(self, n: int, context=None, *, rng=None) -> np.ndarray:
        """x = f^{-1}(z), z ~ N(0, I). n: int; context: (n, C) or one (C,) row; rng: None, int
        or Generator (SPEC 7) -> x: (n, D)."""
        return self.sample_and_log_prob(n, context, rng=rng)[0]

    def sample_and_log_prob(self, n: int, context=None, *, rng=None):
        """Samples and their log-densities in one pass: log p(x) = log N(z) - log_det_inv (FLOW.1).

        n: int; context: (n, C) or one (C,) row; rng: None, int or Generator -> x: (n, D),
        log_prob: (n,).
        """
        n = check_int(n, "n", low=1)
        check_alloc((n, self.dim), "n")
        rng = check_rng(rng)
        context, _ = self._context_rows(context, n)
        z = rng.standard_normal((n, self.dim))
        x, log_det_inv = self.inverse(z, context)
        return x, _normal_log_prob(z) - log_det_inv

    # -- data-dependent initialisation (Standardize, ActNorm) and data checks ----------------
    def initialize(self, x, context=None) -> "Flow":
        """Push ``x`` through the chain, calling ``initialize`` on every bijector that has one and
        is not yet initialised (an unfitted Standardize, ActNorm FLOW.19), on its own input, and
        ``check_fit_data`` on every bijector (a spline coupling warns about its tail bound)."""
        x = self._check_x(x)
        context, _ = self._context_rows(context, x.shape[0])
        context = self._scaled(context)
        for b in self.bijectors:
            if hasattr(b, "initialize") and not getattr(b, "initialized", True):
                b.initialize(x)
            b.check_fit_data(x, self._ctx(b, context))
            x, _ = b.forward(x, self._ctx(b, context))
        return self

    def check_data(self, x, context=None) -> "Flow":
        """Push training data ``x: (n, D)`` through the chain and let every bijector warn about
        data it cannot model (``check_fit_data``). Stops at a bijector not yet initialised, and,
        when no ``context: (n, C)`` is given to a conditional flow, after the first conditional
        bijector."""
        x = self._check_x(x)
        if context is None and self.context_dim:
            context, partial = None, True
        else:
            context, _ = self._context_rows(context, x.shape[0])
            context, partial = self._scaled(context), False
        for b in self.bijectors:
            if not getattr(b, "initialized", True):
                break
            b.check_fit_data(x, self._ctx(b, context))
            if partial and b.context_dim:
                break
            x, _ = b.forward(x, self._ctx(b, context))
        return self

    def needs_initialization(self) -> bool:
        return any(hasattr(b, "initialize") and not getattr(b, "initialized", True)
                   for b in self.bijectors)

    # -- training -----------------------------------------------------------------------------
    def nll_and_grad(self, x, context=None):
        """The training loss, L = -(1/n) sum_i log p(x_i | c_i) (FLOW.1), and its gradients
        (FLOW.4): the parameter gradients of L are *added* into ``grads`` (call ``zero_grad``
        first). x: (n, D), context: (n, C) or None -> ``(L: float, d_x: (n, D), d_context)``
        with d_context of the context's shape (None for an unconditional flow)."""
        x = check_array(x, "x", ndim=2)
        n = x.shape[0]
        # (FLOW.4) weights -1/n turn sum_i w_i log p_i into the mean negative log-likelihood
        log_prob, d_x, d_context = self.log_prob_and_grad(x, context, weights=np.full(n, -1.0 / n))
        return -float(np.mean(log_prob)), d_x, d_context

    def _fit_nll_and_grad(self, x, context=None) -> float:
        """:meth:`nll_and_grad` for the minibatches of :meth:`fit`, rows of data it checked once
        (shapes, finiteness, matching rows): x (n, D), context (n, C) or None -> L: float, the
        same loss and parameter gradients (FLOW.4), bit for bit, without the per-step argument
        checks and without d_context (training does not use it). The overflow checks inside
        the flow stay. Used only while nll_and_grad and log_prob_and_grad are Flow's own."""
        n = x.shape[0]
        log_prob, _, _ = self._log_prob_and_grad(x, context, np.full(n, -1.0 / n),
                                                 context_grad=False)   # (FLOW.4)
        return -float(np.mean(log_prob))

    def _public_loss_is_flows(self) -> bool:
        """Are nll_and_grad, the log_prob_and_grad it calls and the _backward that
        :meth:`_fit_nll_and_grad` calls with ``context_grad`` Flow's own (not redefined by a
        subclass or set on this instance)? Then :meth:`_fit_nll_and_grad` computes the same loss."""
        return all(getattr(type(self), name) is getattr(Flow, name) and name not in vars(self)
                   for name in ("nll_and_grad", "log_prob_and_grad", "_backward"))

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

    def _data(self, x, context, name: str = "x"):
        """Checked (x, context) with matching rows; context None for an unconditional flow."""
        x = self._check_x(x, name)
        context, _ = self._context_rows(context, x.shape[0])
        return x, None if context is None else np.ascontiguousarray(context)

    def fit(self, x, context=None, *, rng=None, epochs: int = 100, batch_size: int = 256,
            lr: float = 1e-3, validation_fraction: float = 0.1, validation_data=None,
            patience: int | None = 20, clip: float | None = 5.0, weight_decay: float = 0.0,
            hook=None, on_divergence: str = "raise", progress: bool = True) -> "Flow":
        """Maximum likelihood: minimise :meth:`nll_and_grad` by Adam on minibatches with
        :func:`nprefgen.nn.train.fit_loop` (validation split, early stopping, best weights
        restored, divergence detection).

        Parameters
        ----------
        x : (n, D) training data; context : (n, C) or None (the conditioning variable)
        rng : SPEC 7 seed or Generator (the split, the shuffles, the hook's draws)
        epochs : maximum number of passes over the training part
        batch_size, lr, weight_decay : minibatch size and Adam's settings
        validation_fraction : share of x held out (at least one sample when > 0); 0 monitors
            the training loss instead
        validation_data : a fixed validation set instead of a split: x_val (m, D) or
            ``(x_val, context_val)``
        patience : stop after this many epochs without a better validation loss (None: never)
        clip : global gradient-norm clip (NN.17) or None
        hook : ``(epoch, rng) -> None | x | (x, context)``, called before every epoch (epoch
            0's call comes before the initialisation below); it may return new training data
            that replaces the training part (e.g. fresh dequantization noise, SPL.14; give
            ``validation_data`` then, so the validation set stays fixed)
        on_divergence : "raise" a :class:`nprefgen.nn.train.TrainingDivergedError` (default) or
            "warn"; either way the best weights are restored
        progress : a tqdm bar on a terminal (never when stderr is not a tty)

        Bijectors that need data-dependent initialisation and are not yet initialised (ActNorm,
        FLOW.19; an unfitted Standardize) are initialised on the WHOLE training part (after the
        validation rows are held out) before the first step, so no statistic sees the validation
        data. The best weights (lowest monitored loss) are restored at the end. Returns ``self``;
        the history ``{"train_loss": [...], "val_loss": [...], "best_epoch": k, "epochs": m,
        "stopped": ..., "message": ...}`` (mean NLL in nats per sample, one entry per epoch;
        ``val_loss`` empty without validation) is kept as ``self.history_``.
        """
        rng = check_rng(rng)
        x, context = self._data(x, context)
        if not self.parameters():
            raise ValueError("bijectors: expected at least one trainable parameter to fit, got none")
        check_int(epochs, "epochs", low=1)
        check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        if validation_data is None:
            train, val = validation_split(x.shape[0], validation_fraction, rng=rng)
            train_data, val_data = take((x, context), train), take((x, context), val)
            if val.size == 0:
                val_data = None
        else:
            if isinstance(validation_data, (tuple, list)):
                val_data = self._data(*validation_data, name="validation_data")
            else:
                val_data = self._data(validation_data, None, name="validation_data")
            train_data = (x, context)

        def checked(new):
            """What the hook returned, as (x, context) training data, or None."""
            if new is None:
                return None
            if isinstance(new, (tuple, list)):
                return self._data(*new, name="hook")
            return self._data(new, train_data[1], name="hook")

        if hook is not None:                   # epoch 0's data first: the initialisation sees it
            first = checked(hook(0, rng))
            train_data = train_data if first is None else first
        if self.needs_initialization():
            self.initialize(*train_data)       # on the whole training part (FLOW.19)

        # the data were checked above (and the hook's by `checked`): the unchecked loss, unless
        # nll_and_grad, the log_prob_and_grad it calls or _backward is redefined (by a subclass
        # or on this instance): then nll_and_grad is the loss, as before
        loss = self._fit_nll_and_grad if self._public_loss_is_flows() else self.nll_and_grad
        self.history_ = fit_loop(
            self, loss, train_data, rng=rng, val_data=val_data,
            evaluate=self.mean_nll, epochs=epochs, batch_size=batch_size, lr=lr,
            weight_decay=weight_decay, clip=clip, patience=patience,
            hook=None if hook is None else (
                lambda epoch, rng: None if epoch == 0 else checked(hook(epoch, rng))),
            on_divergence=on_divergence,
            progress=progress, desc="Flow.fit")
        return self

    # -- saving -------------------------------------------------------------------------------
    def validate_buffers(self, buffers) -> None:
        """The context z-scoring buffers: finite, ``context_std`` > 0 (see Bijector)."""
        super().validate_buffers(buffers)
        if "context_std" in buffers and not np.all(np.asarray(buffers["context_std"]) > 0):
            raise ValueError(f"buffers['context_std']: expected positive entries, got min "
                             f"{np.min(buffers['context_std'])}")

    def save(self, path, meta: dict | None = None) -> None:
        """Parameters, buffers and (when built by a builder) the configuration to ``.npz``;
        ``meta``: extra ``{name: numeric or string array}`` entries stored beside them (e.g. an
        MCMC posterior's settings), ignored by :meth:`load`.

        The write is atomic (:func:`nprefgen.nn.io.atomic_write`): a failed save leaves an existing
        file byte-identical. Buffers are validated first, so an invalid flow is never written.
        """
        self.check_buffer_dict(self.buffer_dict())
        meta = {**(meta or {}), **{"buffer." + k: v for k, v in self.buffer_dict().items()}}
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
            checked["buffers"] = self.check_saved_buffers(meta, f"path: {_name(path)}")
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
    """The stored ``flow_config`` entry: a JSON object of builder arguments as a 0-d string
    array -> dict."""
    return read_json_object(value, f"path: {_name(path)}: flow_config")


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
