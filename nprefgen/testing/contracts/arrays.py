"""Bad-input checks of one array argument of any function, derived from one valid value."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from nprefgen._validation import check_callable
from nprefgen.testing.contracts.base import _bad, _check, _run, expect_value_error


# ================================================================================================
# one array argument of any function: bad values derived from one valid input
# ================================================================================================
def array_argument_checks(call: Callable, arg: str, good, *, wrong=None, empty=None,
                          allow_inf: bool = False, any_shape: bool = False
                          ) -> Iterator[tuple[str, Callable[[], None]]]:
    """Bad-input checks of one array argument, derived from a valid value of it.

    call: ``value -> result``, the function with every other argument fixed (e.g.
    ``lambda x: my_fn(x, 3)``); arg: the argument's name, which every ValueError must start with;
    good: a valid value (an array, or a shape tuple for standard normal draws);
    wrong: a shape that is invalid (default: one more trailing column, unless ``any_shape``);
    empty: the shape of an empty value (default: zero rows); allow_inf: +-inf is valid.

    Sub-checks: ``accepts_valid`` (the call with ``good`` succeeds), ``nan``, ``inf``, ``empty``,
    ``shape``, ``string`` -> ValueError naming ``arg``.
    """
    check_callable(call, "call")
    if isinstance(good, tuple):
        good = np.random.default_rng(1).standard_normal(good)
    good = np.asarray(good, dtype=np.float64)
    if wrong is None and not any_shape and good.ndim:
        wrong = good.shape[:-1] + (good.shape[-1] + 1,)
    empty = (0,) + good.shape[1:] if empty is None else tuple(empty)

    def accepts_valid():
        try:
            call(good.copy())
        except Exception as err:   # noqa: BLE001
            raise AssertionError(f"the valid {arg} of shape {good.shape} raised "
                                 f"{type(err).__name__}: {str(err)[:200]}") from None

    yield "accepts_valid", accepts_valid
    yield "nan", lambda: expect_value_error(lambda: call(_bad(good, "nan")), arg, f"{arg} with a NaN")
    if not allow_inf:
        yield "inf", lambda: expect_value_error(lambda: call(_bad(good, "inf")), arg, f"{arg} with an inf")
    yield "empty", lambda: expect_value_error(lambda: call(np.zeros(empty)), arg, f"empty {arg} {empty}")
    if wrong is not None:
        bad = np.random.default_rng(2).standard_normal(wrong)
        yield "shape", lambda: expect_value_error(lambda: call(bad), arg, f"{arg} of shape {tuple(wrong)}")
    yield "string", lambda: expect_value_error(lambda: call("abc"), arg, f"a string as {arg}")


def check_array_argument(call: Callable, arg: str, good, **options) -> list[str]:
    """Run :func:`array_argument_checks`; raise AssertionError naming every failed sub-check.

    >>> import numpy as np
    >>> from nprefgen.nn import sigmoid
    >>> check_array_argument(sigmoid, "x", (4, 3), any_shape=True)
    ['accepts_valid', 'nan', 'inf', 'empty', 'string']
    """
    return _run("array argument", array_argument_checks(call, arg, good, **options), arg)


for _n in ("accepts_valid", "nan", "inf", "empty", "shape", "string"):
    _check("array_argument", _n)(None)
