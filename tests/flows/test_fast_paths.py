"""Before/after check of the training fast paths (issue 12, performance): a flow trained for a few
epochs on a fixed seed with the fast paths (spline couplings keeping their knots, Adam over all
parameters in one kernel call, MAF's unchecked chain path with its masked-layer and affine kernels,
Flow.fit's unchecked loss) ends with the same weights, bit for bit,
as with the reference paths they replaced (the fused spline pair recomputing the knots, one Adam
kernel call per array, the checked MAF methods on the MADE's layer-by-layer path, the public
nll_and_grad), in float64 and float32; the MAF also without context or clip, with mixed flow and
data dtypes and with a ReLU MADE. Planted bugs in the fast paths (spline knots, the MAF's masked
tanh VJP, bias column sum and soft-clamp derivative) are caught, and Flow.fit takes the public
loss whenever nll_and_grad or log_prob_and_grad is redefined."""
from __future__ import annotations

import numpy as np
import pytest

import nprefgen.flows.spline as fs
import nprefgen.kernels.spline as ks
from nprefgen.flows import Flow, maf, spline_flow
from nprefgen.flows.autoregressive import MAF
from nprefgen.kernels.coupling import affine_coupling_inverse, soft_clamp_numpy
from nprefgen.nn.optim import Adam


def _data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, (n, 2))
    x = np.c_[theta.sum(axis=1), theta[:, 0] * theta[:, 1]] + 0.05 * rng.standard_normal((n, 2))
    return theta, x


def _train(kind, dtype=np.float64, *, context=True, clip=5.0, data_dtype=None,
           activation="tanh"):
    """A flow trained for 3 epochs: ``dtype`` the flow's, ``data_dtype`` the data's (default
    the flow's), ``context`` False an unconditional flow, ``clip`` fit's gradient clip."""
    theta, x = _data()
    c_dim = 2 if context else 0
    s_ctx = x if context else None
    if kind == "nsf":
        flow = spline_flow(2, 3, 16, rng=1, context_dim=c_dim, n_bins=5, bound=4.0,
                           activation=activation, standardize=theta, standardize_context=s_ctx)
    else:
        flow = maf(2, 3, [16, 16], rng=1, context_dim=c_dim, permutation="random",
                   activation=activation, standardize=theta, standardize_context=s_ctx)
    flow.astype(dtype)
    data_dtype = dtype if data_dtype is None else data_dtype
    flow.fit(theta.astype(data_dtype), context=x.astype(data_dtype) if context else None, rng=2,
             epochs=3, batch_size=50, lr=1e-2, clip=clip, progress=False)
    return flow.state_dict(), flow.history_["val_loss"]


