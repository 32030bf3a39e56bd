"""Contract checks derived from the API, for nprefgen's classes and for yours.

The way scikit-learn's ``check_estimator`` derives its checks from the estimator API, each
function here derives a battery of named sub-checks from one of nprefgen's contracts
(DESIGN.md, "Contracts every part keeps"):

* :func:`check_layer` -- ``y, cache = layer.forward(x)``; ``d_x = layer.backward(cache, d_y)``
  accumulates into ``layer.grads``; no per-call state; the dot-product test (NN.18); bad input.
* :func:`check_bijector` -- the flow battery of :mod:`nprefgen.testing.bijector_checks`
  (round trip, log-det against a finite-difference ``slogdet`` (FLOW.23), fused == separate,
  backward (FLOW.24)) plus the layer-like and bad-input checks.
* :func:`check_density_model` -- ``fit(X, *, rng)`` returns self and sets ``history_``;
  ``log_prob(X) -> (n,)``; ``sample(n, *, rng) -> (n, d)``; the same seed gives bit-identical
  fits and samples, different seeds differ; ``rng`` keyword-only accepting None, an int or a
  Generator (SPEC 7); ``save``/``load`` round trip (``factory().load(path)`` returns that
  object); a bad file refused naming ``path``, the model unchanged; bad input -> ValueError
  naming the argument.
* :func:`check_model` -- the narrower contract of models that are not densities (autoencoders,
  contrastive encoders, PCA, probes): fit returns self, ``history_``, determinism, save/load.
* :func:`check_distribution` -- ``sample``/``log_prob`` without ``fit`` (priors).
* :func:`check_posterior_estimator` -- NPE/NLE: ``train(theta, x, *, rng)`` returns a posterior
  with ``sample(n, x=..., rng=...)`` and ``log_prob(theta, x=...)``, and sets ``history_``.

Every ``*_checks`` function yields ``(name, thunk)`` pairs; a thunk raises ``AssertionError``
saying what broke. ``check_*`` runs them all and raises one ``AssertionError`` naming every failed
sub-check (``layer contract failed: no_per_call_state: ...``), so a failure says which contract
broke. The names of a battery are listed in ``CHECKS[kind]`` (to parametrize tests by them).

"Bad input" means a ``ValueError`` whose message starts with the argument's name (the
``name: expected ..., got ...`` form of nprefgen/_validation.py).

>>> import numpy as np
>>> from nprefgen.nn import Linear
>>> from nprefgen.testing.contracts import check_layer
>>> passed = check_layer(Linear(3, 2, rng=0), np.random.default_rng(1).standard_normal((4, 3)))
>>> "backward_dot_product" in passed
True
"""
from nprefgen.testing.contracts.base import CHECKS, FLOAT32_RTOL, NOT_AN_RNG, expect_value_error
from nprefgen.testing.contracts.layers import check_layer, layer_checks
from nprefgen.testing.contracts.bijectors import bijector_checks, check_bijector
from nprefgen.testing.contracts.models import (
    check_density_model, check_distribution, check_model, density_model_checks, distribution_checks,
    model_checks,
)
from nprefgen.testing.contracts.posteriors import check_posterior_estimator, posterior_estimator_checks
from nprefgen.testing.contracts.arrays import array_argument_checks, check_array_argument

__all__ = [
    "CHECKS", "FLOAT32_RTOL", "NOT_AN_RNG", "expect_value_error", "check_layer", "layer_checks",
    "check_bijector", "bijector_checks", "check_model", "model_checks", "check_density_model",
    "density_model_checks", "check_distribution", "distribution_checks",
    "check_posterior_estimator", "posterior_estimator_checks", "check_array_argument",
    "array_argument_checks",
]
