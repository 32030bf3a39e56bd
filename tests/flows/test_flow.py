"""Flow = chain + standard normal base (FLOW.1-FLOW.3, FLOW.4): the battery on whole flows,
normalisation, Gaussian recovery, training (early stopping, restored weights), gradients with
respect to x and the context, saving and loading, bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.stats import multivariate_normal

from nprefgen.flows import (
    ActNorm, AffineCoupling, Chain, ElementwiseAffine, Flow, MAF, Permutation, Standardize,
    half_mask, load_flow, maf, normal_log_prob, realnvp,
)
from nprefgen.testing.bijector_checks import check_bijector, randomize_parameters
from nprefgen.testing.gradcheck import check_vjp
from nprefgen.testing.strategies import seeds


def _random_flow(kind, dim, context_dim, rng, bound=2.0, scale=0.4, **kw):
    build = realnvp if kind == "realnvp" else maf
    kw.setdefault("standardize", False)
    flow = build(dim, 2, [5], rng=rng, context_dim=context_dim, activation="tanh", bound=bound, **kw)
    randomize_parameters(flow, rng=rng, scale=scale)
    return flow


@given(st.sampled_from(["realnvp", "maf"]), st.integers(2, 4), st.integers(0, 2), st.integers(1, 4),
       st.booleans(), seeds())
def test_flows_pass_the_battery(kind, dim, context_dim, n, extras, seed):
    """(FLOW.2) a whole flow is a bijector: round trip, summed log-dets, inverse log-det, backward
    for x, every parameter and the (z-scored, FLOW.18) context; with Standardize/ActNorm layers."""
    rng = np.random.default_rng(seed)
    kw = {}
    if extras:
        kw = dict(actnorm=True, standardize=rng.standard_normal((10, dim)) * 2.0 + 1.0)
        if context_dim:
            kw["standardize_context"] = rng.standard_normal((10, context_dim)) * 3.0 - 1.0
    flow = _random_flow(kind, dim, context_dim, rng, **kw)
    x = rng.standard_normal((n, dim))
    c = rng.standard_normal((n, context_dim)) if context_dim else None
    check_bijector(flow, x, c, rng=rng)


def test_log_prob_is_change_of_variables(rng):
    """(FLOW.1), (FLOW.3): an elementwise affine flow is the Gaussian N(-shift e^{-s}, e^{-2s})."""
    b = ElementwiseAffine(3)
    b.params["log_scale"][...] = [0.3, -0.5, 1.0]
    b.params["shift"][...] = [1.0, 0.0, -2.0]
    flow = Flow([b])
    scale = np.exp(-b.params["log_scale"])
    mean = -b.params["shift"] * scale
    x = rng.standard_normal((7, 3))
    expect = multivariate_normal(mean, np.diag(scale ** 2)).logpdf(x)
    np.testing.assert_allclose(flow.log_prob(x), expect, rtol=1e-12)
    np.testing.assert_allclose(normal_log_prob(x), multivariate_normal(np.zeros(3)).logpdf(x), rtol=1e-12)


@pytest.mark.parametrize("kind", ["realnvp", "maf"])
@pytest.mark.parametrize("context_dim", [0, 2])
def test_log_prob_integrates_to_one(kind, context_dim):
    """(FLOW.1) the density of a random (untrained) 2-D flow integrates to 1 on a grid.

    bound = 1 keeps every coupling's scale in [e^-1, e], so the mass sits well inside [-25, 25]^2;
    the trapezoid rule on this smooth, decaying integrand is accurate far below the 1e-6 bar."""
    rng = np.random.default_rng(3)
    flow = _random_flow(kind, 2, context_dim, rng, bound=1.0, scale=0.5)
    g = np.linspace(-25.0, 25.0, 301)
    gx, gy = np.meshgrid(g, g)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    context = np.array([0.3, -1.0]) if context_dim else None
    p = np.exp(flow.log_prob(pts, context)).reshape(gx.shape)
    total = np.trapezoid(np.trapezoid(p, g, axis=1), g)
    assert abs(total - 1.0) < 1e-6
    assert p[0].max() < 1e-12 and p[:, -1].max() < 1e-12     # no mass escapes the grid


def test_sample_and_log_prob_agree(rng):
    """(FLOW.1) log N(z) - log_det_inv at the samples equals log_prob(x), conditional and not."""
    for flow, c in ((_random_flow("realnvp", 3, 0, rng), None),
                    (_random_flow("maf", 3, 2, rng), np.array([0.5, -0.2]))):
        x, lp = flow.sample_and_log_prob(50, c, rng=np.random.default_rng(1))
        np.testing.assert_allclose(lp, flow.log_prob(x, c), rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(x, flow.sample(50, c, rng=np.random.default_rng(1)))


def _gaussian(dim, n, rng):
    mean = np.array([1.0, -2.0, 0.5])[:dim]
    chol = np.array([[1.0, 0.0, 0.0], [0.6, 0.7, 0.0], [-0.3, 0.2, 0.4]])[:dim, :dim]
    return mean, chol @ chol.T, mean + rng.standard_normal((n, dim)) @ chol.T


def _assert_moments(samples, mean, cov, n_data, k=5.0):
    """Mean and covariance within k standard errors of the data (n_data) plus the samples' own.

    SE(mean_i)^2 = S_ii / n;  SE(S_ij)^2 = (S_ii S_jj + S_ij^2) / n  for Gaussian data."""
    m = samples.shape[0]
    var = np.diag(cov)
    se_mean = np.sqrt(var / n_data + var / m)
    se_cov = np.sqrt((np.outer(var, var) + cov ** 2) * (1 / n_data + 1 / m))
    assert np.all(np.abs(samples.mean(axis=0) - mean) < k * se_mean), (samples.mean(axis=0), mean)
    assert np.all(np.abs(np.cov(samples.T) - cov) < k * se_cov), (np.cov(samples.T), cov)


def test_linear_maf_recovers_a_3d_gaussian():
    """A MAF with linear MADEs holds every Gaussian exactly, so its MLE is the sample mean and
    covariance: the fitted flow matches the true ones within sampling error."""
    rng = np.random.default_rng(11)
    mean, cov, x = _gaussian(3, 3000, rng)
    flow = maf(3, 1, [], rng=rng, bound=None)
    hist = flow.fit(x, rng=rng, epochs=150, batch_size=500, lr=2e-2, patience=15, progress=False).history_
    assert hist["val_loss"][hist["best_epoch"]] < hist["val_loss"][0]
    _assert_moments(flow.sample(40000, rng=rng), mean, cov, x.shape[0])
    # (FLOW.1) at the optimum the mean NLL is the Gaussian entropy up to sampling error
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    assert abs(flow.mean_nll(x) - entropy) < 5 * np.sqrt(1.5 / x.shape[0])


def test_realnvp_recovers_a_2d_gaussian():
    """A small nonlinear RealNVP fitted to a correlated 2-D Gaussian: moments within sampling
    error (k = 5 standard errors)."""
    rng = np.random.default_rng(5)
    mean, cov, x = _gaussian(2, 3000, rng)
    flow = realnvp(2, 4, 16, rng=rng, activation="tanh", actnorm=True)
    flow.fit(x, rng=rng, epochs=60, batch_size=250, lr=5e-3, patience=10, progress=False)
    _assert_moments(flow.sample(20000, rng=rng), mean, cov, x.shape[0])


def test_fit_restores_the_best_weights_and_stops_early(capsys):
    """Early stopping: an overfitting flow (30 points, lr 3e-2) stops before the epoch budget and
    ends with the weights of its best validation epoch; no progress bar without a terminal."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 2))
    flow = realnvp(2, 4, 32, rng=np.random.default_rng(0))
    hist = flow.fit(x, rng=np.random.default_rng(7), epochs=300, batch_size=8, lr=3e-2,
                    validation_fraction=0.2, patience=5, progress=True).history_
    assert hist["epochs"] < 300 and len(hist["train_loss"]) == len(hist["val_loss"]) == hist["epochs"]
    assert hist["best_epoch"] == int(np.argmin(hist["val_loss"]))
    assert hist["epochs"] - 1 - hist["best_epoch"] == 5
    val = np.random.default_rng(7).permutation(30)[:6]                  # the split fit made
    assert flow.mean_nll(x[val]) == pytest.approx(min(hist["val_loss"]), rel=1e-12)
    assert all(np.all(g == 0) for _, g in flow.parameters())
    assert capsys.readouterr().err == ""
    assert flow.history_ is hist


