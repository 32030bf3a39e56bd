"""Running a simulator on many parameters: in-process or on any executor, reproducibly.

``simulate(simulator, theta, *, rng=None, executor=None, batch_size=1000)`` cuts ``theta``
into batches of ``batch_size`` rows and gives batch b its own generator, seeded by the b-th child
of one ``np.random.SeedSequence`` (``spawn``) whose entropy is drawn from ``rng``. The batches and
their seeds do not depend on where they run, so the result is identical in-process, in a
``concurrent.futures.ProcessPoolExecutor`` or on a cluster, e.g. with dask.distributed::

    from dask.distributed import Client
    client = Client("scheduler:8786")
    sims = simulate(my_simulator, theta, rng=rng, executor=client.get_executor(), batch_size=500)

(any object with ``submit(fn, *args) -> Future`` works; for a process pool or a cluster the
simulator must be picklable: a module-level function or an instance of a module-level class).
For budgets that should not sit in memory, or runs that must survive a crash, use
:func:`nprefgen.sbi.shards.simulate_shards` (the same seeding, results streamed to ``.npz``
shards on disk, resumable; ``pip install nprefgen[distributed]`` for dask).

Simulations whose output holds NaN or inf are dropped and counted (``Simulations.n_dropped``,
and their parameters in ``dropped_theta``), so nothing downstream trains on them silently.

Every batch is a fresh copy of its rows of ``theta``, in-process as in a worker process, so a
simulator that modifies its input changes neither the caller's array nor the result, whatever the
executor. Simulator output must be real numbers: complex (or non-numeric) output is a ValueError,
never a silently dropped imaginary part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng
from nprefgen.sbi.priors import check_prior


@dataclass
class Simulations:
    """Finite simulations and what was dropped.

    theta : (n_ok, p), x : (n_ok, ...), n_dropped : int, dropped_theta : (n_dropped, p).
    """

    theta: np.ndarray
    x: np.ndarray
    n_dropped: int
    dropped_theta: np.ndarray

    @property
    def n_total(self) -> int:
        return self.theta.shape[0] + self.n_dropped

    def __iter__(self):          # theta, x = simulate(...)
        return iter((self.theta, self.x))


def batch_seeds(n_batches: int, *, rng=None) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per batch, all children of one root drawn from ``rng``
    (None, an int seed or a Generator, SPEC 7)."""
    n_batches = check_int(n_batches, "n_batches", low=0)
    rng = check_rng(rng)
    root = np.random.SeedSequence(rng.integers(0, 2 ** 63, size=4).tolist())
    return root.spawn(n_batches)


def run_batch(simulator, theta: np.ndarray, seed: np.random.SeedSequence) -> np.ndarray:
    """Simulate one batch with its own generator (runs in a worker process when pooled).

    The simulator gets a private copy of ``theta`` (it may modify it). -> x: (m, ...) float64."""
    x = np.asarray(simulator(theta.copy(), np.random.default_rng(seed)))
    if np.iscomplexobj(x):
        raise ValueError(f"simulator: expected real output, got dtype {x.dtype} (take the real "
                         f"part or the modulus inside the simulator if that is what you mean)")
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"simulator: expected a numeric array, got dtype {x.dtype}")
    return x.astype(np.float64, copy=False)


def simulate(simulator, theta, *, rng=None, executor=None, batch_size: int = 1000) -> Simulations:
    """x_i ~ p(x | theta_i) for every row; NaN/inf simulations dropped and counted.

    Parameters
    ----------
    simulator : callable (theta: (m, p), rng) -> x: (m, ...).
    theta : (n, p) parameters.
    rng : None, an int seed or a Generator (SPEC 7), the only source of randomness; the
        simulator itself is always called as ``simulator(theta, generator)``.
    executor : None (in-process) or a ``concurrent.futures.Executor``-like object.
    batch_size : rows per batch; the result depends on it (it fixes the seeding), not on the
        executor.

    Returns
    -------
    Simulations with theta (n_ok, p), x (n_ok, ...), n_dropped, dropped_theta.
    """
    if not callable(simulator):
        raise ValueError(f"simulator: expected a callable (theta, rng) -> x, got {type(simulator).__name__}")
    theta = check_array(theta, "theta", ndim=2, dtype=np.float64)
    rng = check_rng(rng)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if executor is not None and not hasattr(executor, "submit"):
        raise ValueError(f"executor: expected None or an object with submit(fn, *args), "
                         f"got {type(executor).__name__}")
    n = theta.shape[0]
    starts = list(range(0, n, batch_size))
    seeds = batch_seeds(len(starts), rng=rng)
    batches = [theta[s:s + batch_size] for s in starts]
    if executor is None:
        xs = [run_batch(simulator, tb, sd) for tb, sd in zip(batches, seeds)]
    else:
        futures = [executor.submit(run_batch, simulator, tb, sd) for tb, sd in zip(batches, seeds)]
        xs = [f.result() for f in futures]
    for tb, xb in zip(batches, xs):
        if xb.ndim < 1 or xb.shape[0] != tb.shape[0]:
            raise ValueError(f"simulator: expected an output with {tb.shape[0]} rows for theta of "
                             f"shape {tb.shape}, got shape {xb.shape}")
    x = np.concatenate(xs, axis=0)
    if x.ndim == 1:
        x = x[:, None]
    ok = np.all(np.isfinite(x.reshape(n, -1)), axis=1)
    return Simulations(theta[ok], x[ok], int(n - ok.sum()), theta[~ok])


def simulate_from_prior(prior, simulator, n: int, *, rng=None, executor=None,
                        batch_size: int = 1000) -> Simulations:
    """theta_i ~ p(theta), x_i ~ p(x | theta_i), i = 1..n pairs from the joint (SBI.1).

    One stream: the prior draws come first, then the simulation seeds (an int seed is turned
    into one Generator, so the two never start from the same state)."""
    n = check_int(n, "n", low=1)
    check_alloc((n, check_prior(prior).dim), "n")
    rng = check_rng(rng)
    theta = prior.sample(n, rng=rng)
    return simulate(simulator, theta, rng=rng, executor=executor, batch_size=batch_size)
