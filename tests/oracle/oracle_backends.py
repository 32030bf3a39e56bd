"""Two autodiff oracles behind one small interface: ``torch.autograd`` and JAX in float64 mode
(``jax.value_and_grad``, reverse mode through ``jax.vjp``, and ``jax.jacfwd``), for the
cross-checks in tests/oracle/.

The formulas under test are written once, in tests/oracle/oracle_formulas.py, against the handful of
array operations below (``B.tanh``, ``B.cat``, ``B.cols``, ...), directly from the derivations and
never calling nprefgen. Each backend then evaluates them and differentiates them with its own
autodiff engine, so a value or gradient of nprefgen has to agree with two independent machines.

``backend`` (the pytest fixture in tests/oracle/conftest.py) is parametrised over "torch" and
"jax"; a backend whose library is missing skips its half of every test (pytest.importorskip),
unless NPREFGEN_REQUIRE_ORACLE=1, which turns those skips into failures (CI sets it).

Agreement is measured normwise: ``max|ours - theirs| <= rtol * max|theirs|`` per array
(:func:`assert_rel`), rtol = 1e-10 in float64 unless a test states a derived exception.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

RTOL = 1e-10
REQUIRE_ENV = "NPREFGEN_REQUIRE_ORACLE"


def require(module: str):
    """``pytest.importorskip(module)``; a failure instead of a skip under NPREFGEN_REQUIRE_ORACLE=1."""
    if os.environ.get(REQUIRE_ENV) == "1":
        try:
            mod = __import__(module)
        except ImportError as exc:       # pragma: no cover - only in a broken CI environment
            pytest.fail(f"{REQUIRE_ENV}=1 but {module} is not importable ({exc}); "
                        f"install the extras: pip install '.[oracle]'")
        return mod
    return pytest.importorskip(module)


def rel_error(ours, theirs) -> float:
    """Normwise relative error max|a - b| / max|b| (0 when both are exactly zero)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a - b))) if b.size else 0.0
    if scale == 0.0:
        return err
    return err / scale


def assert_rel(ours, theirs, rtol: float = RTOL, what: str = "") -> None:
    err = rel_error(ours, theirs)
    assert err <= rtol, f"{what}: relative error {err:.3e} > {rtol:.0e}"


class Backend:
    """The array operations the formulas use; subclasses bind them to torch or jax.numpy."""

    name = ""

    # conversions ---------------------------------------------------------------------------------
    def asarray(self, a):
        raise NotImplementedError

    def numpy(self, a) -> np.ndarray:
        raise NotImplementedError

    # autodiff ------------------------------------------------------------------------------------
    def value_and_grad(self, fun, inputs: dict):
        """fun(dict of backend arrays) -> scalar. Returns (value: float, {name: gradient})."""
        raise NotImplementedError

    def jacobian(self, fun, x: np.ndarray) -> np.ndarray:
        """fun: (D,) -> (D,) backend function; returns its (D, D) Jacobian at x by autodiff."""
        raise NotImplementedError

    def batch_jacobian(self, fun, x: np.ndarray) -> np.ndarray:
        """fun: (n, D) -> (n, D) acting row by row; returns the n per-row Jacobians (n, D, D)."""
        raise NotImplementedError


class TorchBackend(Backend):
    name = "torch"

    def __init__(self):
        self.t = require("torch")
        self.F = self.t.nn.functional

    def asarray(self, a):
        if isinstance(a, self.t.Tensor):
            return a
        return self.t.as_tensor(np.asarray(a, dtype=np.float64))

    def index(self, idx):
        return self.t.as_tensor(np.asarray(idx, dtype=np.int64))

    def numpy(self, a):
        return a.detach().numpy().copy()

    def value_and_grad(self, fun, inputs):
        leaves = {k: self.t.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
                  for k, v in inputs.items()}
        value = fun(leaves)
        value.backward()
        grads = {k: (t.grad.numpy().copy() if t.grad is not None else np.zeros(t.shape))
                 for k, t in leaves.items()}
        return float(value.item()), grads

    def jacobian(self, fun, x):
        return self.t.autograd.functional.jacobian(fun, self.asarray(x)).numpy()

    def batch_jacobian(self, fun, x):
        jac = self.t.autograd.functional.jacobian(fun, self.asarray(x), vectorize=True)
        return self.t.einsum("iaib->iab", jac).numpy()

    # elementwise
    def tanh(self, a): return self.t.tanh(a)
    def exp(self, a): return self.t.exp(a)
    def log(self, a): return self.t.log(a)
    def log1p(self, a): return self.t.log1p(a)
    def sqrt(self, a): return self.t.sqrt(a)
    def sigmoid(self, a): return self.t.sigmoid(a)
    def softplus(self, a): return self.F.softplus(a)
    def relu(self, a): return self.t.relu(a)
    def leaky_relu(self, a, slope): return self.F.leaky_relu(a, slope)
    def elu(self, a, alpha): return self.F.elu(a, alpha)
    def where(self, c, a, b): return self.t.where(self.t.as_tensor(c), a, b)
    def abs(self, a): return self.t.abs(a)

    # reductions and shapes
    def sum(self, a, axis=None):
        return self.t.sum(a) if axis is None else self.t.sum(a, dim=axis)
    def mean(self, a): return self.t.mean(a)
    def cumsum(self, a, axis): return self.t.cumsum(a, dim=axis)
    def softmax(self, a, axis): return self.t.softmax(a, dim=axis)
    def logsumexp(self, a, axis): return self.t.logsumexp(a, dim=axis)
    def cat(self, arrays, axis): return self.t.cat(list(arrays), dim=axis)
    def cols(self, a, idx): return a[:, self.index(idx)]
    def reshape(self, a, shape): return a.reshape(shape)
    def zeros(self, shape): return self.t.zeros(shape, dtype=self.t.float64)
    def ones(self, shape): return self.t.ones(shape, dtype=self.t.float64)
    def eye(self, n): return self.t.eye(n, dtype=self.t.float64)
    def cholesky(self, a): return self.t.linalg.cholesky(a)
    def solve_triangular_lower(self, L, b): return self.t.linalg.solve_triangular(L, b, upper=False)
    def diagonal(self, a): return self.t.diagonal(a, dim1=-2, dim2=-1)

    # convolutions (PyTorch semantics, weights (out, in, kh, kw) / (in, out, kh, kw))
    def conv2d(self, x, w, b, stride, padding):
        return self.F.conv2d(x, w, b, stride=stride, padding=padding)

    def conv_transpose2d(self, x, w, b, stride, padding, output_padding):
        return self.F.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                       output_padding=output_padding)