def test_fit_initialises_actnorm_on_the_whole_training_split(rng):
    """(FLOW.19) fit initialises an ActNorm from the WHOLE training split (not the first batch,
    never the validation rows) before training: with lr tiny, its shift and scale are the
    training split's standardisation. Fitting without a validation split works too."""
    x = rng.standard_normal((64, 2)) * 10.0 + 3.0
    flow = realnvp(2, 2, 8, rng=rng, actnorm=True, standardize=False)
    assert flow.needs_initialization()
    flow.fit(x, rng=np.random.default_rng(3), epochs=1, batch_size=8, lr=1e-12, progress=False)
    train = np.random.default_rng(3).permutation(64)[6:]                 # the split fit made
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    np.testing.assert_allclose(np.exp(-flow[0].params["log_scale"]), std + flow[0].eps, rtol=1e-9)
    np.testing.assert_allclose(flow[0].params["shift"], -mean / (std + flow[0].eps), rtol=1e-9)
    flow = realnvp(2, 2, 8, rng=rng, actnorm=True, standardize=False)
    hist = flow.fit(x, rng=rng, epochs=1, batch_size=64, validation_fraction=0.0,
                    progress=False).history_
    assert not flow.needs_initialization() and hist["val_loss"] == []
    assert flow[0].initialized


