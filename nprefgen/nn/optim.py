"""Optimizers and gradient clipping (derivations/nn.md, NN.15-NN.17).

Optimizers take ``(param, grad)`` pairs, e.g. ``module.parameters()``, and update the parameter
arrays in place, as ``torch.optim`` does; ``zero_grad`` zeroes the gradients in place.

What an optimizer cannot update is refused: at construction, every parameter and gradient must be
a writeable floating ndarray (an integer parameter would be written as garbage, a read-only one
cannot be written); at each ``step``, every gradient must be finite, checked for all of them
before any parameter moves, so a NaN gradient raises a ValueError naming ``params[i]`` and leaves
the parameters as they were.
"""
from __future__ import annotations

from operator import is_not

import numpy as np

from nprefgen._validation import check_scalar
from nprefgen.kernels.adam import adam_update, adam_update_all, flat_views
from nprefgen.kernels.grads import scale_all, sum_squares_all, sum_squares_all_numpy, zero_all


def _check_pairs(params) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(param, grad)`` array pairs of equal shape, e.g. ``module.parameters()``."""
    try:
        pairs = list(params)
    except TypeError:
        raise ValueError(f"params: expected an iterable of (param, grad) pairs, got "
                         f"{type(params).__name__}") from None
    for i, pair in enumerate(pairs):
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and all(
            isinstance(a, np.ndarray) for a in pair) and pair[0].shape == pair[1].shape
        if not ok:
            raise ValueError(f"params: expected (param, grad) array pairs of equal shape, got "
                             f"{type(pair).__name__} at position {i}")
    return [tuple(pair) for pair in pairs]


def _check_updatable(pairs) -> None:
    """Every parameter and gradient a writeable floating array (what an update can write)."""
    for i, (p, g) in enumerate(pairs):
        for what, a in (("parameter", p), ("gradient", g)):
            if a.dtype.kind != "f":
                raise ValueError(f"params[{i}]: expected a floating {what} (float64 or float32), "
                                 f"got dtype {a.dtype} of shape {a.shape}")
            if not a.flags.writeable:
                raise ValueError(f"params[{i}]: expected a writeable {what}, got a read-only "
                                 f"array of shape {a.shape}")


def _check_finite_grads(params) -> None:
    """Raise a ValueError naming the first ``params[i]`` whose gradient holds NaN or inf.

    One ``np.isfinite(g).all()`` per array; optimizers call it before they move any parameter.
    """
    for i, (_, g) in enumerate(params):
        if not np.isfinite(g).all():
            n_bad = int(g.size - np.count_nonzero(np.isfinite(g)))
            raise ValueError(f"params[{i}]: expected a finite gradient, got {n_bad} NaN/inf of "
                             f"{g.size} entries (shape {g.shape}); no parameter was updated. A "
                             f"training loop diverged, or the loss overflowed: lower the "
                             f"learning rate or clip the gradients")


class Optimizer:
    def __init__(self, params) -> None:
        self.params = _check_pairs(params)
        if not self.params:
            raise ValueError("params: expected at least one (param, grad) pair, got none")
        _check_updatable(self.params)

    def zero_grad(self) -> None:
        for _, g in self.params:
            g[...] = 0.0

    def grad_norm(self) -> float:
        """(NN.17) The global 2-norm of the gradients, sqrt(sum_k |g_k|^2)."""
        return float(np.sqrt(sum_squares_all_numpy([g for _, g in self.params])))

    def _clip_grad_norm(self, max_norm: float, norm: float | None = None) -> float:
        """(NN.17) :func:`clip_grad_norm` over this optimizer's gradients, for the training loop
        (the pairs were checked when the optimizer was made, ``max_norm`` by the loop); ``norm``
        as there. Returns the norm before clipping."""
        total = self.grad_norm() if norm is None else float(norm)
        coef = _clip_coefficient(max_norm, total)
        if coef < 1.0:
            self._scale_grads(coef)
        return total

    def _scale_grads(self, coef: float) -> None:
        for _, g in self.params:
            g *= coef

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """(NN.15) v <- mu v + g (+ weight_decay p); p <- p - lr v  (PyTorch's SGD, dampening 0).

    Defaults as ``torch.optim.SGD`` (lr 1e-3 since PyTorch 2.2, no momentum, no weight decay).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        self.momentum = check_scalar(momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        self.weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
        self.velocity = [np.zeros_like(p) for p, _ in self.params]
        self.t = 0

    def step(self) -> None:
        _check_finite_grads(self.params)
        for (p, g), v in zip(self.params, self.velocity):
            d = g + self.weight_decay * p if self.weight_decay else g
            if self.momentum:
                if self.t == 0:
                    v[...] = d
                else:
                    v *= self.momentum
                    v += d
                d = v
            p -= self.lr * d
        self.t += 1


class Adam(Optimizer):
    """(NN.16) Kingma & Ba (2015), as torch.optim.Adam:
    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
    p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
        if not isinstance(betas, (tuple, list, np.ndarray)) or len(betas) != 2:
            raise ValueError(f"betas: expected two numbers, got {betas!r}")
        self.b1 = check_scalar(betas[0], "betas[0]", low=0.0, high=1.0, high_inclusive=False)
        self.b2 = check_scalar(betas[1], "betas[1]", low=0.0, high=1.0, high_inclusive=False)
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
        self.weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
        self.m = [np.zeros_like(p) for p, _ in self.params]
        self.v = [np.zeros_like(p) for p, _ in self.params]
        self.t = 0
        self._flat = None           # (arrays the views were made of, typed Lists of flat views)

    def __getstate__(self):
        """Copies and pickles leave the flat views out (numba Lists cannot be copied; views of the
        original arrays would be wrong for the copy's); the next step remakes them."""
        return {**self.__dict__, "_flat": None}

    def _flat_views(self):
        """Flat views of every p, g, m, v for the one-call kernel, made once and remade if an
        array was replaced; None (one call per array) for mixed dtypes or strided arrays. The
        check runs three times a step, so it compares the (param, grad) tuples and the m, v
        arrays by identity in C (``map(is_not, ...)``) instead of rebuilding the array list."""
        sources = (self.params, self.m, self.v)
        cached = self._flat
        if cached is None or any(len(now) != len(then) or any(map(is_not, now, then))
                                 for now, then in zip(sources, cached[0])):
            arrays = [p for p, _ in self.params] + [g for _, g in self.params] + self.m + self.v
            one_dtype = len({a.dtype for a in arrays}) == 1
            n = len(self.params)
            lists = [flat_views(arrays[i * n:(i + 1) * n]) for i in range(4)] if one_dtype else [None]
            self._flat = (tuple(list(src) for src in sources),
                          None if any(x is None for x in lists) else lists)
        return self._flat[1]

    def zero_grad(self) -> None:
        flat = self._flat_views()
        if flat is None:
            super().zero_grad()
        else:
            zero_all(flat[1])                               # one call (kernels/grads.py)

    def grad_norm(self) -> float:
        """(NN.17) As :meth:`Optimizer.grad_norm`, in one kernel call when the arrays allow it
        (bit-identical: kernels/grads.py)."""
        flat = self._flat_views()
        if flat is None:
            return super().grad_norm()
        return float(np.sqrt(sum_squares_all(flat[1])))

    def _scale_grads(self, coef: float) -> None:
        flat = self._flat_views()
        if flat is None:
            super()._scale_grads(coef)
        else:                           # g *= coef in the gradients' dtype, as NumPy does
            scale_all(flat[1], self.params[0][1].dtype.type(coef))

    def step(self) -> None:
        t = self.t + 1
        c1 = 1.0 - self.b1 ** t
        c2 = 1.0 - self.b2 ** t
        flat = self._flat_views()
        if flat is None:
            _check_finite_grads(self.params)
            for (p, g), m, v in zip(self.params, self.m, self.v):
                # (NN.16) one fused pass per array (kernels/adam.py; NumPy twin adam_update_numpy)
                adam_update(p, g, m, v, self.lr, self.b1, self.b2, self.eps, c1, c2,
                            self.weight_decay)
        # (NN.16) every array in one kernel call, gradients checked first (bit-identical)
        elif adam_update_all(*flat, self.lr, self.b1, self.b2, self.eps, c1, c2,
                             self.weight_decay, dtype=self.params[0][0].dtype) >= 0:
            _check_finite_grads(self.params)           # raises, naming params[i]
        self.t = t


def _clip_coefficient(max_norm: float, total: float) -> float:
    """(NN.17) min(1, max_norm / (||g|| + 1e-6)) as torch.nn.utils.clip_grad_norm_ computes it."""
    if not np.isfinite(total):
        raise ValueError(f"params: expected finite gradients to clip, got norm {total}")
    return max_norm / (total + 1e-6)


def clip_grad_norm(params, max_norm: float, norm: float | None = None) -> float:
    """(NN.17) Scale all gradients by min(1, max_norm / ||g||), ||g|| the global 2-norm.

    norm : ||g|| when the caller has just computed it (the training loop does, with
        :func:`nprefgen.nn.train.grad_norm`, the same sum), else None to compute it here.
    Returns the norm before clipping (as ``torch.nn.utils.clip_grad_norm_``).
    """
    max_norm = check_scalar(max_norm, "max_norm", low=0.0, low_inclusive=False)
    grads = [g for _, g in _check_pairs(params)]
    total = float(np.sqrt(sum_squares_all_numpy(grads))) if norm is None else \
        float(norm)
    coef = _clip_coefficient(max_norm, total)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total
