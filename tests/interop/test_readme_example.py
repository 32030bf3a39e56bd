'''The README's "Checking your implementation" example for a zuko flow, run as a test. SNIPPET is
pasted into README.md verbatim (between ```python fences); this test executes exactly that text.'''
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("zuko")

pytestmark = pytest.mark.oracle

SNIPPET = """\
import numpy as np
import torch
import zuko
from nprefgen.interop import check_against, from_zuko

torch.manual_seed(0)
flow = zuko.flows.NSF(features=3, context=2, transforms=2, hidden_features=[32, 32])
# ... train it as usual; the check needs only the object and some points

rng = np.random.default_rng(0)
x, c = rng.standard_normal((64, 3)), rng.standard_normal((64, 2))
report = check_against(flow, x, c)   # in a float64 copy: per transform and for the whole flow
print(report)                        # output, inverse, log-det; log p; d/dx, d/dc, d/d(every weight)
assert report.ok(1e-10), report.worst()

ours = from_zuko(flow).flow          # the same flow as an nprefgen Flow, zuko's weights loaded
samples = ours.sample(5, context=c[0], rng=0)
"""


def test_readme_zuko_example_runs_and_agrees(capsys):
    namespace: dict = {}
    exec(compile(SNIPPET, "README: Checking your implementation (zuko)", "exec"), namespace)
    out = capsys.readouterr().out
    assert "nprefgen vs zuko: max relative error" in out
    assert namespace["report"].max_rel <= 1e-10
    assert namespace["samples"].shape == (5, 3)
    assert {"output", "inverse", "log_det", "log_prob", "grad x", "grad context"} <= \
        {r.quantity for r in namespace["report"].rows}