def _reference_paths(monkeypatch):
    """The code paths before the fast ones: fused spline kernels, per-array Adam, checked MAF."""
    def fwd(x, theta, bound, *mins):
        y, ld = ks.rq_spline_theta_forward(x, theta, bound, *mins)
        return y, ld, (theta, mins[2])

    def bwd(x, saved, bound, min_w, min_h, d_y, d_ld):
        return ks.rq_spline_theta_backward(x, saved[0], bound, min_w, min_h, saved[1], d_y, d_ld)

    monkeypatch.setattr(fs, "rq_spline_theta_forward_saved", fwd)
    monkeypatch.setattr(fs, "rq_spline_theta_backward_saved", bwd)
    monkeypatch.setattr(Adam, "_flat_views", lambda self: None)

    def checked_forward(self, x, context=None):        # MAF.forward_cached before d2c5236
        x = self._check_x(x)
        context = self._check_context(context, x.shape[0])
        out, cache = self.made.forward(x, context)
        mu, raw = out[:, : self.dim], out[:, self.dim:]
        z, log_det = affine_coupling_inverse(x, raw, mu, self.bound)
        return z, log_det, (z, raw, cache)

    def checked_backward(self, cache, d_z, d_log_det):  # MAF.backward before d2c5236
        z, raw, made_cache = cache
        d_z, d_log_det = self._check_cotangents(d_z, d_log_det, z.shape[0])
        alpha, d_clamp = soft_clamp_numpy(raw, self.bound)
        d_x = d_z * np.exp(-alpha)
        d_alpha = -d_z * z - d_log_det[:, None]
        d_made_x, d_context = self.made.backward(made_cache,
                                                 np.concatenate([-d_x, d_alpha * d_clamp], axis=1))
        d_x += d_made_x
        return d_x, d_context

    monkeypatch.setattr(MAF, "_forward_cached", checked_forward)
    monkeypatch.setattr(MAF, "_backward", checked_backward)
    # Flow.fit's loss before the unchecked training path: the public nll_and_grad
    monkeypatch.setattr(Flow, "_fit_nll_and_grad", lambda self, x, c=None: self.nll_and_grad(x, c)[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["nsf", "maf"])
def test_fast_paths_train_bit_identically(kind, dtype, monkeypatch):
    fast_state, fast_val = _train(kind, dtype)
    with monkeypatch.context() as m:
        _reference_paths(m)
        ref_state, ref_val = _train(kind, dtype)
    assert fast_val == ref_val
    assert fast_state.keys() == ref_state.keys()
    for name in fast_state:
        np.testing.assert_array_equal(fast_state[name], ref_state[name], err_msg=name)


@pytest.mark.parametrize("settings", [
    dict(context=False, clip=None), dict(context=False, clip=None, dtype=np.float32),
    dict(dtype=np.float32, data_dtype=np.float64), dict(dtype=np.float64, data_dtype=np.float32),
    dict(activation="relu"), dict(activation="relu", dtype=np.float32, clip=None),
], ids=["f64-noctx-noclip", "f32-noctx-noclip", "f32flow-f64data", "f64flow-f32data", "relu",
        "relu-f32-noclip"])
def test_maf_fast_paths_train_bit_identically_more_settings(settings, monkeypatch):
    """The MAF fast paths in the settings the test above leaves out: no context (no join, no
    context columns), no clip, mixed flow and data dtypes, a ReLU MADE (the accumulate kernel
    without the tanh one)."""
    fast_state, fast_val = _train("maf", **settings)
    with monkeypatch.context() as m:
        _reference_paths(m)
        ref_state, ref_val = _train("maf", **settings)
    assert fast_val == ref_val
    for name in fast_state:
        np.testing.assert_array_equal(fast_state[name], ref_state[name], err_msg=name)


@pytest.mark.parametrize("bug", ["tanh_derivative", "bias_sum_row", "no_clamp_derivative"])
def test_planted_bug_in_the_maf_kernels_changes_training(bug, monkeypatch):
    """A wrong masked tanh VJP (1 - y for 1 - y^2), a column sum missing the last row (the
    output layer's bias gradient), or an affine backward without the soft clamp's derivative
    trains to different weights than the reference path: the checks above can fail."""
    import nprefgen.flows.autoregressive as far
    import nprefgen.flows.made as fm
    from nprefgen.kernels.maf_affine import maf_affine_backward_numpy
    from nprefgen.kernels.masked_layer import accumulate_masked_numpy

    with monkeypatch.context() as m:
        _reference_paths(m)
        ref_state, _ = _train("maf")
    if bug == "tanh_derivative":
        def planted(g_w, d_w, mask, g_b, d_b, y, d_h):
            accumulate_masked_numpy(g_w, d_w, mask, g_b, d_b)
            d_a = d_h * (1.0 - y)
            return d_a, d_a.sum(axis=0)
        monkeypatch.setattr(fm, "masked_tanh_backward", planted)
    else:
        def planted(d_z, z, d_log_det, u, e, bound):
            d_x, d_out, d_b = maf_affine_backward_numpy(
                d_z, z, d_log_det, u, e, 0.0 if bug == "no_clamp_derivative" else bound)
            return d_x, d_out, d_out[:-1].sum(axis=0) if bug == "bias_sum_row" else d_b
        monkeypatch.setattr(far, "maf_affine_backward", planted)
    bad_state, _ = _train("maf")
    assert any(not np.array_equal(ref_state[k], bad_state[k]) for k in ref_state)


def test_planted_bug_in_saved_knots_changes_training(monkeypatch):
    """A backward that reads a stale softmax from the saved knots (the width softmax of the wrong
    element) trains to different weights: the check above can fail."""
    fast_state, _ = _train("nsf")
    good = ks.rq_spline_theta_backward_saved

    def stale(x, saved, *args):
        w, h, d, p_w, p_h, sig = saved
        return good(x, (w, h, d, np.roll(p_w, 1, axis=0), p_h, sig), *args)

    monkeypatch.setattr(fs, "rq_spline_theta_backward_saved", stale)
    bad_state, _ = _train("nsf")
    assert any(not np.array_equal(fast_state[k], bad_state[k]) for k in fast_state)


def test_reference_paths_are_really_taken(monkeypatch):
    """The monkeypatched reference paths run (not the fast ones): a counter on the fused kernel."""
    calls = []
    real = ks.rq_spline_theta_forward
    monkeypatch.setattr(ks, "rq_spline_theta_forward", lambda *a: calls.append(1) or real(*a))
    with monkeypatch.context() as m:
        _reference_paths(m)
        _train("nsf")
    assert calls


def test_fit_uses_an_overridden_nll_and_grad():
    """A Flow subclass that redefines nll_and_grad (e.g. an extra penalty) trains on its own loss,
    not on the unchecked copy of the base one."""
    theta, x = _data(n=60)
    calls = []

    class Penalised(Flow):
        def nll_and_grad(self, x, context=None):
            calls.append(1)
            return super().nll_and_grad(x, context)

    base = maf(2, 1, [8], rng=1, context_dim=2, activation="tanh", standardize=theta,
               standardize_context=x)
    flow = Penalised(base.bijectors, context_dim=2)
    flow.context_mean[...], flow.context_std[...] = base.context_mean, base.context_std
    flow.fit(theta, context=x, rng=2, epochs=1, batch_size=30, progress=False)
    assert calls


def _small_conditional():
    theta, x = _data(n=60)
    base = maf(2, 1, [8], rng=1, context_dim=2, activation="tanh", standardize=theta,
               standardize_context=x)
    return theta, x, base


def test_fit_uses_an_overridden_log_prob_and_grad():
    """A subclass that redefines log_prob_and_grad (which the public nll_and_grad calls, e.g. to
    reweight samples) trains through it, as it did before the unchecked training path."""
    theta, x, base = _small_conditional()
    calls = []

    class Reweighted(Flow):
        def log_prob_and_grad(self, x, context=None, weights=None):
            calls.append(1)
            return super().log_prob_and_grad(x, context, weights)

    flow = Reweighted(base.bijectors, context_dim=2)
    flow.context_mean[...], flow.context_std[...] = base.context_mean, base.context_std
    flow.fit(theta, context=x, rng=2, epochs=1, batch_size=30, progress=False)
    assert calls


def test_fit_uses_an_nll_and_grad_set_on_the_instance():
    """An nll_and_grad assigned to one flow (a planted loss in a test, a wrapper) is the loss fit
    minimises, as before the unchecked training path."""
    theta, x, flow = _small_conditional()
    calls = []
    public = flow.nll_and_grad

    def wrapped(x, context=None):
        calls.append(1)
        return public(x, context)

    flow.nll_and_grad = wrapped
    flow.fit(theta, context=x, rng=2, epochs=1, batch_size=30, progress=False)
    assert calls


def test_fit_of_a_plain_flow_takes_the_unchecked_loss(monkeypatch):
    """The check above does not turn the fast path off: a flow that redefines nothing trains
    through _fit_nll_and_grad, never through the public nll_and_grad."""
    theta, x, flow = _small_conditional()
    calls = {"fast": 0, "public": 0}
    fast, public = Flow._fit_nll_and_grad, Flow.nll_and_grad
    monkeypatch.setattr(Flow, "_fit_nll_and_grad",
                        lambda self, *a: calls.__setitem__("fast", calls["fast"] + 1) or fast(self, *a))
    monkeypatch.setattr(Flow, "nll_and_grad",
                        lambda self, *a: calls.__setitem__("public", 1) or public(self, *a))
    flow.fit(theta, context=x, rng=2, epochs=1, batch_size=30, progress=False)
    assert calls["fast"] > 0 and calls["public"] == 0


def test_a_subclass_backward_with_the_three_argument_signature():
    """A Flow subclass redefining _backward(cache, d_z, d_log_det) (the signature before the
    context_grad flag): log_prob_and_grad and fit work through it, as before 8a41bd4."""
    theta, x, base = _small_conditional()
    calls = []

    class Traced(Flow):
        def _backward(self, cache, d_z, d_log_det):
            calls.append(1)
            return super()._backward(cache, d_z, d_log_det)

    flow = Traced(base.bijectors, context_dim=2)
    flow.context_mean[...], flow.context_std[...] = base.context_mean, base.context_std
    _, _, d_c = flow.log_prob_and_grad(theta[:5], x[:5])
    assert calls and d_c.shape == (5, 2)
    flow.fit(theta, context=x, rng=2, epochs=1, batch_size=30, progress=False)
    assert len(calls) > 1
