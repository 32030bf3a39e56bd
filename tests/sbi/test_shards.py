"""Simulations streamed to disk in shards (nprefgen/sbi/shards.py): seeds that do not depend on
the sharding, bit-identity with simulate(), resuming after a crash, a dask LocalCluster, and
training from shards (fit_loop's data source, NPE.train)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nprefgen.nn.train import fit_loop
from nprefgen.sbi.npe import NPE
from nprefgen.sbi.shards import ShardedDataset, simulate_shards
from nprefgen.sbi.simulate import simulate
from nprefgen.sbi.tasks import GaussianLinearSimulator, gaussian_linear, two_moons


class FailingSimulator:
    """two_moons' simulator that raises on its ``fail_at``-th call (a crash mid-run)."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at, self.calls = fail_at, 0
        self.inner = two_moons().simulator

    def __call__(self, theta, rng):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash")
        return self.inner(theta, rng)


class CountingSimulator(FailingSimulator):
    def __init__(self) -> None:
        super().__init__(fail_at=-1)


def test_shards_equal_simulate_and_do_not_depend_on_shard_size(tmp_path):
    task = two_moons()
    theta = task.prior.sample(1050, rng=0)
    data = simulate_shards(task.simulator, tmp_path / "a", theta=theta, rng=5, shard_size=300,
                           batch_size=100)
    t, x = data.arrays()
    ref = simulate(task.simulator, theta, rng=5, batch_size=100)
    np.testing.assert_array_equal(t, ref.theta)
    np.testing.assert_array_equal(x, ref.x)
    assert data.n_shards == 4 and len(data) == 1050
    one = simulate_shards(task.simulator, tmp_path / "b", prior=task.prior, n=1000, rng=7,
                          shard_size=200, batch_size=100).arrays()
    other = simulate_shards(task.simulator, tmp_path / "c", prior=task.prior, n=1000, rng=7,
                            shard_size=500, batch_size=100).arrays()
    np.testing.assert_array_equal(one[0], other[0])
    np.testing.assert_array_equal(one[1], other[1])
    assert np.all(task.prior.in_support(one[0]))
    fresh = simulate_shards(task.simulator, tmp_path / "d", prior=task.prior, n=1000, rng=8,
                            shard_size=500, batch_size=100).arrays()
    assert not np.array_equal(fresh[0], one[0])
    for f in os.listdir(tmp_path / "b"):        # plain .npz, loadable without pickles
        if f.endswith(".npz"):
            with np.load(tmp_path / "b" / f, allow_pickle=False) as z:
                assert set(z.files) == {"theta", "x", "dropped_theta"}


def test_resume_after_a_crash_recomputes_nothing_finished(tmp_path):
    """The 5th batch call raises: shards 0-1 (2 batches each) are on disk, shard 2 is not. The
    resumed run calls the simulator only for the 3 missing batches (shard 2: 2, shard 3: 1) and
    the result is bit-identical to an uninterrupted run."""
    task = two_moons()
    kwargs = dict(prior=task.prior, n=700, rng=3, shard_size=200, batch_size=100)
    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate_shards(FailingSimulator(fail_at=5), tmp_path / "run", **kwargs)
    assert sorted(f for f in os.listdir(tmp_path / "run") if f.startswith("shard")) == \
        ["shard_000000.npz", "shard_000001.npz"]
    with pytest.raises(ValueError, match="^directory"):       # unfinished: not readable yet
        ShardedDataset(tmp_path / "run")
    counting = CountingSimulator()
    resumed = simulate_shards(counting, tmp_path / "run", prior=task.prior, n=700, rng=None,
                              shard_size=200, batch_size=100)            # seed from the manifest
    assert counting.calls == 3
    whole = simulate_shards(task.simulator, tmp_path / "whole", **kwargs)
    for a, b in zip(resumed.arrays(), whole.arrays()):
        np.testing.assert_array_equal(a, b)
    again = CountingSimulator()
    simulate_shards(again, tmp_path / "run", **kwargs)               # complete: nothing to do
    assert again.calls == 0


def test_nan_rows_are_dropped_per_shard(tmp_path):
    class Holes:
        def __call__(self, theta, rng):
            x = theta + rng.standard_normal(theta.shape)
            x[theta[:, 0] > 0.5] = np.nan
            return x

    task = two_moons()
    data = simulate_shards(Holes(), tmp_path, prior=task.prior, n=400, rng=0, shard_size=200,
                           batch_size=100)
    t, x = data.arrays()
    assert np.all(np.isfinite(x)) and np.all(t[:, 0] <= 0.5)
    assert len(data) + data.n_dropped == 400 and data.n_dropped > 0


