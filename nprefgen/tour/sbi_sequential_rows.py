"""Rows of the SBI tour's C2ST table for neural ratio estimation and the sequential methods
(derivations/sbi.md, SBI.22-SBI.28a), kept apart from the section so that it stays short.

:func:`extra_rows` trains NRE on the section's simulations and runs TSNPE and SNLE for the
section's observation at a small budget (``settings(quick)``), and returns table rows shaped like
the section's: method, simulations, C2ST, its check, R-hat, its check, ESS, its check, CPU
wall-clock seconds, notes. Every C2ST, R-hat and ESS goes through the section's rules (Report.check), so a
value past its bar is flagged.
"""
from __future__ import annotations

import time

import numpy as np

from nprefgen._threads import blas_threads
from nprefgen.metrics.c2st import c2st
from nprefgen.sbi import NRE, SNLE, TSNPE
from nprefgen.tour import rules


def settings(quick: bool) -> dict:
    """Budgets of the added rows (full: <= 20 s CPU in total for both tasks)."""
    if quick:
        return dict(seq_sims=300, rounds=2, n_support=500, epochs=5, nre_hidden=(16, 16),
                    chains=4, warmup=10)
    return dict(seq_sims=1500, rounds=3, n_support=2000, epochs=40, nre_hidden=(32, 32),
                chains=10, warmup=30)


def _mcmc_checks(report, label, post):
    res = post.mcmc_result
    rh, ess = float(np.max(res.rhat())), float(np.min(res.ess()))
    return [rh, rules.rhat(report, f"{label}: R-hat", rh), ess,
            rules.ess(report, f"{label}: ESS", ess)]


def extra_rows(report, task, sims, x_o, reference, cfg_section) -> list[list]:
    """See :func:`_rows`; BLAS on one thread (these networks are too small for more, see
    :func:`nprefgen._threads.blas_threads`)."""
    with blas_threads(1):
        return _rows(report, task, sims, x_o, reference, cfg_section)


def _rows(report, task, sims, x_o, reference, cfg_section) -> list[list]:
    """NRE on ``sims`` (the section's simulations), TSNPE and SNLE for ``x_o`` (dx,): rows of the
    C2ST table against ``reference`` (n, p) draws. Their randomness comes from a stream of their
    own (``report.rng``), so the section's other results do not change with these rows."""
    cfg = settings(report.quick)
    rng = report.rng(f"sbi_sequential_rows_{task.name}")
    n_post, flow = reference.shape[0], cfg_section["flow"]
    fit = dict(max_epochs=cfg["epochs"], patience=10, lr=1e-3)
    rows = []

    def score(name, draws, n_sim, cpu, mcmc, notes):
        value = c2st(reference, draws, rng=rng, max_epochs=cfg_section["c2st_epochs"])
        rows.append([name, n_sim, value,
                     rules.c2st(report, f"{task.name}, {name}: C2ST", value, n_post),
                     *(mcmc or ["-", None, "-", None]), cpu, notes])

    t0 = time.perf_counter()
    nre = NRE(task.prior, hidden=cfg["nre_hidden"], n_chains=cfg["chains"],
              n_warmup=cfg["warmup"])
    post = nre.train(sims.theta, sims.x, rng=rng, **fit)
    draws = post.sample(n_post, x_o, rng=rng)
    score("NRE", draws, sims.theta.shape[0], time.perf_counter() - t0,
          _mcmc_checks(report, f"{task.name}, NRE", post),
          f"classifier {list(cfg['nre_hidden'])}, {nre.history_['epochs']} epochs, slice "
          f"sampling on log prior + logit (SBI.24)")

    t0 = time.perf_counter()
    seq = TSNPE(task.prior, task.simulator, n_support=cfg["n_support"], **flow)
    post = seq.run(x_o, num_simulations=cfg["seq_sims"], rounds=cfg["rounds"], rng=rng, **fit)
    draws = post.sample(n_post, x_o, rng=rng)
    acc = ", ".join(f"{r['acceptance']:.3f}" for r in seq.history_["rounds"])
    score("TSNPE", draws, cfg["seq_sims"], time.perf_counter() - t0, None,
          f"{cfg['rounds']} rounds for this x_o, retrained from scratch; truncation acceptance "
          f"per round {acc} (SBI.26)")

    t0 = time.perf_counter()
    seq = SNLE(task.prior, task.simulator, n_chains=cfg["chains"], n_warmup=cfg["warmup"],
               **flow)
    post = seq.run(x_o, num_simulations=cfg["seq_sims"], rounds=cfg["rounds"], rng=rng, **fit)
    draws = post.sample(n_post, x_o, rng=rng)
    rhats = ", ".join(f"{r['rhat']:.2f}" for r in seq.history_["rounds"][1:])
    score("SNLE", draws, cfg["seq_sims"], time.perf_counter() - t0,
          _mcmc_checks(report, f"{task.name}, SNLE", post),
          f"{cfg['rounds']} warm-started rounds for this x_o (SBI.28a), proposals from the MCMC "
          f"posterior (SBI.28), proposal R-hat per round {rhats}")
    return rows
