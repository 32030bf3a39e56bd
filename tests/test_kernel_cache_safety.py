"""Every numba kernel is safe in numba's on-disk cache (``kernel = njit(cache=True)``): numba
invalidates a cached kernel when ITS source file changes, not when a kernel it calls from another
module does (measured on this build: f in a.py calling g from b.py kept returning the old g's
value after b.py changed), and it does not cache recursive functions safely. So no kernel calls a
kernel defined in another module, and none calls itself; a kernel module's wrapper may call
kernels from anywhere (Python-level calls dispatch to each kernel's own cache entry).

The check reads each kernel's bytecode names (nested code objects included) and resolves them
in the kernel's globals: a planted cross-module call is caught (last test)."""
from __future__ import annotations

import importlib
import pkgutil
import types
from pathlib import Path

import numba
import pytest

import nprefgen

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT,
                                reason="no numba dispatchers with NUMBA_DISABLE_JIT=1")

# (module, callee name): known cross-module kernel calls, each owned elsewhere; the test below
# checks that each is still there (delete the entry when it is fixed)
KNOWN: dict = {}


def _kernel_modules():
    """The nprefgen modules whose source uses numba (``@kernel``, ``njit``)."""
    root = Path(nprefgen.__file__).parent
    for info in pkgutil.walk_packages(nprefgen.__path__, "nprefgen."):
        path = root.joinpath(*info.name.split(".")[1:])
        src = path.with_suffix(".py")
        if src.is_file() and ("@kernel" in src.read_text() or "njit" in src.read_text()):
            yield importlib.import_module(info.name)


def _names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _hazards(module) -> set[tuple[str, str, str]]:
    """(kernel, callee, kind) for every kernel of ``module`` calling a kernel of another module
    ("cross-module") or itself ("recursive")."""
    found = set()
    for name, obj in vars(module).items():
        if not isinstance(obj, numba.core.registry.CPUDispatcher) or \
                obj.py_func.__module__ != module.__name__:
            continue
        for ref in set(_names(obj.py_func.__code__)):
            callee = obj.py_func.__globals__.get(ref)
            if not isinstance(callee, numba.core.registry.CPUDispatcher):
                continue
            if callee is obj:
                found.add((name, ref, "recursive"))
            elif callee.py_func.__module__ != module.__name__:
                found.add((name, ref, "cross-module"))
    return found


def test_no_kernel_calls_a_kernel_of_another_module_or_itself():
    modules = list(_kernel_modules())
    assert len(modules) >= 10                    # the scan finds the kernel modules
    hazards = {(m.__name__, callee): (kernel, kind)
               for m in modules for kernel, callee, kind in _hazards(m)}
    unknown = {k: v for k, v in hazards.items() if k not in KNOWN}
    assert not unknown, f"kernels calling kernels of other modules or themselves: {unknown}"
    assert set(KNOWN) <= set(hazards), f"fixed, remove from KNOWN: {set(KNOWN) - set(hazards)}"


def test_a_planted_cross_module_call_is_caught():
    """A kernel of a module 'planted' calling tanh_bias's loop, and one calling itself."""
    from nprefgen.kernels.tanh_bias import _tanh_backward_bias

    module = types.ModuleType("planted")
    module.__dict__.update(numba=numba, _tanh_backward_bias=_tanh_backward_bias)
    exec("@numba.njit\n"
         "def fused(y, d_y, one, d_a, d_b):\n"
         "    _tanh_backward_bias(y, d_y, one, d_a, d_b)\n"
         "@numba.njit\n"
         "def countdown(k):\n"
         "    return 0 if k == 0 else countdown(k - 1)\n", vars(module))
    assert _hazards(module) == {("fused", "_tanh_backward_bias", "cross-module"),
                                ("countdown", "countdown", "recursive")}
