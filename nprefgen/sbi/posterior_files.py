"""Posteriors on disk: one ``.npz`` per posterior, written atomically (a failed save leaves an
existing file byte-identical), loaded all or nothing, never unpickled.

* A :class:`nprefgen.sbi.posterior.DirectPosterior` (NPE, SBI.12) is the file of its conditional
  flow q(theta | x) (weights, z-scoring buffers, configuration; :meth:`nprefgen.flows.Flow.save`):
  :func:`load_posterior_flow`.
* A :class:`nprefgen.sbi.mcmc_posterior.MCMCPosterior` (SBI.13) is the file of its likelihood term
  with the sampler settings as one JSON entry under ``MCMC_KEY``: :func:`save_mcmc_posterior`,
  :func:`load_mcmc_posterior`. The term must be an instance of a class registered with
  :func:`register_likelihood`: it has ``save(path, meta=...)`` (one ``.npz``, written
  atomically, carrying ``meta``) and a classmethod ``load(path)`` (validated all or nothing), and
  attributes ``dim_theta``/``dim_x``; ``grad`` if it has one (SBI.13a, for HMC). NLE's
  :class:`nprefgen.sbi.nle.FlowLikelihood` is registered.

The entry ``MCMC_KEY`` tells the two kinds apart: each loader refuses the other kind's file with
a ValueError naming ``path`` and the loader to use. The prior is code: it is passed again to
``load`` and checked against the file's dimensions.
"""
from __future__ import annotations

import json
import os

import numpy as np

from nprefgen.nn.io import read_json_object

MCMC_KEY = "__meta__.mcmc_posterior"      # the settings of a saved MCMCPosterior (JSON)
SETTINGS_KEYS = ("method", "n_chains", "n_warmup", "thin", "init", "n_init", "jump_every",
                 "n_jump_proposals", "rhat_max", "ess_min")   # MCMCPosterior's keyword settings

_LIKELIHOODS: dict = {}


def register_likelihood(cls):
    """Class decorator: lets :meth:`MCMCPosterior.load` rebuild a likelihood term of this class
    by name (it needs ``save(path, meta=...)``, a classmethod ``load(path)`` and ``dim_theta``,
    ``dim_x``; see the module docstring)."""
    for name in ("save", "load"):
        if not callable(getattr(cls, name, None)):
            raise ValueError(f"cls: expected a class with save(path, meta=...) and load(path), "
                             f"got {cls.__name__} without {name}")
    _LIKELIHOODS[cls.__name__] = cls
    return cls


# -- the NPE posterior (SBI.12): its flow's file ---------------------------------------------
def load_posterior_flow(path, prior):
    """The conditional flow q(theta | x) of a DirectPosterior file, for a checked ``prior``.

    A file that is not a conditional flow over the prior's parameters (e.g. an NLE posterior's
    likelihood, saved by :meth:`MCMCPosterior.save`) raises ValueError naming ``path`` (corrupt
    files too, see :func:`nprefgen.flows.load_flow`)."""
    from nprefgen.flows import load_flow
    from nprefgen.nn.io import read_npz

    if MCMC_KEY in read_npz(path, keys=[MCMC_KEY]):
        raise ValueError(f"path: {os.fspath(path)!r} holds an MCMC posterior (a likelihood "
                         f"flow); load it with MCMCPosterior.load")
    flow = load_flow(path)
    dim = prior.dim
    if not flow.context_dim or flow.dim != dim:
        raise ValueError(f"path: {str(path)!r} holds a flow over {flow.dim} parameters with "
                         f"context size {flow.context_dim}; a posterior for this prior needs "
                         f"a conditional flow over {dim} parameters")
    return flow


