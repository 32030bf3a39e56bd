"""The layer contract every block in :mod:`nprefgen.nn` keeps.

``y, cache = layer.forward(x)`` returns the output and an explicit cache;
``d_x = layer.backward(cache, d_y)`` returns the gradient with respect to the input and *adds*
the parameter gradients into ``layer.grads``. Nothing about a call is stored on the layer, so one
network can be applied twice in a step (siamese encoders, GAN discriminators) and its two
backward passes accumulate, as the chain rule asks.

Parameters are named arrays in ``layer.params`` with gradients of the same name in
``layer.grads``. Names and layouts follow PyTorch's ``state_dict`` (``weight`` of a Linear is
``(out_features, in_features)``; children of a Sequential are ``"0"``, ``"1"``, ...), so weights
move between nprefgen and PyTorch by name; see :mod:`nprefgen.nn.io`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

import numpy as np

from nprefgen._validation import check_array, check_float_dtype, check_str


class Module:
    """Base class: parameters, gradients, children, and the forward/backward contract."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._children: dict[str, "Module"] = {}

    # -- the contract ------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """Return ``(y, cache)``. Subclasses implement it."""
        raise NotImplementedError

    def backward(self, cache: Any, d_y: np.ndarray) -> np.ndarray:
        """Return ``d_x`` and accumulate parameter gradients into ``self.grads``."""
        raise NotImplementedError

    # -- unchecked variants for trusted internal callers ----------------------------------------
    # ``forward``/``backward`` validate their arguments (a ValueError naming the argument). Inside
    # a composition whose input was already validated (a Sequential past its first layer, a
    # bijector's conditioner), the checks would re-scan arrays that nprefgen code just produced;
    # containers call ``_forward``/``_backward`` instead. The defaults fall back to the checked
    # methods, so a layer that overrides only forward/backward keeps working everywhere.
    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """``forward`` without input checks (x already validated by the caller)."""
        return self.forward(x)

    def _backward(self, cache: Any, d_y: np.ndarray) -> np.ndarray:
        """``backward`` without cotangent checks (d_y produced by nprefgen code)."""
        return self.backward(cache, d_y)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Forward pass without the cache (inference)."""
        return self.forward(x)[0]

    # -- parameters --------------------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a parameter and its zero gradient. value: a finite float array (any shape)."""
        check_str(name, "name")
        value = check_array(value, "value", allow_empty=True)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_child(self, name: str, module: "Module") -> "Module":
        """Register a sub-module; its parameters appear as ``name.<param>``."""
        check_str(name, "name")
        if not isinstance(module, Module):
            raise ValueError(f"module: expected an nprefgen.nn.Module for child {name!r}, "
                             f"got {type(module).__name__}")
        self._children[name] = module
        return module

    def children(self) -> dict[str, "Module"]:
        return dict(self._children)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(name, param, grad)`` for this module and all children, depth first."""
        for name, p in self.params.items():
            yield prefix + name, p, self.grads[name]
        for cname, child in self._children.items():
            yield from child.named_parameters(prefix + cname + ".")

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(param, grad)`` pairs, the form the optimizers take."""
        return [(p, g) for _, p, g in self.named_parameters()]

    def zero_grad(self) -> None:
        for _, _, g in self.named_parameters():
            g[...] = 0.0

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters keyed by PyTorch-compatible names."""
        return {name: p.copy() for name, p, _ in self.named_parameters()}

    def load_state_dict(self, state, *, cast: bool = False, ignore=()) -> None:
        """Copy arrays into the parameters in place; names and shapes must match exactly.

        Parameters
        ----------
        state : mapping of parameter name -> array-like
            Anything ``np.asarray`` reads: numpy arrays, torch tensors after ``.detach()`` (on
            the CPU), jax arrays, nested lists. Names and layouts are PyTorch's ``state_dict``.
        cast : bool
            Floating arrays must already have each parameter's dtype. A float32 array loaded
            into a float64 module (or the reverse) is refused with a ValueError, because a
            silent conversion hides the precision the weights really have (float32 weights
            only agree with their float32 source to ~1e-7, not to the 1e-10 of a float64
            cross-check). ``cast=True`` converts explicitly (float32 -> float64 is exact,
            float64 -> float32 rounds); or convert the source first (``tensor.double()``), or
            the module (``module.astype(np.float32)``). Integer and bool arrays are exact
            values and are converted to the parameter's dtype either way.
        ignore : iterable of str
            Names (or fnmatch patterns, e.g. ``"*.mask"``) of entries of ``state`` to skip:
            extra buffers of another library's module that are not nprefgen parameters (the
            masks a PyTorch MADE registers as buffers, batch-norm running statistics). A
            pattern that matches one of this module's own parameters is refused.

        Everything is checked (names, shapes, dtypes, finite values) before anything is copied,
        so a bad ``state`` raises ``ValueError`` naming the entry and leaves the module as it was.
        """
        from fnmatch import fnmatchcase

        if not isinstance(state, Mapping):
            raise ValueError(f"state: expected a dict of arrays by parameter name, "
                             f"got {type(state).__name__}")
        if isinstance(ignore, str):
            ignore = (ignore,)
        ignore = tuple(ignore)
        for pattern in ignore:
            if not isinstance(pattern, str):
                raise ValueError(f"ignore: expected names or fnmatch patterns (str), got "
                                 f"{type(pattern).__name__}")
        own = {name: p for name, p, _ in self.named_parameters()}
        clash = sorted(n for n in own if any(fnmatchcase(n, pat) for pat in ignore))
        if clash:
            raise ValueError(f"ignore: {list(ignore)} matches parameters of this module {clash}; "
                             f"only extra entries of state can be ignored")
        given = {k: v for k, v in state.items()
                 if not (isinstance(k, str) and any(fnmatchcase(k, pat) for pat in ignore))}
        missing = sorted(set(own) - set(given))
        unexpected = sorted(map(str, set(given) - set(own)))
        if missing or unexpected:
            hint = (" (extra buffers such as masks can be skipped with ignore=[...])"
                    if unexpected else "")
            raise ValueError(
                f"state: expected parameter names {sorted(own)}, "
                f"missing {missing}, unexpected {unexpected}{hint}"
            )
        values = {}
        for name, p in own.items():         # check everything before copying anything
            values[name] = _state_value(given[name], name, p, cast)
        for name, p in own.items():
            p[...] = values[name]

    def astype(self, dtype) -> "Module":
        """Cast every parameter (and gradient) to ``dtype`` (float64 or float32); returns self."""
        dtype = check_float_dtype(dtype)
        for mod in self.modules():
            for name in list(mod.params):
                mod.params[name] = mod.params[name].astype(dtype)
                mod.grads[name] = np.zeros_like(mod.params[name])
        return self

    def modules(self) -> Iterator["Module"]:
        yield self
        for child in self._children.values():
            yield from child.modules()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _state_value(value, name: str, p: np.ndarray, cast: bool) -> np.ndarray:
    """One entry of ``load_state_dict``'s state as an array of ``p``'s shape and dtype."""
    where = f"state[{name!r}]"
    try:
        raw = np.asarray(value)
    except Exception as exc:            # e.g. a torch tensor that requires grad, or on a GPU
        raise ValueError(f"{where}: expected an array-like (numpy, a torch tensor after "
                         f".detach().cpu(), a jax array), got {type(value).__name__}: {exc}"[:400]
                         ) from exc
    if raw.dtype.kind == "f" and raw.dtype != p.dtype and not cast:
        raise ValueError(f"{where}: expected dtype {p.dtype} (the module's), got {raw.dtype}; "
                         f"convert explicitly: load_state_dict(state, cast=True), or convert the "
                         f"source (torch: .double() / .float()) or the module "
                         f"(module.astype(np.{raw.dtype}))")
    if raw.dtype.kind in "biuf":
        with np.errstate(over="ignore"):            # a float64 beyond float32's range -> inf,
            raw = raw.astype(p.dtype, copy=False)   # refused next as a non-finite value
    arr = check_array(raw, where, allow_empty=True, dtype=p.dtype)
    if arr.shape != p.shape:
        raise ValueError(f"{where}: expected shape {p.shape}, got {arr.shape}")
    return arr


def check_input(x, name: str, n_features: int | None, layer: Module, ndim=2) -> np.ndarray:
    """Validate a layer input: ``ndim`` dimensions, feature axis 1 of size ``n_features``."""
    x = check_array(x, name, ndim=ndim)
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(
            f"{name}: {type(layer).__name__} expected {n_features} features on axis 1, "
            f"got shape {x.shape}"
        )
    return x


def check_cotangent(d_y, y_shape: tuple, name: str = "d_y") -> np.ndarray:
    """The incoming gradient must have the forward output's shape."""
    d_y = check_array(d_y, name, allow_empty=True)
    if d_y.shape != tuple(y_shape):
        raise ValueError(f"{name}: expected shape {tuple(y_shape)}, got {d_y.shape}")
    return d_y
