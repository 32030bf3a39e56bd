"""The file sub-checks of the model batteries can fail: a load that returns a new object instead
of the one it was called on, and a load that assigns before it validates, are each caught and
named."""
from __future__ import annotations

import numpy as np
import pytest

from nprefgen.models.gmm import GaussianMixture
from nprefgen.testing.contracts import CHECKS, check_density_model

X2 = np.random.default_rng(0).standard_normal((40, 2))


class LoadReturnsCopy(GaussianMixture):
    """The classmethod style: load builds and returns another object."""

    def load(self, path):
        return GaussianMixture(self.n_components).load(path)


class LoadAssignsFirst(GaussianMixture):
    """Moves the means before the file is validated: a failed load changes the model."""

    def load(self, path):
        if hasattr(self, "means_"):
            self.means_ = self.means_ + 1.0
        return super().load(path)


def _failed(err) -> set[str]:
    return {line.strip().split(":")[0] for line in str(err.value).splitlines()[1:]}


def test_the_file_checks_pass_on_a_conforming_model():
    assert check_density_model(lambda: GaussianMixture(2), X2) == list(CHECKS["density_model"])


def test_a_load_returning_another_object_is_caught():
    with pytest.raises(AssertionError) as err:
        check_density_model(lambda: LoadReturnsCopy(2), X2)
    assert _failed(err) == {"save_load_round_trip"}


def test_a_load_that_assigns_before_validating_is_caught():
    with pytest.raises(AssertionError) as err:
        check_density_model(lambda: LoadAssignsFirst(2), X2)
    assert _failed(err) == {"load_bad_file_leaves_model_unchanged"}