# -- the MCMC posterior (SBI.13): its likelihood term's file plus the settings -------------------
def save_mcmc_posterior(posterior, path) -> None:
    """Save an MCMCPosterior's likelihood term and sampler settings to one ``.npz``, atomically;
    needs a registered term (NLE's FlowLikelihood: the flow's weights, buffers and
    configuration) and JSON-serialisable finite settings."""
    term = posterior.log_likelihood
    if _LIKELIHOODS.get(type(term).__name__) is not type(term):
        raise ValueError(f"log_likelihood: a {type(term).__name__} cannot be saved; only "
                         f"registered likelihood terms ({sorted(_LIKELIHOODS)}) can (see "
                         f"register_likelihood)")
    config = {"likelihood": type(term).__name__, "dim_theta": posterior.dim_theta,
              "dim_x": posterior.dim_x, "hmc_gradient": posterior.grad_log_likelihood is not None,
              **posterior.settings()}
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"settings: expected JSON-serialisable finite settings, got "
                         f"{config!r}"[:400]) from exc
    term.save(path, meta={MCMC_KEY[len("__meta__."):]: np.array(text)})


def load_mcmc_posterior(cls, path, prior):
    """Rebuild ``cls`` (MCMCPosterior) from a file written by :func:`save_mcmc_posterior`, for a
    checked ``prior``.

    All or nothing: the settings, the term's file (e.g. the flow's weights, buffers and
    configuration) and the dimensions against ``prior`` are validated before the posterior is
    built; a bad file raises ValueError naming ``path``. Never unpickles."""
    from nprefgen.nn.io import read_npz

    stored = read_npz(path, keys=[MCMC_KEY])          # checks path first
    where = f"path: {os.fspath(path)!r}"
    if MCMC_KEY not in stored:
        raise ValueError(f"{where} holds no MCMC posterior settings (an NPE posterior? load "
                         f"it with DirectPosterior.load)")
    config = _parse_settings(path, stored[MCMC_KEY])
    term_cls = _LIKELIHOODS.get(config["likelihood"])
    if term_cls is None:
        raise ValueError(f"{where}: likelihood {config['likelihood']!r} is not a registered "
                         f"term ({sorted(_LIKELIHOODS)})")
    if config["dim_theta"] != prior.dim:
        raise ValueError(f"{where} holds a posterior over {config['dim_theta']} parameters; "
                         f"the prior has {prior.dim}")
    term = term_cls.load(path)
    if (term.dim_theta, term.dim_x) != (config["dim_theta"], config["dim_x"]):
        raise ValueError(f"{where}: its likelihood has (dim_theta, dim_x) = "
                         f"({term.dim_theta}, {term.dim_x}), its settings say "
                         f"({config['dim_theta']}, {config['dim_x']})")
    grad = getattr(term, "grad", None) if config["hmc_gradient"] else None
    settings = {k: config[k] for k in SETTINGS_KEYS}
    try:
        return cls(prior, term, config["dim_x"], grad_log_likelihood=grad, **settings)
    except ValueError as exc:
        raise ValueError(f"{where}: invalid MCMC settings: {exc}") from exc


def _parse_settings(path, value) -> dict:
    """The stored settings: a JSON object as a 0-d string array, with every key load needs."""
    where = f"path: {os.fspath(path)!r}: mcmc_posterior"
    config = read_json_object(value, where)
    keys = ("likelihood", "dim_theta", "dim_x", "hmc_gradient") + SETTINGS_KEYS
    if not isinstance(config, dict) or any(k not in config for k in keys):
        raise ValueError(f"{where}: expected a JSON object with keys {list(keys)}, got "
                         f"{str(config)[:200]}")
    for k in ("dim_theta", "dim_x"):
        if isinstance(config[k], bool) or not isinstance(config[k], int) or config[k] < 1:
            raise ValueError(f"{where}: {k}: expected a positive int, got {config[k]!r}")
    if not isinstance(config["likelihood"], str) or not isinstance(config["hmc_gradient"], bool):
        raise ValueError(f"{where}: expected a str likelihood and a bool hmc_gradient, got "
                         f"{config['likelihood']!r}, {config['hmc_gradient']!r}")
    return config
