"""Normalizing flows: bijectors with exact log-determinants (derivations/flows.md, splines.md).

Every bijector maps data x to a base variable z: ``z, log_det = b.forward(x, context)``,
``x, log_det_inv = b.inverse(z, context)``; ``forward_cached``/``backward`` train it.
A :class:`Flow` is a chain of them with a standard normal base: ``log_prob``, ``sample``, ``fit``.
Couplings are one class, :class:`Coupling`, with an elementwise transform (:class:`AffineTransform`,
:class:`SplineTransform`); :class:`AffineCoupling` and :class:`SplineCoupling` choose one.
The builders (:func:`realnvp`, :func:`maf`, :func:`spline_flow`) standardise the data by default.

>>> import numpy as np
>>> from nprefgen.flows import realnvp
>>> rng = np.random.default_rng(0)
>>> flow = realnvp(2, n_layers=4, hidden=32, rng=rng)
>>> x = rng.standard_normal((500, 2)) * [1.0, 0.5]
>>> history = flow.fit(x, rng=rng, epochs=3, progress=False)
>>> flow.log_prob(x[:3]).shape
(3,)
>>> flow.sample(4, rng=0).shape
(4, 2)
"""
from nprefgen.flows.autoregressive import IAF, MAF
from nprefgen.flows.base import MAX_PARAMETERS, Bijector
from nprefgen.flows.builders import BUILDERS, maf, realnvp, register_builder, spline_flow
from nprefgen.flows.chain import Chain
from nprefgen.flows.coupling import (
    AffineCoupling, AffineTransform, Coupling, ElementwiseTransform, alternating_mask,
    checkerboard_mask, coupling_masks, half_mask,
)
from nprefgen.flows.elementwise import ActNorm, ElementwiseAffine, Standardize
from nprefgen.flows.flow import Flow, load_flow, normal_log_prob
from nprefgen.flows.logit import (
    LogitTransform, bits_per_dim, data_log_prob_from_logit, dequantize, log_prob_from_bits_per_dim,
)
from nprefgen.flows.made import MADE, made_degrees, made_masks
from nprefgen.flows.permutation import Permutation
from nprefgen.flows.spline import SplineCoupling, SplineTransform, TailBoundWarning

__all__ = [
    "Bijector", "Chain", "Flow", "load_flow", "normal_log_prob", "MAX_PARAMETERS",
    "realnvp", "maf", "spline_flow", "register_builder", "BUILDERS",
    "Coupling", "ElementwiseTransform", "AffineTransform", "SplineTransform",
    "AffineCoupling", "SplineCoupling", "TailBoundWarning",
    "half_mask", "alternating_mask", "checkerboard_mask", "coupling_masks",
    "MADE", "made_degrees", "made_masks", "MAF", "IAF", "Permutation",
    "ElementwiseAffine", "ActNorm", "Standardize",
    "LogitTransform", "dequantize", "bits_per_dim", "log_prob_from_bits_per_dim",
    "data_log_prob_from_logit",
]
