"""keep_freed_heap (nprefgen/kernels/heap.py): after it, a training step's freed caches stay in
the heap instead of being trimmed back to the system (glibc's dynamic thresholds); it runs once
per process; and fit_loop calls it. Measured through glibc's own counters in a fresh process (the
test process has long since raised its thresholds), skipped where glibc's mallinfo2 is missing."""
from __future__ import annotations

import ctypes
import ctypes.util
import pathlib
import subprocess
import sys

import pytest

import nprefgen.kernels.heap as heap

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = """
import ctypes, sys, numpy as np
class MI2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                 "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = MI2
if sys.argv[1] == "1":
    from nprefgen.kernels.heap import keep_freed_heap
    assert keep_freed_heap() and not keep_freed_heap()
for _ in range(3):
    arrays = [np.ones(10_000) for _ in range(40)]      # 40 x 80 KB, a MAF step's caches
    del arrays
print(libc.mallinfo2().fordblks)                        # free bytes the heap kept
"""


def _glibc_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _glibc_mallinfo2(),
                    reason="needs glibc's mallinfo2")
def test_freed_caches_stay_in_the_heap():
    def kept(flag: str) -> int:
        out = subprocess.run([sys.executable, "-c", PROBE, flag], cwd=ROOT, capture_output=True,
                             text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
        return int(out.stdout.strip())
    without, with_ = kept("0"), kept("1")
    # the 3.2 MB of freed caches stay with the call; without it glibc trims all but < 1 MB
    assert with_ >= 3_000_000 > 1_000_000 > without, (without, with_)


def test_once_per_process_and_called_by_fit_loop(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_done", False)
    assert heap.keep_freed_heap() is True and heap.keep_freed_heap() is False
    import nprefgen.nn.train as train
    monkeypatch.setattr(train, "keep_freed_heap", lambda: calls.append(1))
    import numpy as np
    from nprefgen.nn import Linear
    from nprefgen.nn.losses import mse_loss
    layer = Linear(2, 1, rng=0)
    x, y = np.ones((4, 2)), np.zeros((4, 1))

    def loss_and_grad(xb, yb):
        out, cache = layer.forward(xb)
        loss, d = mse_loss(out, yb)
        layer.zero_grad()
        layer.backward(cache, d)
        return loss
    train.fit_loop(layer, loss_and_grad, (x, y), rng=0, epochs=1, batch_size=4, progress=False)
    assert calls == [1]
