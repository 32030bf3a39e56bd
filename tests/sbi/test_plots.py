"""The SBI figures draw without error and show what they should."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from nprefgen.plots import sbi as splots
from nprefgen.sbi import diagnostics as dg

matplotlib.use("Agg")


def test_figures(rng, tmp_path):
    import matplotlib.pyplot as plt

    s = rng.standard_normal((500, 3))
    fig = splots.pair_plot({"reference": s, "npe": s + 0.1}, theta_true=np.zeros(3))
    assert len(fig.axes) == 9
    fig.savefig(tmp_path / "pair.png")
    draws = rng.standard_normal((100, 50, 2))
    truth = rng.standard_normal((100, 2))
    u = dg.pit_values(draws, truth)
    fig2 = splots.pp_plot({"exact": u})
    assert len(fig2.axes[0].lines) >= 3    # diagonal + one curve per marginal
    fig3 = splots.sbc_rank_plot(dg.sbc_ranks(draws, truth), 50)
    assert len(fig3.axes) == 2
    t = dg.tarp_test(draws, truth, rng=rng)
    fig4 = splots.tarp_plot(t["alphas"], {"exact": t["ecp"]}, 100)
    fig5 = splots.coverage_plot(dg.ALPHAS, {"x": dg.ALPHAS}, 100)
    for f in (fig, fig2, fig3, fig4, fig5):
        plt.close(f)
    with pytest.raises(ValueError, match="theta_true"):
        splots.pair_plot(s, theta_true=np.zeros(2))
