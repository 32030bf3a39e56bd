"""NLE posteriors (MCMCPosterior) save and load like NPE's DirectPosterior: one .npz written
atomically, validated all or nothing, never unpickled (SBI.13)."""
from __future__ import annotations

import json
import os
import warnings
import zipfile

import numpy as np
import pytest

from nprefgen.nn.io import read_npz
from nprefgen.sbi import NLE, NPE, BoxUniform, DirectPosterior, MCMCPosterior, simulate_from_prior

PRIOR = BoxUniform([-1.0, -1.0], [1.0, 1.0])


def simulator(theta, rng):
    return np.column_stack([theta[:, 0] + theta[:, 1], theta[:, 0] - theta[:, 1], theta[:, 0]]) \
        + 0.1 * rng.standard_normal((theta.shape[0], 3))


@pytest.fixture(scope="module")
def trained():
    sims = simulate_from_prior(PRIOR, simulator, 300, rng=0)
    nle = NLE(PRIOR, flow="maf", n_transforms=2, hidden=8)
    nle.train(sims.theta, sims.x, rng=0, max_epochs=3)
    npe = NPE(PRIOR, flow="maf", n_transforms=1, hidden=8).train(sims.theta, sims.x, rng=0,
                                                                 max_epochs=2)
    return nle, npe


def _quiet_sample(post, n, x, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return post.sample(n, x, rng=seed)


def test_round_trip_keeps_the_likelihood_and_the_settings(trained, tmp_path):
    nle, _ = trained
    post = nle.posterior(method="hmc", n_chains=3, n_warmup=6, jump_every=2, n_jump_proposals=7,
                         rhat_max=1.2)
    path = tmp_path / "nle.npz"
    post.save(path)
    back = MCMCPosterior.load(path, PRIOR)
    assert back.settings() == post.settings() and back.dim_x == 3
    theta = PRIOR.sample(5, rng=1)
    x = np.array([0.2, -0.1, 0.3])
    np.testing.assert_array_equal(back.log_prob(theta, x), post.log_prob(theta, x))
    np.testing.assert_array_equal(_quiet_sample(back, 12, x, 2), _quiet_sample(post, 12, x, 2))
    assert back.grad_log_likelihood is not None                 # HMC keeps its gradient


def test_files_of_the_other_posterior_are_refused(trained, tmp_path):
    nle, npe = trained
    nle_path, npe_path = tmp_path / "nle.npz", tmp_path / "npe.npz"
    nle.posterior().save(nle_path)
    npe.save(npe_path)
    with pytest.raises(ValueError, match=r"^path: .*MCMC posterior.*MCMCPosterior.load"):
        DirectPosterior.load(nle_path, PRIOR)
    with pytest.raises(ValueError, match=r"^path: .*no MCMC posterior settings"):
        MCMCPosterior.load(npe_path, PRIOR)
    with pytest.raises(ValueError, match=r"^path: .*over 2 parameters; the prior has 3"):
        MCMCPosterior.load(nle_path, BoxUniform(-np.ones(3), np.ones(3)))


def _rewrite(src, dst, change):
    arrays = read_npz(src)
    change(arrays)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.__setitem__("__meta__.mcmc_posterior", np.array("{not json")), "valid JSON"),
    (lambda a: a.__setitem__("__meta__.mcmc_posterior", np.array(json.dumps({"method": "slice"}))),
     "expected a JSON object with keys"),
    (lambda a: a.__setitem__("__meta__.mcmc_posterior", np.array(1.0)), "expected a JSON string"),
    (lambda a: a.update({"__meta__.mcmc_posterior": np.array(json.dumps(
        {**json.loads(str(a["__meta__.mcmc_posterior"])), "n_chains": 0}))}), "invalid MCMC settings"),
    (lambda a: a.update({"__meta__.mcmc_posterior": np.array(json.dumps(
        {**json.loads(str(a["__meta__.mcmc_posterior"])), "likelihood": "Pickle"}))}),
     "not a registered term"),
    (lambda a: a.update({k: v[:1] for k, v in list(a.items()) if not k.startswith("__meta__")}),
     "does not fit"),
])
def test_a_bad_file_raises_naming_path(trained, tmp_path, change, match):
    nle, _ = trained
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    nle.posterior().save(good)
    _rewrite(good, bad, change)
    with pytest.raises(ValueError, match=r"^path: .*" + match):
        MCMCPosterior.load(bad, PRIOR)


def test_truncated_and_pickled_files_are_refused(trained, tmp_path):
    nle, _ = trained
    good = tmp_path / "good.npz"
    nle.posterior().save(good)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(ValueError, match=r"^path"):
        MCMCPosterior.load(cut, PRIOR)
    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(pickled, "w") as zf, zf.open("__meta__.mcmc_posterior.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"^path"):
        MCMCPosterior.load(pickled, PRIOR)


def test_save_is_atomic_and_needs_a_registered_term(trained, tmp_path):
    nle, _ = trained
    path = tmp_path / "nle.npz"
    nle.posterior().save(path)
    before = path.read_bytes()
    explicit = MCMCPosterior(PRIOR, lambda t, x: np.zeros(len(t)), 3)
    with pytest.raises(ValueError, match=r"^log_likelihood: a function cannot be saved"):
        explicit.save(path)
    broken = nle.posterior()
    broken.n_chains = np.nan                          # not JSON-serialisable as a setting
    with pytest.raises(ValueError, match="^settings"):
        broken.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nle.npz"]   # no temporary left
