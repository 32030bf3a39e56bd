"""The tests that train models for more than ~1 s, marked ``slow`` in one place (tests/conftest.py
applies the marker at collection). ``python -m pytest -m "not slow"`` is the fast subset (under a
minute on 2 cores); ``python -m pytest`` runs everything, as CI does.

Patterns are fnmatch patterns on pytest node ids. tests/test_contracts.py checks that each one
still matches a collected test, so a renamed test cannot silently leave the slow set.
"""
from __future__ import annotations

from fnmatch import fnmatch

SLOW = (
    # NPE and NLE trained on gaussian_linear (the module fixture ``trained``), then SBC, MCMC
    "tests/sbi/test_npe_nle.py::test_npe_recovers_the_analytic_posterior",
    "tests/sbi/test_npe_nle.py::test_npe_sbc_ranks_are_uniform",
    "tests/sbi/test_npe_nle.py::test_nle_slice_recovers_the_analytic_posterior",
    "tests/sbi/test_npe_nle.py::test_nle_gradient_and_hmc",
    "tests/sbi/test_npe_nle.py::test_save_and_load",
    "tests/sbi/test_npe_nle.py::test_batched_posteriors",
    "tests/sbi/test_cosmology.py::test_gaussian_likelihood_mcmc_recovers_theta",
    # helper abcdask: NPE trained from shards; a dask LocalCluster's start-up; C2ST checks of
    # the new tasks' reference posteriors
    "tests/sbi/test_shards.py::test_npe_trains_on_shards",
    "tests/sbi/test_shards.py::test_dask_local_cluster_is_bit_identical",
    "tests/sbi/test_tasks_more.py::test_slcp_reference_against_prior_rejection",
    "tests/sbi/test_tasks_more.py::test_gaussian_linear_uniform_reference",
    # tour sections in --quick mode: each trains its models and draws its figures
    "tests/models/test_*.py::test_*tour_section_quick*",
    "tests/data/test_data_tour.py::test_section_quick*",
    "tests/sbi/test_tour_sbi.py::test_section_builds*",
    "tests/flows/test_tour_flows_toy.py::test_flows_toy_section_quick",
    "tests/flows/test_digits_demo.py::test_tour_section_quick*",
    "tests/flows/test_digits_demo.py::test_trained_flow_beats_untrained_on_held_out_data",
    "tests/test_tour.py::test_gradchecks_section_quick",
    "tests/test_cli.py::test_tour_quick_gradchecks_writes_the_report",
    "tests/samplers/test_tour_score.py::test_score*_section_quick",
    # score-based models: an NCSN trained on the lecture's toy, sampled by annealed Langevin
    "tests/models/test_ncsn_fit.py::test_learned_ncsn_recovers_the_mode_weights",
    # classifiers and encoders trained to a statistical answer
    "tests/models/test_vae.py::test_linear_vae_recovers_ppca",
    "tests/models/test_gan.py::test_eight_gaussians_modes_captured",
    "tests/metrics/test_c2st.py::test_agrees_with_scikit_learn_classifier",
    "tests/models/test_contrastive.py::test_simclr_training_lowers_the_loss_on_digits",
)


def mark_slow(items, marker) -> set[str]:
    """Add ``marker`` to the items matching SLOW; return the patterns that matched nothing."""
    unmatched = set(SLOW)
    for item in items:
        for pattern in SLOW:
            if fnmatch(item.nodeid, pattern):
                item.add_marker(marker)
                unmatched.discard(pattern)
    return unmatched