class JaxBackend(Backend):
    name = "jax"

    def __init__(self):
        jax = require("jax")
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        assert jnp.ones(1).dtype == np.float64, "JAX must run in float64 (jax_enable_x64)"

    def asarray(self, a):
        return self.jnp.asarray(np.asarray(a, dtype=np.float64) if isinstance(a, np.ndarray)
                                or np.isscalar(a) else a)

    def numpy(self, a):
        return np.array(a, dtype=np.float64)

    def value_and_grad(self, fun, inputs):
        leaves = {k: self.jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in inputs.items()}
        value, grads = self.jax.jit(self.jax.value_and_grad(fun))(leaves)   # one XLA program
        return float(value), {k: np.array(g) for k, g in grads.items()}

    def jacobian(self, fun, x):
        return np.array(self.jax.jit(self.jax.jacfwd(fun))(self.jnp.asarray(x)))

    def batch_jacobian(self, fun, x):
        jac = self.jax.jit(self.jax.jacfwd(fun))(self.jnp.asarray(x))          # (n, D, n, D)
        return np.array(self.jnp.einsum("iaib->iab", jac))

    def tanh(self, a): return self.jnp.tanh(a)
    def exp(self, a): return self.jnp.exp(a)
    def log(self, a): return self.jnp.log(a)
    def log1p(self, a): return self.jnp.log1p(a)
    def sqrt(self, a): return self.jnp.sqrt(a)
    def sigmoid(self, a): return self.jax.nn.sigmoid(a)
    def softplus(self, a): return self.jax.nn.softplus(a)
    def relu(self, a): return self.jax.nn.relu(a)
    def leaky_relu(self, a, slope): return self.jnp.where(a >= 0, a, slope * a)
    def elu(self, a, alpha): return self.jnp.where(a > 0, a, alpha * self.jnp.expm1(self.jnp.minimum(a, 0.0)))
    def where(self, c, a, b): return self.jnp.where(c, a, b)
    def abs(self, a): return self.jnp.abs(a)

    def sum(self, a, axis=None): return self.jnp.sum(a, axis=axis)
    def mean(self, a): return self.jnp.mean(a)
    def cumsum(self, a, axis): return self.jnp.cumsum(a, axis=axis)
    def softmax(self, a, axis): return self.jax.nn.softmax(a, axis=axis)
    def logsumexp(self, a, axis): return self.jax.scipy.special.logsumexp(a, axis=axis)
    def cat(self, arrays, axis): return self.jnp.concatenate(list(arrays), axis=axis)
    def cols(self, a, idx): return a[:, np.asarray(idx, dtype=np.int64)]
    def reshape(self, a, shape): return self.jnp.reshape(a, shape)
    def zeros(self, shape): return self.jnp.zeros(shape)
    def ones(self, shape): return self.jnp.ones(shape)
    def eye(self, n): return self.jnp.eye(n)
    def cholesky(self, a): return self.jnp.linalg.cholesky(a)
    def solve_triangular_lower(self, L, b):
        return self.jax.scipy.linalg.solve_triangular(L, b, lower=True)
    def diagonal(self, a): return self.jnp.diagonal(a, axis1=-2, axis2=-1)

    def conv2d(self, x, w, b, stride, padding):
        lax = self.jax.lax
        y = lax.conv_general_dilated(x, w, window_strides=stride,
                                     padding=[(p, p) for p in padding],
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                     precision=lax.Precision.HIGHEST)
        return y if b is None else y + b[None, :, None, None]

    def conv_transpose2d(self, x, w, b, stride, padding, output_padding):
        """The transpose of conv2d written as a conv of the stride-dilated input with the
        spatially flipped kernel, (in, out) swapped; padding k - 1 - p (+ output_padding after)."""
        lax = self.jax.lax
        kh, kw = w.shape[2:]
        k = self.jnp.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3)
        pads = [(kk - 1 - p, kk - 1 - p + op) for kk, p, op in zip((kh, kw), padding, output_padding)]
        y = lax.conv_general_dilated(x, k, window_strides=(1, 1), padding=pads, lhs_dilation=stride,
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                     precision=lax.Precision.HIGHEST)
        return y if b is None else y + b[None, :, None, None]


BACKENDS = {"torch": TorchBackend, "jax": JaxBackend}
