"""Golden files: nprefgen's values and gradients for deterministic weights and inputs, written
so that another implementation (PyTorch, JAX, ...) can check itself against them.

A *case* builds one object of :mod:`nprefgen.nn`, :mod:`nprefgen.flows` or :mod:`nprefgen.models`
(a layer, a loss, a bijector, a flow builder's flow or a model with a loss) from ``seed``, draws
its inputs (and context, fixed noise, cotangents) from the same seed, and records

* the parameters under PyTorch ``state_dict`` names and layouts, and the buffers (masks,
  permutations, orders, standardisation statistics);
* the outputs (values, log-determinants, inverse, log-density, loss);
* the gradients of one scalar objective (``meta.objective``: the loss itself, or ``sum(cotangent *
  output)`` for vector outputs) with respect to every input, the context and every parameter;
* metadata: nprefgen version, derivation labels, dtype, seed, batch, shapes, and the formula
  variant (scale bound, spline tail bound and minimums, parameter order).

The file is an ``.npz`` of plain arrays (never pickle) with the metadata as a JSON string entry;
:mod:`nprefgen.testing.golden_reader` reads and compares it with numpy alone and documents every
field. Usage::

    from nprefgen.testing.golden import iter_cases, build_case, export_case
    [case.name for case in iter_cases()]                  # "nn.Linear", "flows.realnvp", ...
    arrays = build_case("flows.AffineCoupling", seed=0, dtype="float64", batch=5)
    export_case("nn.Conv2d", "conv.npz", seed=1)           # atomic write (nprefgen.nn.io)

or the command line: ``nprefgen oracle list | export NAME --out case.npz | compare case.npz
theirs.npz``. The cases themselves live in :mod:`nprefgen.testing.golden_cases` (and
``golden_models``). :func:`build_record` also returns the case's ``evaluate(params, inputs)``, the
objective recomputed by nprefgen, and :func:`gradient_errors` checks every recorded gradient
against central differences of it (NN.19).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

import nprefgen
from nprefgen._validation import check_choice, check_int, check_rng
from nprefgen.nn.base import Module
from nprefgen.nn.io import atomic_write
from nprefgen.nn.linear import MaskedLinear
from nprefgen.testing.golden_reader import FORMAT, FORMAT_VERSION, check_golden

KINDS = ("layer", "loss", "bijector", "flow", "model")
DTYPES = ("float64", "float32")


@dataclass
class Record:
    """What a case computes; every dict maps a name to an array (names become ``group.name``)."""

    params: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    cotangents: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    grad_inputs: dict = field(default_factory=dict)
    grad_params: dict = field(default_factory=dict)
    objective: str = ""
    constructor: str = ""
    variant: dict = field(default_factory=dict)
    evaluate: Callable | None = None
    """``evaluate(params, inputs) -> float``: the objective recomputed by nprefgen from other
    parameter and input values (same names); not written to files. :func:`gradient_errors`
    checks every ``grad.*`` against central differences of it."""
    symmetric: tuple = ()
    """Names of parameters (symmetric matrices) whose directions are symmetrised in that check."""

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for group, values in (("param", self.params), ("buffer", self.buffers),
                              ("input", self.inputs), ("cotangent", self.cotangents),
                              ("output", self.outputs), ("grad.input", self.grad_inputs),
                              ("grad.param", self.grad_params)):
            for name, value in values.items():
                out[f"{group}.{name}"] = np.array(value)        # a copy, 0-d for scalars
        return out


@dataclass(frozen=True)
class GoldenCase:
    """One registered case: ``build(rng, dtype, batch) -> Record``."""

    name: str
    kind: str
    labels: tuple[str, ...]
    summary: str
    build: Callable[[np.random.Generator, np.dtype, int], Record]
    dtypes: tuple[str, ...] = DTYPES
    batch: int = 4
    min_batch: int = 1


_CASES: dict[str, GoldenCase] = {}


def register_case(name: str, kind: str, labels, summary: str, *, dtypes=DTYPES, batch: int = 4,
                  min_batch: int = 1):
    """Decorator registering ``build(rng, dtype, batch) -> Record`` under ``name``."""
    check_choice(kind, "kind", KINDS)

    def decorate(build):
        if name in _CASES:
            raise ValueError(f"name: a golden case {name!r} is already registered")
        _CASES[name] = GoldenCase(name, kind, tuple(labels), summary, build, tuple(dtypes),
                                  batch, min_batch)
        return build
    return decorate


def _load_cases() -> None:
    from nprefgen.testing import golden_cases  # noqa: F401  (registers on import)


def iter_cases(kind: str | None = None) -> Iterator[GoldenCase]:
    """Every registered case in registration order (layers, losses, bijectors, flows, models),
    or only those of ``kind``."""
    _load_cases()
    if kind is not None:
        check_choice(kind, "kind", KINDS)
    return iter([c for c in _CASES.values() if kind is None or c.kind == kind])


def case_names() -> list[str]:
    return [c.name for c in iter_cases()]


def get_case(name: str) -> GoldenCase:
    _load_cases()
    if not isinstance(name, str) or name not in _CASES:
        raise ValueError(f"name: expected a golden case name (nprefgen oracle list), got "
                         f"{name!r}; known: {', '.join(_CASES)}"[:1500])
    return _CASES[name]


def build_record(name: str, *, seed: int = 0, dtype: str = "float64",
                 batch: int | None = None) -> tuple[Record, int]:
    """Build case ``name`` -> ``(Record, batch)``, the Record with its ``evaluate`` callable
    (arguments as :func:`build_case`)."""
    case = get_case(name)
    seed = check_int(seed, "seed", low=0)
    check_choice(dtype, "dtype", DTYPES)
    if dtype not in case.dtypes:
        raise ValueError(f"dtype: case {name!r} supports {list(case.dtypes)}, got {dtype!r}")
    batch = case.batch if batch is None else check_int(batch, "batch", low=case.min_batch)
    return case.build(np.random.default_rng(seed), np.dtype(dtype), batch), batch


def build_case(name: str, *, seed: int = 0, dtype: str = "float64",
               batch: int | None = None) -> dict[str, np.ndarray]:
    """Build case ``name`` and return its arrays ``{key: array}`` plus ``"meta"`` (a JSON string
    array): exactly what :func:`export_case` writes and
    :func:`nprefgen.testing.golden_reader.load_golden` validates.

    seed : int >= 0, for the weights, inputs and cotangents; dtype : "float64" or "float32" (models
    are float64 only); batch : rows of the inputs (default: the case's own, at least its
    ``min_batch``).
    """
    rec, batch = build_record(name, seed=seed, dtype=dtype, batch=batch)
    case = get_case(name)
    arrays = rec.arrays()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": case.name,
            "kind": case.kind, "summary": case.summary, "constructor": rec.constructor,
            "nprefgen_version": nprefgen.__version__, "labels": list(case.labels),
            "dtype": dtype, "seed": seed, "batch": batch,
            "shapes": {k: list(v.shape) for k, v in arrays.items()},
            "variant": rec.variant, "objective": rec.objective}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    check_golden(arrays)            # the writer keeps the reader's contract
    return arrays


def export_case(name: str, path, *, seed: int = 0, dtype: str = "float64",
                batch: int | None = None) -> dict[str, np.ndarray]:
    """Build case ``name`` (:func:`build_case`) and write it to the ``.npz`` at exactly ``path``,
    atomically (a failed write leaves any previous file untouched). Returns the arrays."""
    arrays = build_case(name, seed=seed, dtype=dtype, batch=batch)
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)
    return arrays


# -- helpers the cases share ------------------------------------------------------------------------
def draw(shape, dtype, scale: float = 1.0, away: float = 0.0, *, rng=None) -> np.ndarray:
    """Normal draws in float64 cast to ``dtype`` (so float32 and float64 files share inputs up to
    rounding); ``away > 0`` keeps every entry at least that far from 0 (no kinks at 0).
    ``rng``: None, an int seed or a Generator (SPEC 7); the cases pass their one Generator."""
    rng = check_rng(rng)
    x = scale * rng.standard_normal(shape)
    if away:
        x = np.sign(x) * (away + np.abs(x))
    return x.astype(dtype)


def named_masks(module: Module, prefix: str = "") -> dict[str, np.ndarray]:
    """``{"<module path>.mask": mask}`` of every :class:`MaskedLinear` inside ``module`` (torch
    implementations of MADE register these as buffers named ``mask``)."""
    out = {}
    if isinstance(module, MaskedLinear):
        out[prefix + "mask"] = module.mask.copy()
    for cname, child in module.children().items():
        out.update(named_masks(child, prefix + cname + "."))
    return out


def param_grads(module: Module) -> dict[str, np.ndarray]:
    """``{name: grad}`` copies, the same names as ``state_dict``."""
    return {name: g.copy() for name, _, g in module.named_parameters()}


def layer_record(module: Module, x: np.ndarray, *, rng=None, constructor: str, variant=None,
                 extra_buffers=None) -> Record:
    """An nn layer: ``y = module(x)``, objective ``sum(cotangent.y * output.y)``; ``rng`` (SPEC 7)
    draws the cotangent."""
    rng = check_rng(rng)
    y, cache = module.forward(x)
    d_y = draw(y.shape, y.dtype, rng=rng)
    module.zero_grad()
    d_x = module.backward(cache, d_y)
    def evaluate(params, inputs):
        module.load_state_dict(params)
        return float(np.sum(d_y * module.forward(inputs["x"])[0]))
    return Record(params=module.state_dict(), buffers={**named_masks(module), **(extra_buffers or {})},
                  inputs={"x": x}, cotangents={"y": d_y}, outputs={"y": y},
                  grad_inputs={"x": d_x}, grad_params=param_grads(module),
                  objective="sum(cotangent.y * output.y)", constructor=constructor,
                  variant=variant or {}, evaluate=evaluate)


def bijector_record(b, x, context, *, rng=None, constructor: str, variant=None) -> Record:
    """A bijector: forward ``z, log_det`` at ``input.x``, inverse at ``input.z``, objective
    ``sum(cotangent.z * output.z) + sum(cotangent.log_det * output.log_det)`` (FLOW.24); ``rng``
    (SPEC 7) draws the cotangents and the inverse's input."""
    rng = check_rng(rng)
    dtype = x.dtype
    z, log_det, cache = b.forward_cached(x, context)
    d_z, d_ld = draw(z.shape, dtype, rng=rng), draw(log_det.shape, dtype, rng=rng)
    b.zero_grad()
    d_x, d_c = b.backward(cache, d_z, d_ld)
    z_in = draw(x.shape, dtype, scale=0.8, rng=rng)
    x_inv, ld_inv = b.inverse(z_in, context)
    inputs, grads = {"x": x, "z": z_in}, {"x": d_x}
    if context is not None:
        inputs["context"], grads["context"] = context, d_c
    buffers = {**b.buffer_dict(), **named_masks(b)}

    def evaluate(params, inputs):
        b.load_state_dict(params)
        z_, ld_ = b.forward(inputs["x"], inputs.get("context"))
        return float(np.sum(d_z * z_) + np.sum(d_ld * ld_))
    return Record(params=b.state_dict(), buffers=buffers, inputs=inputs,
                  cotangents={"z": d_z, "log_det": d_ld},
                  outputs={"z": z, "log_det": log_det, "inverse.x": x_inv,
                           "inverse.log_det": ld_inv},
                  grad_inputs=grads, grad_params=param_grads(b),
                  objective="sum(cotangent.z * output.z) + sum(cotangent.log_det * output.log_det)"
                            " (gradients of the forward pass; output.inverse.* at input.z)",
                  constructor=constructor, variant=variant or {}, evaluate=evaluate)


