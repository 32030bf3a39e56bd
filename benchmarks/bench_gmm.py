"""One EM iteration of a full-covariance Gaussian mixture (K=10): nprefgen against
scikit-learn's GaussianMixture, side by side in one process, from the same parameters.

Run: ``python benchmarks/bench_gmm.py [--repeats 30] [--threads 1] [--n2d 100000]``.

Data: the 64-D digits (all 1,797 images, raw counts 0..16, from ``nprefgen.data.load_digits``)
and 100,000 points of a 2-D mixture. For each, starting parameters come from a short nprefgen fit
(5 EM steps from k-means++); both libraries then run the same EM iteration from those same
parameters, reset before every repetition:

- nprefgen: ``e_step`` (GMM.3, GMM.4) + ``m_step`` (GMM.5-GMM.8) + ``precision_cholesky`` (GMM.3a),
  exactly the body of ``nprefgen.models.gmm_em.em``; also the same iteration through the NumPy twins
  of the kernels, to show what numba adds;
- scikit-learn: ``GaussianMixture._e_step`` + ``_m_step``, the body of its ``fit`` loop (private
  methods: the public ``fit`` adds validation and a final E-step around the loop).

Agreement is checked first: the mean log-likelihood before the step, and after it (the E-step of
the updated parameters), must agree to 1e-10. Rounds alternate between the implementations; the
min and median over rounds are printed with the ratio nprefgen / sklearn (medians).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from nprefgen.kernels import gmm as kg
from nprefgen.models.gmm import GaussianMixture, e_step, m_step, precision_cholesky

K = 10


def nprefgen_iteration(X, params, reg_covar):
    """One EM iteration: returns the mean log-likelihood before it and the new parameters."""
    w, mu, U = params
    log_norm, log_resp = e_step(X, w, mu, U, "full")
    w, mu, cov = m_step(X, np.exp(log_resp), "full", reg_covar)
    return float(np.mean(log_norm)), (w, mu, precision_cholesky(cov, "full"))


def numpy_twin_iteration(X, params, reg_covar):
    """The same iteration through the NumPy twins of every kernel (the oracle path)."""
    w, mu, U = params
    a = kg.log_gaussian_prob_full_numpy(X, mu, U) + np.log(w)
    log_norm, log_resp = kg.log_responsibilities_numpy(a)
    resp = np.exp(log_resp)
    nk, sx = kg.weighted_sums_numpy(X, resp)
    nk = nk + 10 * np.finfo(float).eps
    mu = sx / nk[:, None]
    cov = kg.weighted_scatter_full_numpy(X, resp, mu) / nk[:, None, None]
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    cov[:, np.arange(X.shape[1]), np.arange(X.shape[1])] += reg_covar
    return float(np.mean(log_norm)), (nk / nk.sum(), mu, precision_cholesky(cov, "full"))


def sklearn_iteration(gm, X, params):
    gm.weights_, gm.means_, gm.precisions_cholesky_ = (p.copy() for p in params)
    log_prob_norm, log_resp = gm._e_step(X)
    gm._m_step(X, log_resp)
    return float(log_prob_norm), (gm.weights_, gm.means_, gm.precisions_cholesky_)


def bench(name, X, reg_covar, repeats, sklearn_mixture):
    n, d = X.shape
    start = GaussianMixture(K, max_iter=5, tol=0.0, reg_covar=reg_covar).fit(
        X, rng=np.random.default_rng(0))
    params = (start.weights_, start.means_, start.precisions_cholesky_)
    fns = {"nprefgen (numba kernels)": lambda: nprefgen_iteration(X, params, reg_covar),
           "nprefgen (NumPy twins)": lambda: numpy_twin_iteration(X, params, reg_covar)}
    ll = {k: f() for k, f in fns.items()}
    if sklearn_mixture is not None:
        gm = sklearn_mixture.GaussianMixture(
            K, covariance_type="full", reg_covar=reg_covar, max_iter=1,
            weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X)
        fns["sklearn GaussianMixture"] = lambda: sklearn_iteration(gm, X, params)
        ll["sklearn GaussianMixture"] = fns["sklearn GaussianMixture"]()
    # agreement: log-likelihood before the step, and after it (E-step of the new parameters)
    after = {k: float(np.mean(e_step(X, *p, "full")[0])) for k, (_, p) in ll.items()}
    ref = "sklearn GaussianMixture" if sklearn_mixture is not None else "nprefgen (NumPy twins)"
    print(f"\n== {name}: n = {n}, d = {d}, K = {K}, full covariance, reg_covar = {reg_covar:g}")
    for k in fns:
        print(f"  {k:28s} mean log-lik before {ll[k][0]: .12f}  after {after[k]: .12f}  "
              f"|diff vs {ref.split()[0]}| {abs(ll[k][0] - ll[ref][0]):.1e} / "
              f"{abs(after[k] - after[ref]):.1e}")
        assert abs(ll[k][0] - ll[ref][0]) < 1e-10 and abs(after[k] - after[ref]) < 1e-10
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    print(f"  {'one EM iteration':28s} {'min ms':>9s} {'median ms':>10s} {'ratio (median)':>15s}")
    base = np.median(times[ref]) if sklearn_mixture is not None else None
    for k, t in times.items():
        ratio = f"{np.median(t) / base:15.2f}" if base else ""
        print(f"  {k:28s} {1e3 * min(t):9.2f} {1e3 * np.median(t):10.2f} {ratio}")
    return {k: np.median(t) for k, t in times.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=0,
                   help="limit the BLAS under numpy/scipy to this many threads (0: default)")
    p.add_argument("--n2d", type=int, default=100_000, help="points in the 2-D set")
    args = p.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    try:
        import sklearn.mixture as sklearn_mixture
    except ImportError:
        sklearn_mixture = None
        print("scikit-learn not installed: timing nprefgen only")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"BLAS threads: {args.threads or 'default'}")
    try:
        from nprefgen.data import load_digits

        X_digits = load_digits("all", scale="raw")[0]
    except ImportError:                                # older checkouts: sklearn's copy
        from sklearn.datasets import load_digits

        X_digits = load_digits().data.astype(np.float64)
    rng = np.random.default_rng(1)
    centres = 6.0 * rng.standard_normal((K, 2))
    X2 = centres[rng.integers(K, size=args.n2d)] + rng.standard_normal((args.n2d, 2)) * \
        rng.uniform(0.3, 1.5, size=(args.n2d, 1))
    # digits: constant-zero pixels make the 64-D covariances singular without the default floor
    bench("digits 8x8", X_digits, 1e-6, args.repeats, sklearn_mixture)
    bench("2-D mixture", X2, 1e-6, args.repeats, sklearn_mixture)


if __name__ == "__main__":
    main()