def test_fit_fits_the_default_standardize_on_the_whole_training_split(rng):
    """(FLOW.18) builders put an unfitted Standardize first by default; fit sets its mean and std
    from the whole training split (never the validation rows), not from the first batch."""
    x = rng.standard_normal((64, 2)) * [10.0, 0.1] + [3.0, -2.0]
    flow = realnvp(2, 2, 8, rng=rng)
    assert flow.needs_initialization()
    flow.fit(x, rng=np.random.default_rng(3), epochs=1, batch_size=8, lr=1e-12, progress=False)
    train = np.random.default_rng(3).permutation(64)[6:]                 # the split fit made
    np.testing.assert_allclose(flow[0].mean, x[train].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(flow[0].std, x[train].std(axis=0), rtol=1e-9)


def test_grad_log_prob_wrt_x_and_context(rng):
    """Gradients of log p(x | c) w.r.t. x and c (NLE's HMC, score checks) pass the dot-product
    test against log_prob itself, for per-row and broadcast contexts; parameter grads untouched."""
    flow = _random_flow("maf", 3, 2, rng, standardize_context=rng.standard_normal((9, 2)) * 4.0)
    x, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    d_x, d_c = flow.grad_log_prob(x, c)
    assert all(np.all(g == 0) for _, g in flow.parameters())
    check_vjp(lambda x_: flow.log_prob(x_, c), lambda v: v[:, None] * d_x, x, rng=rng)
    check_vjp(lambda c_: flow.log_prob(x, c_), lambda v: v[:, None] * d_c, c, rng=rng)
    row = c[0]
    d_x1, d_row = flow.grad_log_prob(x, row)
    assert d_row.shape == (2,)
    check_vjp(lambda r: flow.log_prob(x, r).sum(), lambda v: v * d_row, row, rng=rng)
    np.testing.assert_allclose(d_row, flow.grad_log_prob(x, np.tile(row, (4, 1)))[1].sum(axis=0),
                               rtol=1e-12)


def test_log_prob_and_grad_weights(rng):
    """(FLOW.4) parameter gradients of sum_i w_i log p(x_i): dot-product test on one weight."""
    flow = _random_flow("realnvp", 2, 0, rng)
    x, w = rng.standard_normal((5, 2)), rng.standard_normal(5)
    name, p, g = next((t for t in flow.named_parameters() if t[0].endswith("0.weight")))
    original = p.copy()

    def fun(p_):
        p[...] = p_
        try:
            return float(np.sum(w * flow.log_prob(x)))
        finally:
            p[...] = original

    def vjp(v):
        flow.zero_grad()
        flow.log_prob_and_grad(x, weights=w)
        return float(v) * g.copy()

    check_vjp(fun, vjp, original, rng=rng)


def test_save_and_load_round_trip(tmp_path, rng):
    """Parameters and buffers (random permutations, Standardize, ActNorm flags, context z-scoring)
    survive save -> load_flow and save -> load into an identically built flow."""
    data = rng.standard_normal((20, 3)) * 2 + 1
    ctx = rng.standard_normal((20, 2)) * 5
    flow = maf(3, 3, [6], rng=rng, context_dim=2, permutation="random", actnorm=True,
               standardize=data, standardize_context=ctx, activation="tanh")
    flow.initialize(data, ctx)
    randomize_parameters(flow, rng=rng, scale=0.3)
    path = tmp_path / "flow.npz"
    flow.save(path)
    x, c = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    clone = load_flow(path)
    np.testing.assert_array_equal(clone.log_prob(x, c), flow.log_prob(x, c))
    np.testing.assert_array_equal(clone.sample(4, c[0], rng=np.random.default_rng(0)),
                                  flow.sample(4, c[0], rng=np.random.default_rng(0)))
    other = maf(3, 3, [6], rng=np.random.default_rng(99), context_dim=2, permutation="random",
                actnorm=True, standardize=True, activation="tanh")
    other.load(path)
    np.testing.assert_array_equal(other.log_prob(x, c), flow.log_prob(x, c))
    manual = Flow([AffineCoupling(half_mask(3), [4], rng=rng), Permutation.reverse(3)])
    manual.save(tmp_path / "manual.npz")
    with pytest.raises(ValueError, match="configuration"):
        load_flow(tmp_path / "manual.npz")
    with pytest.raises(ValueError, match="state"):
        realnvp(3, 2, 4, rng=rng).load(path)


def test_flow_bad_inputs(rng):
    """Shapes, contexts and hyper-parameters are checked with ValueErrors naming the argument."""
    with pytest.raises(ValueError, match="bijectors"):
        Flow([])
    with pytest.raises(ValueError, match="bijectors"):
        Chain([ElementwiseAffine(2), ElementwiseAffine(3)])
    with pytest.raises(ValueError, match="bijectors"):
        Flow([MAF(2, [3], rng=rng, context_dim=1), MAF(2, [3], rng=rng, context_dim=2)], context_dim=2)
    with pytest.raises(ValueError, match="context_dim"):
        Flow([ElementwiseAffine(2)], context_dim=1)
    with pytest.raises(ValueError, match="base"):
        Flow([ElementwiseAffine(2)], base="laplace")
    with pytest.raises(ValueError, match="dim"):
        realnvp(1, 2, 4, rng=rng)
    with pytest.raises(ValueError, match="hidden"):
        maf(2, 2, "wide", rng=rng)
    with pytest.raises(ValueError, match="image_shape"):
        realnvp(4, 2, 4, rng=rng, mask="checkerboard", image_shape=(3, 3))
    flow = maf(2, 2, 4, rng=rng, context_dim=1)
    x = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="context"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match="context"):
        flow.log_prob(x, np.ones((4, 1)))
    with pytest.raises(ValueError, match="context"):
        flow.sample(3, np.ones(2), rng=rng)
    with pytest.raises(ValueError, match="x"):
        flow.log_prob(x[:, :1], np.ones(1))
    with pytest.raises(ValueError, match="n"):
        flow.sample(0, np.ones(1), rng=rng)
    with pytest.raises(ValueError, match="rng"):
        flow.sample(3, np.ones(1), rng="0")
    with pytest.raises(ValueError, match="context"):
        realnvp(2, 1, 3, rng=rng).log_prob(x, np.ones(1))
    with pytest.raises(ValueError, match="epochs"):
        flow.fit(x, np.ones((5, 1)), rng=rng, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        flow.fit(x, np.ones((5, 1)), rng=rng, lr=-1.0)
    with pytest.raises(ValueError, match="validation_fraction"):
        flow.fit(x, np.ones((5, 1)), rng=rng, validation_fraction=1.0)
    with pytest.raises(ValueError, match="x"):
        flow.fit(x[:1], np.ones((1, 1)), rng=rng)
    with pytest.raises(ValueError, match="weights"):
        flow.log_prob_and_grad(x, np.ones(1), weights=np.ones(3))
    with pytest.raises(ValueError, match="trainable"):
        Flow([Standardize(np.zeros(2), np.ones(2))]).fit(x, rng=rng)


def test_one_observation_many_contexts(rng):
    """NLE's case: one x row broadcast over n contexts; log p and gradients match the tiled call,
    d_x is the sum over rows (FLOW.4)."""
    flow = _random_flow("maf", 2, 3, rng)
    x_o, thetas = rng.standard_normal(2), rng.standard_normal((5, 3))
    tiled = np.tile(x_o, (5, 1))
    np.testing.assert_array_equal(flow.log_prob(x_o, thetas), flow.log_prob(tiled, thetas))
    d_x, d_c = flow.grad_log_prob(x_o, thetas)
    d_x_t, d_c_t = flow.grad_log_prob(tiled, thetas)
    assert d_x.shape == (2,)
    np.testing.assert_allclose(d_x, d_x_t.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(d_c, d_c_t, rtol=1e-12)
    check_vjp(lambda t: flow.log_prob(x_o, t), lambda v: v[:, None] * d_c, thetas, rng=rng)
    with pytest.raises(ValueError, match="x"):
        flow.log_prob(x_o, thetas[0])
    with pytest.raises(ValueError, match="x"):
        flow.log_prob(np.ones(3), thetas)


def test_registered_builders_rebuild(tmp_path, rng):
    """register_builder makes a new flow family loadable by load_flow; unknown names raise."""
    from nprefgen.flows import register_builder
    from nprefgen.flows.builders import BUILDERS

    def tiny(dim, *, rng):
        flow = Flow([ElementwiseAffine(dim), Permutation.random(dim, rng=rng)])
        flow.config = {"builder": "tiny_test_family", "dim": dim}
        return flow

    register_builder("tiny_test_family", tiny)
    try:
        flow = tiny(3, rng=rng)
        randomize_parameters(flow, rng=rng)
        flow.save(tmp_path / "tiny.npz")
        x = rng.standard_normal((4, 3))
        np.testing.assert_array_equal(load_flow(tmp_path / "tiny.npz").log_prob(x), flow.log_prob(x))
        flow.config = {"builder": "no_such_family"}
        flow.save(tmp_path / "bad.npz")
        with pytest.raises(ValueError, match="builder"):
            load_flow(tmp_path / "bad.npz")
    finally:
        BUILDERS.pop("tiny_test_family")
    with pytest.raises(ValueError, match="builder"):
        register_builder("x", 3)


def test_nll_and_grad_is_the_mean_nll_and_its_gradient(rng):
    """(FLOW.4) the named training loss: L = -mean log p, d_x = -grad_x log p / n, and the
    parameter gradients added into grads are those of L (a dot-product test on one weight)."""
    flow = _random_flow("maf", 2, 1, rng)
    x, c = rng.standard_normal((6, 2)), rng.standard_normal((6, 1))
    flow.zero_grad()
    loss, d_x, d_c = flow.nll_and_grad(x, c)
    assert loss == pytest.approx(-np.mean(flow.log_prob(x, c)), rel=1e-14)
    g_x, g_c = flow.grad_log_prob(x, c)
    np.testing.assert_allclose(d_x, -g_x / 6, rtol=1e-12)
    np.testing.assert_allclose(d_c, -g_c / 6, rtol=1e-12)
    name, p, g = next(iter(flow.named_parameters()))
    u = rng.standard_normal(p.shape)
    h = 1e-6
    p += h * u
    up = -np.mean(flow.log_prob(x, c))
    p -= 2 * h * u
    down = -np.mean(flow.log_prob(x, c))
    p += h * u
    assert np.sum(g * u) == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9), name


def test_fit_returns_self_and_a_huge_lr_raises_with_the_best_weights_kept(rng):
    """Issue 13 class 6: a flow trained with lr=10 diverges in its first epoch; fit restores the
    initial (finite) weights and raises TrainingDivergedError naming the learning rate, never a
    message about the data. With on_divergence='warn' it warns and returns the flow."""
    from nprefgen.nn.train import TrainingDivergedError

    x = rng.standard_normal((200, 2)) * [1.0, 0.5]
    flow = maf(2, 2, [8], rng=np.random.default_rng(1))
    assert flow.fit(x, rng=0, epochs=2, progress=False) is flow
    start = flow.state_dict()
    with pytest.raises(TrainingDivergedError, match=r"diverged.*lr=10\b") as err:
        flow.fit(x, rng=0, epochs=5, lr=10.0, clip=None, progress=False)
    assert "expected finite" not in str(err.value) and "smaller learning rate" in str(err.value)
    assert all(np.array_equal(v, start[k]) for k, v in flow.state_dict().items())
    with pytest.warns(RuntimeWarning, match="diverged"):
        assert flow.fit(x, rng=0, epochs=5, lr=10.0, on_divergence="warn", progress=False) is flow
    assert flow.history_["stopped"] == "diverged"
    assert all(np.all(np.isfinite(p)) for p, _ in flow.parameters())


def test_fit_with_a_hook_redraws_the_training_data_each_epoch(rng):
    """The per-epoch hook (e.g. fresh dequantization noise, SPL.14): the flow trains on the
    arrays it returns, the fixed validation_data stays the monitored set, and the result equals
    a hand-written loop drawing noise, then the shuffle, each epoch from the same Generator."""
    from nprefgen.nn import Adam

    v = rng.integers(0, 4, (40, 2)).astype(float)
    v_val = rng.integers(0, 4, (10, 2)).astype(float)

    def noisy(rng_):
        return v + rng_.uniform(size=v.shape)

    flow = maf(2, 1, [4], rng=np.random.default_rng(0), standardize=False)
    flow.fit(v, rng=np.random.default_rng(5), validation_data=v_val + 0.5, epochs=3,
             batch_size=16, lr=1e-2, patience=None, clip=None,
             hook=lambda epoch, rng_: noisy(rng_), progress=False)
    assert len(flow.history_["val_loss"]) == 3
    ref = maf(2, 1, [4], rng=np.random.default_rng(0), standardize=False)
    gen, opt = np.random.default_rng(5), Adam(ref.parameters(), lr=1e-2)
    best, best_state = np.inf, None
    for _ in range(3):
        y = noisy(gen)
        perm = gen.permutation(40)
        for s in range(0, 40, 16):
            ref.zero_grad()
            ref.nll_and_grad(y[perm[s:s + 16]])
            opt.step()
        val = ref.mean_nll(v_val + 0.5)
        if val < best:
            best, best_state = val, ref.state_dict()
    ref.load_state_dict(best_state)
    for k, w in flow.state_dict().items():
        np.testing.assert_array_equal(w, best_state[k])
    assert min(flow.history_["val_loss"]) == best


def test_fit_initialises_on_the_hooks_first_data_and_calls_it_once_per_epoch(rng):
    """With a hook, epoch 0's data come from the hook before the data-dependent initialisation
    (FLOW.19), so ActNorm standardises the redrawn data, not the placeholder passed as x."""
    x = rng.standard_normal((50, 2))
    calls = []

    def hook(epoch, rng_):
        calls.append(epoch)
        return 5.0 + 3.0 * x + 0.1 * rng_.standard_normal(x.shape)

    flow = realnvp(2, 2, 8, rng=rng, actnorm=True, standardize=False)
    first = hook(0, np.random.default_rng(4))
    calls.clear()
    flow.fit(np.zeros_like(x) + np.arange(2), rng=np.random.default_rng(4), epochs=3, lr=1e-12,
             validation_data=x, patience=None, hook=hook, progress=False)
    assert calls == [0, 1, 2]
    np.testing.assert_allclose(flow[0].params["shift"],
                               -first.mean(axis=0) / (first.std(axis=0) + flow[0].eps), rtol=1e-9)