def gradient_errors(rec: Record, *, rng=None, step: float = 1e-4) -> dict[str, float]:
    """Check a float64 record's gradients against its own ``evaluate``: for each ``grad.*`` entry a
    random direction u (symmetrised for ``rec.symmetric``), ``<grad, u>`` against the fourth-order
    central difference (NN.19) of the objective along u. -> ``{key: |fd - <grad, u>| / scale}``
    with ``scale = max(|fd|, |<grad, u>|, |objective| * 1e-3)``.

    Round-off bounds the difference by about ``1.5 eps |objective| / step`` (2e-12 relative at the
    default step), the stencil's truncation by ``step^4`` times the fifth derivative; a correct
    gradient gives errors near 1e-10 or below, a wrong one errors of order 1.
    """
    rng = check_rng(rng)
    if rec.evaluate is None:
        raise ValueError("rec: expected a Record with an evaluate callable, got None")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in rec.params.items()}
    inputs = {k: np.asarray(v) for k, v in rec.inputs.items()}
    f0 = float(rec.evaluate(params, inputs))
    errors = {}
    for group, grads, values in (("param", rec.grad_params, params), ("input", rec.grad_inputs, inputs)):
        for name, grad in grads.items():
            u = rng.standard_normal(values[name].shape)
            if group == "param" and name in rec.symmetric:
                u = u + np.swapaxes(u, -1, -2)

            def at(c):
                moved = dict(values, **{name: values[name] + c * step * u})
                return float(rec.evaluate(*((moved, inputs) if group == "param" else (params, moved))))
            fd = (-at(2.0) + 8.0 * at(1.0) - 8.0 * at(-1.0) + at(-2.0)) / (12.0 * step)
            gu = float(np.sum(np.asarray(grad, dtype=np.float64) * u))
            scale = max(abs(fd), abs(gu), 1e-3 * abs(f0), 1e-300)
            errors[f"grad.{group}.{name}"] = abs(fd - gu) / scale
    rec.evaluate(params, inputs)          # leave the object at the recorded values
    return errors