def test_minibatches_cover_every_row_once(tmp_path):
    task = two_moons()
    data = simulate_shards(task.simulator, tmp_path, prior=task.prior, n=1000, rng=1,
                           shard_size=300, batch_size=100)
    batches = list(data.minibatches(128, rng=0))
    assert all(b[0].shape[0] == 128 for b in batches[:-1])
    got = np.concatenate([b[0] for b in batches])
    want = data.arrays()[0]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(want, axis=0))
    train, (vt, vx) = data.split_validation(0.1, rng=0)
    assert len(train) + vt.shape[0] == 1000 and vt.shape == (3 * 30 + 10, 2)
    mean_t, std_t, mean_x, std_x = data.moments()
    np.testing.assert_allclose(mean_t, want.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(std_t, want.std(0), rtol=1e-12)


def test_fit_loop_reads_a_data_source(tmp_path):
    """fit_loop on a ShardedDataset: every epoch sees every row once, the loss falls; a hook is
    refused with a data source."""
    from nprefgen.flows import maf

    task = gaussian_linear(dim=2)
    data = simulate_shards(task.simulator, tmp_path, prior=task.prior, n=600, rng=2,
                           shard_size=200, batch_size=100)
    flow = maf(2, 2, 8, rng=0, context_dim=2, standardize=False)
    hist = fit_loop(flow, flow.nll_and_grad, data, rng=0, epochs=6, batch_size=64, lr=1e-2,
                    progress=False)
    assert hist["epochs"] == 6 and hist["train_loss"][-1] < hist["train_loss"][0] - 0.5
    with pytest.raises(ValueError, match="^hook"):
        fit_loop(flow, flow.nll_and_grad, data, rng=0, epochs=1, hook=lambda e, r: None)


def test_npe_trains_on_shards(tmp_path):
    """NPE.train(ShardedDataset, None) on gaussian_linear (2-D, 3,000 simulations in 3 shards):
    the posterior mean for one observation lies within 4 posterior sds / sqrt(draws)... plus the
    NPE's own error, taken as 0.25 posterior sds (what 3,000 simulations give NPE in memory)."""
    from nprefgen.sbi.tasks import gaussian_linear_posterior

    task = gaussian_linear(dim=2)
    data = simulate_shards(task.simulator, tmp_path, prior=task.prior, n=3000, rng=4,
                           shard_size=1000, batch_size=500)
    posterior = NPE(task.prior, n_transforms=2, hidden=16).train(data, None, rng=0, max_epochs=60)
    x_o = np.array([0.2, -0.3])
    mu, var = gaussian_linear_posterior(x_o[None], task.prior.mean, 0.1, 0.1)
    draws = posterior.sample(2000, x_o, rng=1)
    sd = np.sqrt(var)
    assert np.all(np.abs(draws.mean(0) - mu) < 4 * sd / np.sqrt(2000) + 0.25 * sd)
    assert np.all(np.abs(draws.std(0) / sd - 1) < 0.25)


def test_bad_inputs_are_named(tmp_path):
    task = two_moons()
    sim = task.simulator
    with pytest.raises(ValueError, match="^shard_size"):
        simulate_shards(sim, tmp_path / "a", prior=task.prior, n=10, shard_size=150, batch_size=100)
    with pytest.raises(ValueError, match="^theta"):
        simulate_shards(sim, tmp_path / "a", prior=task.prior, theta=np.zeros((3, 2)), n=3)
    with pytest.raises(ValueError, match="^simulator"):
        simulate_shards("nope", tmp_path / "a", prior=task.prior, n=10)
    with pytest.raises(ValueError, match="^executor"):
        simulate_shards(sim, tmp_path / "a", prior=task.prior, n=10, executor=3)
    simulate_shards(sim, tmp_path / "b", prior=task.prior, n=200, rng=1, shard_size=100,
                    batch_size=100)
    with pytest.raises(ValueError, match="^directory"):       # other settings, same folder
        simulate_shards(sim, tmp_path / "b", prior=task.prior, n=300, rng=1, shard_size=100,
                        batch_size=100)
    with pytest.raises(ValueError, match="^rng"):             # another seed, same folder
        simulate_shards(sim, tmp_path / "b", prior=task.prior, n=200, rng=2, shard_size=100,
                        batch_size=100)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["n"] == 200 and len(manifest["entropy"]) == 4
    with pytest.raises(ValueError, match="^directory"):
        ShardedDataset(tmp_path / "nothing")


@pytest.mark.distributed
def test_dask_local_cluster_is_bit_identical(tmp_path):
    """Two worker processes of one thread each on a LocalCluster started and stopped here: the
    same shards as in-process, bit for bit (simulate() on the client's executor too)."""
    distributed = pytest.importorskip("distributed")
    task = two_moons()
    local = simulate_shards(task.simulator, tmp_path / "local", prior=task.prior, n=2000, rng=9,
                            shard_size=500, batch_size=250).arrays()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        remote = simulate_shards(task.simulator, tmp_path / "dask", prior=task.prior, n=2000,
                                 rng=9, shard_size=500, batch_size=250,
                                 executor=client.get_executor()).arrays()
        theta = task.prior.sample(700, rng=1)
        on_dask = simulate(GaussianLinearSimulator(), theta, rng=3, batch_size=100,
                           executor=client.get_executor())
    np.testing.assert_array_equal(local[0], remote[0])
    np.testing.assert_array_equal(local[1], remote[1])
    here = simulate(GaussianLinearSimulator(), theta, rng=3, batch_size=100)
    np.testing.assert_array_equal(on_dask.x, here.x)


def test_shards_with_an_embedding_are_refused_before_training(tmp_path):
    """NPE with an embedding network cannot stream shards (its joint training takes arrays):
    a ValueError naming theta, raised before any epoch runs."""
    from nprefgen.sbi.embeddings import MLPEmbedding
    task = two_moons()
    data = simulate_shards(task.simulator, tmp_path / "s", prior=task.prior, n=200, rng=0,
                           shard_size=100, batch_size=100)
    npe = NPE(task.prior, embedding=MLPEmbedding(2, 2, (4,), rng=0))
    with pytest.raises(ValueError, match="^theta: training from shards"):
        npe.train(data, None, rng=0, max_epochs=1)
    assert npe.flow is None or not getattr(npe, "history_", None)
