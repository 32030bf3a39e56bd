"""The bijector contract (derivations/flows.md).

A bijector f maps data x to latent z = f(x) with a tractable log|det df/dx|, optionally
conditioned on a context vector c per sample::

    z, log_det = b.forward(x, context=None)        # x: (n, D) -> z: (n, D), log_det: (n,)
    x, log_det_inv = b.inverse(z, context=None)    # log_det_inv = -log_det at the same point

For training, ``forward_cached`` also returns an explicit cache and ``backward`` turns the
gradients of a loss with respect to ``z`` and ``log_det`` into gradients with respect to ``x``
and the context, while *adding* the parameter gradients into ``b.grads`` (and its children's),
exactly like :class:`nprefgen.nn.Module`. No per-call state lives on the bijector.

Besides trained parameters, a bijector may hold fixed arrays that define it (a permutation, a
coupling mask, MADE masks, a standardization's shift and scale): these are *buffers*, registered
with ``register_buffer`` and listed by ``named_buffers`` so that a flow can be saved and loaded
exactly (``nprefgen.flows.flow.Flow.save``). Optimizers never see them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nprefgen._validation import check_array, check_float_dtype, check_int
from nprefgen.nn.base import Module

MAX_PARAMETERS = 10**8
"""Largest number of trained parameters a flow builder or bijector accepts (800 MB in float64,
before Adam's two moment buffers and the gradients triple it). Larger requests are refused up
front, before any array is allocated, instead of failing after minutes in an allocator."""


def hidden_widths(hidden) -> list[int]:
    """An int h means two hidden layers of h units; a sequence lists the widths (each >= 1)."""
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        h = check_int(hidden, "hidden", low=1)
        return [h, h]
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__"):
        raise ValueError(f"hidden: expected an int or a sequence of ints, got {hidden!r}")
    if len(hidden) > MAX_PARAMETERS:
        raise ValueError(f"hidden: expected at most {MAX_PARAMETERS} hidden layers, got {len(hidden)}")
    try:
        return [check_int(h, "hidden", low=1) for h in hidden]
    except TypeError:
        raise ValueError(f"hidden: expected an int or a sequence of ints, got {hidden!r}") from None


def mlp_parameter_count(widths) -> int:
    """Weights and biases of an MLP with layer widths [in, h_1, ..., out] (Python ints, exact)."""
    widths = [int(w) for w in widths]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def check_parameter_count(count: int, what: str, name: str = "hidden") -> int:
    """Refuse a model of more than :data:`MAX_PARAMETERS` parameters before it is allocated.

    count : the estimated parameter count; what : the model described in the message; name :
    the argument the message points at. -> count.
    """
    if count > MAX_PARAMETERS:
        raise ValueError(f"{name}: {what} would have {count:.3g} parameters "
                         f"({8 * count / 2**30:.3g} GiB in float64), above the cap of "
                         f"{MAX_PARAMETERS:.0e} (nprefgen.flows.base.MAX_PARAMETERS); use smaller "
                         f"hidden widths, fewer layers or fewer bins")
    return count


class Bijector(Module):
    """Base class. Subclasses implement ``forward_cached``, ``backward`` and ``inverse``.

    Attributes
    ----------
    dim : int, the event dimension D.
    context_dim : int, the context size (0 for an unconditional bijector).
    """

    def __init__(self, dim: int, context_dim: int = 0) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", low=1)
        self.context_dim = check_int(context_dim, "context_dim", low=0)
        # every bijector holds arrays of size D (masks, scales, permutations): bound D up front
        check_parameter_count(self.dim + self.context_dim, f"a {type(self).__name__} of dim {self.dim}",
                              name="dim")
        self.buffers: dict[str, np.ndarray] = {}

    # -- buffers: fixed (non-trained) arrays that define the bijector ---------------------------
    def register_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a fixed array; loading copies into it in place, so keep using this object."""
        self.buffers[name] = value
        return value

    def named_buffers(self, prefix: str = ""):
        """Yield ``(name, array)`` for this bijector's buffers and its children's, depth first.

        Children that are plain :class:`nprefgen.nn.Module` objects have no buffers.
        """
        for name, b in getattr(self, "buffers", {}).items():
            yield prefix + name, b
        for cname, child in self._children.items():
            if isinstance(child, Bijector):
                yield from child.named_buffers(prefix + cname + ".")

    def buffer_dict(self) -> dict[str, np.ndarray]:
        """Copies of all buffers keyed by name."""
        return {name: b.copy() for name, b in self.named_buffers()}

    def _buffer_owners(self, prefix: str = ""):
        """Yield ``(prefix, bijector)`` for this bijector and its bijector children."""
        yield prefix, self
        for cname, child in self._children.items():
            if isinstance(child, Bijector):
                yield from child._buffer_owners(prefix + cname + ".")

    def validate_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Check candidate values for this bijector's *own* buffers (keyed by name, children
        excluded) before anything is loaded; raise ValueError naming the buffer.

        The default checks what holds for every buffer: the registered shape, a numeric dtype,
        finite values that the buffer's dtype represents exactly. Subclasses with invariants (a
        permutation, a 0/1 mask, a positive scale) extend it and call ``super()`` first.
        """
        for name, current in getattr(self, "buffers", {}).items():
            value = np.asarray(buffers[name])
            where = f"buffers[{name!r}] of {type(self).__name__}"
            if value.dtype.kind not in "biuf":
                raise ValueError(f"{where}: expected a numeric array, got dtype {value.dtype}")
            if value.shape != current.shape:
                raise ValueError(f"{where}: expected shape {current.shape}, got {value.shape}")
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise ValueError(f"{where}: expected finite values, got NaN/inf")
            with np.errstate(all="ignore"):
                if not np.array_equal(value.astype(current.dtype), value):
                    raise ValueError(f"{where}: expected values that {current.dtype} holds "
                                     f"exactly, got {value.ravel()[:5].tolist()}")

    def check_saved_buffers(self, meta: dict, where: str) -> dict[str, np.ndarray]:
        """:meth:`check_buffer_dict` of the ``buffer.<name>`` entries of a saved file's metadata;
        a failure raises ValueError "<where> holds invalid buffers: ...". -> {name: array}."""
        buffers = {k[len("buffer."):]: v for k, v in meta.items() if k.startswith("buffer.")}
        try:
            return self.check_buffer_dict(buffers)
        except ValueError as exc:
            raise ValueError(f"{where} holds invalid buffers: {exc}") from exc

    def check_buffer_dict(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate a whole ``buffer_dict``-like mapping without assigning anything: the exact
        names, then every bijector's :meth:`validate_buffers`. -> {name: array}."""
        own = dict(self.named_buffers())
        state = dict(state)
        for name, value in self._legacy_fill(set(own) - set(state)).items():
            state[name] = value
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"buffers: expected names {sorted(own)}, missing {missing}, "
                             f"unexpected {unexpected}")
        for prefix, b in self._buffer_owners():
            mine = {name: np.asarray(state[prefix + name]) for name in getattr(b, "buffers", {})}
            if mine:
                try:
                    b.validate_buffers(mine)
                except ValueError as exc:
                    where = f"bijector {prefix[:-1]}" if prefix else type(self).__name__
                    raise ValueError(f"{where}: {exc}") from exc
        return {name: np.asarray(state[name]) for name in own}

    def load_buffer_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the buffers in place, after :meth:`check_buffer_dict` passed (all or
        nothing)."""
        values = self.check_buffer_dict(state)
        for name, b in self.named_buffers():
            b[...] = values[name]
        for mod in self.modules():
            if isinstance(mod, Bijector):
                mod._buffers_loaded()

    def _buffers_loaded(self) -> None:
        """Hook: recompute anything derived from the buffers after loading (default: nothing)."""

    def astype(self, dtype) -> "Bijector":
        """Cast every parameter, gradient *and floating buffer* (masks, standardisation
        statistics, a flow's context scaling) to ``dtype``, float64 or float32; returns self.

        A float32 bijector given float32 inputs then computes in float32 throughout: ``z``,
        ``log_det``, the inverse and every gradient it returns (input, context, parameters) are
        float32. Integer buffers (a permutation) keep their dtype.
        """
        super().astype(dtype)
        dtype = check_float_dtype(dtype)
        for mod in self.modules():
            if not isinstance(mod, Bijector):
                continue
            for name, buf in list(mod.buffers.items()):
                if buf.dtype.kind != "f" or buf.dtype == dtype:
                    continue
                new = buf.astype(dtype)
                for attr, value in list(vars(mod).items()):     # attributes aliasing the buffer
                    if value is buf:
                        setattr(mod, attr, new)
                mod.buffers[name] = new
            mod._buffers_loaded()
        return self

    # Buffers added after files were first written: the value a file without them implies.
    legacy_buffers: dict[str, float] = {}

    def _legacy_fill(self, missing: set, prefix: str = "") -> dict[str, np.ndarray]:
        """Values for ``missing`` buffer names that a bijector declares in ``legacy_buffers``."""
        out = {}
        for name, value in self.legacy_buffers.items():
            full = prefix + name
            if full in missing:
                out[full] = np.full(self.buffers[name].shape, value)
        for cname, child in self._children.items():
            if isinstance(child, Bijector):
                out.update(child._legacy_fill(missing, prefix + cname + "."))
        return out

    # -- checks shared by every bijector --------------------------------------------------------
    def _check_x(self, x, name: str = "x") -> np.ndarray:
        x = check_array(x, name, ndim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"{name}: {type(self).__name__} expected shape (n, {self.dim}), got {x.shape}")
        return x

    def _check_context(self, context, n: int) -> np.ndarray | None:
        if self.context_dim == 0:
            if context is not None:
                raise ValueError(f"context: {type(self).__name__} is unconditional, expected None, "
                                 f"got {np.shape(context)}")
            return None
        if context is None:
            raise ValueError(f"context: {type(self).__name__} expected shape (n, {self.context_dim}), got None")
        context = check_array(context, "context", ndim=2)
        if context.shape != (n, self.context_dim):
            raise ValueError(f"context: expected shape ({n}, {self.context_dim}), got {context.shape}")
        return context

    def _check_cotangents(self, d_z, d_log_det, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The incoming gradients of ``backward``: d_z: (n, D), d_log_det: (n,)."""
        d_z = check_array(d_z, "d_z", ndim=2)
        if d_z.shape != (n, self.dim):
            raise ValueError(f"d_z: expected shape ({n}, {self.dim}), got {d_z.shape}")
        d_log_det = check_array(d_log_det, "d_log_det", ndim=1)
        if d_log_det.shape != (n,):
            raise ValueError(f"d_log_det: expected shape ({n},), got {d_log_det.shape}")
        return d_z, d_log_det

    # -- the contract ---------------------------------------------------------------------------
    def forward_cached(self, x, context=None) -> tuple[np.ndarray, np.ndarray, Any]:
        """x: (n, D), context: (n, C) or None -> z: (n, D), log_det: (n,), cache."""
        raise NotImplementedError

    # -- unchecked variants for trusted internal callers ----------------------------------------
    # A chain validates its input once; its bijectors then get arrays nprefgen code produced and
    # run ``_forward_cached``/``_backward`` without re-checking them. The defaults fall back to the
    # checked methods, so a bijector that implements only the public contract works in any chain.
    def _forward_cached(self, x, context=None) -> tuple[np.ndarray, np.ndarray, Any]:
        """``forward_cached`` without input checks (x, context validated by the caller)."""
        return self.forward_cached(x, context)

    def _backward(self, cache, d_z: np.ndarray, d_log_det: np.ndarray):
        """``backward`` without cotangent checks (d_z, d_log_det produced by nprefgen code)."""
        return self.backward(cache, d_z, d_log_det)

    def check_fit_data(self, x, context=None) -> None:
        """Hook: warn about training data this bijector cannot model well, given its input
        ``x: (n, D)`` (default: nothing; a spline coupling warns about its tail bound)."""

    def forward(self, x, context=None) -> tuple[np.ndarray, np.ndarray]:
        """z = f(x), log|det df/dx| per sample."""
        z, log_det, _ = self.forward_cached(x, context)
        return z, log_det

    def inverse(self, z, context=None) -> tuple[np.ndarray, np.ndarray]:
        """x = f^{-1}(z), log|det df^{-1}/dz| = -log|det df/dx| per sample."""
        raise NotImplementedError

    def backward(self, cache, d_z: np.ndarray, d_log_det: np.ndarray):
        """Gradients of a loss L(z, log_det).

        d_z: (n, D), d_log_det: (n,) -> (d_x: (n, D), d_context: (n, C) or None).
        Parameter gradients are accumulated into ``self.grads`` (and children's).
        """
        raise NotImplementedError

    def __call__(self, x, context=None):
        return self.forward(x, context)
