"""Simulation at scale: simulations streamed to disk in shards, resumable, on any executor.

``simulate_shards(simulator, directory, prior=prior, n=10_000_000, rng=seed, executor=...)``
runs the budget in batches of ``batch_size`` rows and writes every ``shard_size`` rows as one
``.npz`` (``shard_000000.npz``, ...: theta, x and the parameters of dropped non-finite
simulations), each written atomically (:func:`nprefgen.nn.io.atomic_write`: a shard on disk is
complete or absent). Nothing holds more than the shards in flight, so a 10^7 budget never has
to fit in memory. A ``manifest.json`` records the run (budget, sizes, the root seed's entropy);
calling again on the same directory resumes: finished shards are read, never recomputed, and
the missing ones are simulated with the seeds they would have had.

Seeds. Batch b (global index) gets the b-th child of one ``np.random.SeedSequence`` whose
entropy comes from ``rng`` (as :func:`nprefgen.sbi.simulate.simulate` does): child (b,) drives
the simulator and, when theta comes from the prior, child (b, 0) draws batch b's theta. The
children are built from (entropy, b) directly, so the simulations depend on ``rng``,
``batch_size`` and the budget only, not on ``shard_size``, the executor, the number of workers,
the order in which batches finish or a crash and resume. With ``theta=`` given, the rows are
bit-identical to ``simulate(simulator, theta, rng=rng, batch_size=batch_size)``.

On a dask cluster (``pip install nprefgen[distributed]``)::

    from dask.distributed import Client
    client = Client("tcp://scheduler-host:8786")          # or Client(LocalCluster(...))
    data = simulate_shards(my_simulator, "/shared/sims", prior=prior, n=10_000_000, rng=0,
                           executor=client.get_executor(), shard_size=100_000)
    posterior = NPE(prior).train(data, None, rng=0)        # minibatches read shard by shard

The simulator, the prior and the batch arguments are pickled to the workers (module-level
functions or classes, as for a process pool); only the client process writes shards, so the
directory need not be shared with the workers. ``executor`` is anything with
``submit(fn, *args) -> future`` (dask's ``client.get_executor()``, a
``concurrent.futures.ProcessPoolExecutor``, or None for in-process).

:class:`ShardedDataset` reads a finished directory: ``len``, ``load(k)``, ``arrays()``, and
``minibatches(batch_size, rng=...)`` (shard order and rows within a shard shuffled, one shard in
memory at a time), the data source :func:`nprefgen.nn.train.fit_loop` and ``NPE.train`` accept.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from nprefgen._validation import check_alloc, check_array, check_int, check_rng, check_scalar
from nprefgen.nn.io import atomic_write, read_npz
from nprefgen.sbi.simulate import run_batch

MANIFEST = "manifest.json"
_VERSION = 1


def _shard_path(directory, k: int) -> str:
    return os.path.join(os.fspath(directory), f"shard_{k:06d}.npz")


def _batch_seed(entropy, b: int, *sub: int) -> np.random.SeedSequence:
    """The b-th child (spawn key (b, *sub)) of the root SeedSequence with this entropy."""
    return np.random.SeedSequence(entropy, spawn_key=(int(b), *sub))


def _run_prior_batch(prior, simulator, entropy, b: int, m: int):
    """Batch b of a prior-driven run: theta (m, p) ~ prior with child (b, 0), x with child (b,)
    (runs in a worker). -> (theta, x)."""
    theta = np.asarray(prior.sample(m, rng=np.random.default_rng(_batch_seed(entropy, b, 0))),
                       dtype=np.float64)
    return theta, run_batch(simulator, theta, _batch_seed(entropy, b))


def _run_theta_batch(simulator, theta, entropy, b: int):
    """Batch b of a run over given parameters (the rows of theta it covers). -> (theta, x)."""
    return theta, run_batch(simulator, theta, _batch_seed(entropy, b))


def _fingerprint(theta: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(theta).view(np.uint8)).hexdigest()


def _manifest(directory, settings: dict, rng) -> dict:
    """Read or write the run's manifest; a resumed run must have the same settings."""
    path = os.path.join(directory, MANIFEST)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        for key, value in settings.items():
            if old.get(key) != value:
                raise ValueError(f"directory: {directory!r} holds a run with {key}={old.get(key)!r}, "
                                 f"not {value!r}; use a new directory or the same settings")
        if rng is not None:
            entropy = _entropy(rng)
            if entropy != old["entropy"]:
                raise ValueError(f"rng: the run in {directory!r} was started with another seed; "
                                 f"pass the same seed or rng=None to resume it")
        return old
    manifest = dict(settings, entropy=_entropy(rng), version=_VERSION)
    with atomic_write(path) as f:
        f.write(json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest


def _entropy(rng) -> list:
    """The root SeedSequence's entropy, drawn as :func:`nprefgen.sbi.simulate.batch_seeds` does."""
    return [int(v) for v in check_rng(rng).integers(0, 2 ** 63, size=4)]


def simulate_shards(simulator, directory, *, prior=None, n: int | None = None, theta=None,
                    rng=None, shard_size: int = 100_000, batch_size: int = 1000,
                    executor=None) -> "ShardedDataset":
    """Simulate a budget into shards on disk, resuming a crashed run; see the module docstring.

    Parameters
    ----------
    simulator : callable (theta: (m, p), rng) -> x: (m, dx).
    directory : folder of the run (created if missing).
    prior, n : draw n parameter vectors from the prior, batch by batch; or
    theta : (n, p) given parameters (e.g. a memory map).
    rng : None, an int seed or a Generator (SPEC 7): the root seed. A resumed run takes the
        manifest's seed when ``rng`` is None and checks it otherwise.
    shard_size : rows per shard file (a multiple of ``batch_size``).
    batch_size : rows per simulator call; the results depend on it (it fixes the seeding).
    executor : None or an object with ``submit(fn, *args) -> future``.

    Returns
    -------
    ShardedDataset over the finished directory.
    """
    if not callable(simulator):
        raise ValueError(f"simulator: expected a callable (theta, rng) -> x, got "
                         f"{type(simulator).__name__}")
    if executor is not None and not hasattr(executor, "submit"):
        raise ValueError(f"executor: expected None or an object with submit(fn, *args), got "
                         f"{type(executor).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    shard_size = check_int(shard_size, "shard_size", low=1)
    if shard_size % batch_size:
        raise ValueError(f"shard_size: expected a multiple of batch_size={batch_size}, got "
                         f"{shard_size}")
    if (theta is None) == (prior is None):
        raise ValueError("theta: expected exactly one of theta=(n, p) or prior= with n=")
    if theta is not None:
        theta = check_array(theta, "theta", ndim=2, dtype=np.float64)
        if n is not None and n != theta.shape[0]:
            raise ValueError(f"n: expected None or {theta.shape[0]} (theta's rows), got {n}")
        n, p = theta.shape
        settings = {"mode": "theta", "n": n, "dim_theta": p, "theta_sha256": _fingerprint(theta)}
    else:
        for attr in ("sample",):
            if not callable(getattr(prior, attr, None)):
                raise ValueError(f"prior: expected an object with sample(n, rng=...), got "
                                 f"{type(prior).__name__}")
        n = check_int(n, "n", low=1)
        settings = {"mode": "prior", "n": n, "dim_theta": int(getattr(prior, "dim", 0))}
    settings.update(batch_size=batch_size, shard_size=shard_size)
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory: expected a path, got {type(directory).__name__}")
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"directory: expected a folder, got the file {directory!r}")
    os.makedirs(directory, exist_ok=True)
    entropy = _manifest(directory, settings, rng)["entropy"]

    per_shard = shard_size // batch_size
    n_batches = -(-n // batch_size)
    n_shards = -(-n_batches // per_shard)

    def submit(b):
        lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
        if theta is not None:
            args = (_run_theta_batch, simulator, theta[lo:hi], entropy, b)
        else:
            args = (_run_prior_batch, prior, simulator, entropy, b, hi - lo)
        return args[0](*args[1:]) if executor is None else executor.submit(*args)

    todo = [k for k in range(n_shards) if not os.path.exists(_shard_path(directory, k))]
    pending = []                       # (k, [futures or results]) for at most two shards
    for pos, k in enumerate(todo):
        if not pending:
            pending.append((k, [submit(b) for b in range(k * per_shard,
                                                         min(n_batches, (k + 1) * per_shard))]))
        if pos + 1 < len(todo) and executor is not None:      # keep the workers busy meanwhile
            k2 = todo[pos + 1]
            pending.append((k2, [submit(b) for b in range(k2 * per_shard,
                                                          min(n_batches, (k2 + 1) * per_shard))]))
        k_now, parts = pending.pop(0)
        results = [r if executor is None else r.result() for r in parts]
        _write_shard(directory, k_now, results)
    return ShardedDataset(directory)


def _write_shard(directory, k: int, results) -> None:
    for th, x in results:
        if x.ndim < 1 or x.shape[0] != th.shape[0]:
            raise ValueError(f"simulator: expected an output with {th.shape[0]} rows for theta of "
                             f"shape {th.shape}, got shape {x.shape}")
    theta = np.concatenate([th for th, _ in results])
    x = np.concatenate([x for _, x in results])
    if x.ndim == 1:
        x = x[:, None]
    ok = np.all(np.isfinite(x.reshape(x.shape[0], -1)), axis=1)
    with atomic_write(_shard_path(directory, k)) as f:
        np.savez(f, theta=theta[ok], x=x[ok], dropped_theta=theta[~ok])


class ShardedDataset:
    """The finished shards of a :func:`simulate_shards` directory.

    ``len(ds)`` finite rows; ``n_dropped``; ``load(k)`` -> (theta, x) of shard k;
    ``arrays()`` -> all of theta (n, p), x (n, dx) in memory; ``minibatches(batch_size, rng=)``
    -> an iterator of (theta_b, x_b). ``exclude``: {shard: rows} held out (see
    :meth:`split_validation`)."""

    def __init__(self, directory, *, exclude: dict | None = None) -> None:
        directory = os.fspath(directory)
        path = os.path.join(directory, MANIFEST)
        if not os.path.exists(path):
            raise ValueError(f"directory: {directory!r} has no {MANIFEST}; run simulate_shards first")
        with open(path, encoding="utf-8") as f:
            self.manifest = json.load(f)
        self.directory = directory
        per_shard = self.manifest["shard_size"]
        self.n_shards = -(-self.manifest["n"] // per_shard)
        missing = [k for k in range(self.n_shards) if not os.path.exists(_shard_path(directory, k))]
        if missing:
            raise ValueError(f"directory: {len(missing)} of {self.n_shards} shards missing (first "
                             f"{missing[0]}); call simulate_shards again to finish the run")
        self.exclude = exclude or {}
        self._counts = None

    def load(self, k: int, *, keep_excluded: bool = False):
        """Shard k's finite rows (minus the excluded ones): theta (m, p), x (m, dx)."""
        k = check_int(k, "k", low=0, high=self.n_shards - 1)
        arrays = read_npz(_shard_path(self.directory, k), keys=("theta", "x"))
        theta, x = arrays["theta"], arrays["x"]
        if not keep_excluded and k in self.exclude:
            keep = np.ones(theta.shape[0], dtype=bool)
            keep[self.exclude[k]] = False
            theta, x = theta[keep], x[keep]
        return theta, x

    def counts(self) -> list:
        """Rows per shard (finite, minus the excluded ones), read from the theta members only."""
        if self._counts is None:
            self._counts = [read_npz(_shard_path(self.directory, k), keys=("theta",))["theta"].shape[0]
                            - len(self.exclude.get(k, ())) for k in range(self.n_shards)]
        return self._counts

    def __len__(self) -> int:
        return int(sum(self.counts()))

    @property
    def n_dropped(self) -> int:
        return int(sum(read_npz(_shard_path(self.directory, k), keys=("dropped_theta",))
                       ["dropped_theta"].shape[0] for k in range(self.n_shards)))

    def arrays(self):
        """All rows in shard order: theta (n, p), x (n, dx) (they must fit in memory)."""
        parts = [self.load(k) for k in range(self.n_shards)]
        check_alloc((sum(t.shape[0] for t, _ in parts), parts[0][0].shape[1] + parts[0][1].shape[1]),
                    "directory")
        return np.concatenate([t for t, _ in parts]), np.concatenate([x for _, x in parts])

    def split_validation(self, fraction: float, *, rng=None):
        """Hold out ``fraction`` of every shard's rows (a permutation per shard from ``rng``):
        -> (training ShardedDataset without them, (theta_val, x_val) in memory)."""
        fraction = check_scalar(fraction, "fraction", low=0.0, high=1.0, high_inclusive=False)
        rng = check_rng(rng)
        exclude, val_t, val_x = {}, [], []
        for k in range(self.n_shards):
            theta, x = self.load(k)
            m = int(np.ceil(fraction * theta.shape[0])) if fraction > 0 else 0
            rows = rng.permutation(theta.shape[0])[:m]
            exclude[k] = rows
            val_t.append(theta[rows])
            val_x.append(x[rows])
        return (ShardedDataset(self.directory, exclude=exclude),
                (np.concatenate(val_t), np.concatenate(val_x)))

    def moments(self):
        """Per-column mean and (population) standard deviation of theta and x over all rows,
        streamed shard by shard (Chan et al.'s pairwise update): four (d,) arrays."""
        out = []
        for col in (0, 1):
            n_tot, mean, m2 = 0, None, None
            for k in range(self.n_shards):
                a = self.load(k)[col]
                if a.shape[0] == 0:
                    continue
                mu_k = a.mean(axis=0)
                m2_k = ((a - mu_k) ** 2).sum(axis=0)
                if mean is None:
                    n_tot, mean, m2 = a.shape[0], mu_k, m2_k
                    continue
                n_new = n_tot + a.shape[0]
                delta = mu_k - mean
                mean = mean + delta * a.shape[0] / n_new
                m2 = m2 + m2_k + delta ** 2 * n_tot * a.shape[0] / n_new
                n_tot = n_new
            out += [mean, np.sqrt(m2 / n_tot)]
        return tuple(out)

    def minibatches(self, batch_size: int, *, rng=None):
        """Minibatches (theta_b, x_b) of ``batch_size`` rows over one pass: the shard order and
        the rows within each shard permuted by ``rng``; rows left over at the end of a shard
        join the next shard's first batch (the last batch may be smaller). One shard (plus a
        remainder) in memory at a time."""
        batch_size = check_int(batch_size, "batch_size", low=1)
        rng = check_rng(rng)
        carry_t = carry_x = None
        for k in rng.permutation(self.n_shards):
            theta, x = self.load(int(k))
            perm = rng.permutation(theta.shape[0])
            theta, x = theta[perm], x[perm]
            if carry_t is not None:
                theta, x = np.concatenate([carry_t, theta]), np.concatenate([carry_x, x])
            full = (theta.shape[0] // batch_size) * batch_size
            for s in range(0, full, batch_size):
                yield theta[s:s + batch_size], x[s:s + batch_size]
            carry_t, carry_x = theta[full:], x[full:]
        if carry_t is not None and carry_t.shape[0]:
            yield carry_t, carry_x

    def head(self, m: int):
        """The first m rows of shard 0 (a sanity batch for the training loop)."""
        theta, x = self.load(0)
        return theta[:m], x[:m]


def train_npe_on_shards(estimator, dataset: ShardedDataset, *, rng=None, batch_size: int = 200,
                        lr: float = 5e-4, validation_fraction: float = 0.1, patience: int = 20,
                        max_epochs: int = 1000, clip: float | None = 5.0, progress=None):
    """NPE (SBI.10) on a ShardedDataset: the validation rows held out per shard, the z-scoring
    statistics (SBI.11) streamed over the training rows, minibatches read shard by shard by
    :func:`nprefgen.nn.train.fit_loop`. Sets ``estimator.flow`` and ``estimator.history_``."""
    from nprefgen.flows.elementwise import Standardize
    from nprefgen.nn.train import TrainingDivergedError, fit_loop
    from nprefgen.sbi.npe import build_flow

    check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    rng = check_rng(rng)
    estimator.flow = estimator.history_ = None
    train, val = dataset.split_validation(validation_fraction, rng=rng)
    t_mean, t_std, x_mean, x_std = train.moments()
    p, dx = t_mean.shape[0], x_mean.shape[0]
    flow = build_flow(estimator.flow_kind, p, dx, estimator.n_transforms, estimator.hidden,
                      True if estimator.z_score_theta else None,
                      True if estimator.z_score_x else None, rng=rng,
                      activation=estimator.activation)
    if estimator.z_score_theta:
        z_score = next(b for b in flow.bijectors if isinstance(b, Standardize))
        z_score.load_buffer_dict({"mean": t_mean, "std": np.maximum(t_std, 1e-12)})
    if estimator.z_score_x:
        flow.context_mean[...] = x_mean
        flow.context_std[...] = np.where(x_std > 1e-12, x_std, 1.0)
    try:
        flow.history_ = fit_loop(flow, flow.nll_and_grad, train, rng=rng,
                                 val_data=val if val[0].shape[0] else None, evaluate=flow.mean_nll,
                                 epochs=max_epochs, batch_size=batch_size, lr=lr, clip=clip,
                                 patience=patience, progress=progress, desc="NPE.train[shards]")
    except TrainingDivergedError as err:
        estimator.history_ = err.history
        raise
    estimator.flow, estimator.history_ = flow, flow.history_
    return flow
