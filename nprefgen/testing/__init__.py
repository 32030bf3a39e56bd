"""Public oracle tools: the dot-product gradient test, the bijector battery
(``bijector_checks``), contract checks derived from the API (``contracts``: check_layer,
check_bijector, check_density_model, check_model, check_distribution, check_posterior_estimator,
check_array_argument) and hypothesis strategies (``strategies``).

``nprefgen.testing.strategies`` needs hypothesis and is imported on demand.
"""
from nprefgen.testing.gradcheck import (
    DEFAULT_RTOL, VJPResult, check_layer, check_vjp, directional_derivative, gradcheck,
    layer_vjp_errors, vjp_error,
)
from nprefgen.testing.bijector_checks import (
    BijectorReport, bijector_report, check_bijector, randomize_parameters,
)

__all__ = ["DEFAULT_RTOL", "VJPResult", "check_layer", "check_vjp", "directional_derivative",
           "gradcheck", "layer_vjp_errors", "vjp_error", "BijectorReport", "bijector_report",
           "check_bijector", "randomize_parameters"]
