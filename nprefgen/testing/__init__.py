"""Public oracle tools: the dot-product gradient test and (in ``strategies``) hypothesis strategies.

``nprefgen.testing.strategies`` needs hypothesis and is imported on demand.
"""
from nprefgen.testing.gradcheck import (
    DEFAULT_RTOL, VJPResult, check_layer, check_vjp, directional_derivative, gradcheck,
    layer_vjp_errors, vjp_error,
)

__all__ = ["DEFAULT_RTOL", "VJPResult", "check_layer", "check_vjp", "directional_derivative",
           "gradcheck", "layer_vjp_errors", "vjp_error"]
