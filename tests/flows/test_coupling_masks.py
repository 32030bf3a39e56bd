"""coupling_masks: the mask schedule shared by the RealNVP and spline-flow builders."""
import numpy as np
import pytest

from nprefgen.flows import coupling_masks


@pytest.mark.parametrize("kind,shape", [("alternating", None), ("half", None), ("checkerboard", (2, 3))])
def test_consecutive_masks_are_complements(kind, shape):
    masks = coupling_masks(kind, 6, 4, shape)
    assert len(masks) == 4
    for a, b in zip(masks, masks[1:]):
        assert set(np.unique(a)) <= {0.0, 1.0}
        np.testing.assert_array_equal(a + b, np.ones(6))   # every coordinate transformed in turn


def test_one_dimensional_flow_conditions_on_context_only():
    assert all(np.array_equal(m, [0.0]) for m in coupling_masks("alternating", 1, 3))


def test_bad_kind_and_image_shape():
    with pytest.raises(ValueError, match="mask"):
        coupling_masks("diagonal", 4, 2)
    with pytest.raises(ValueError, match="image_shape"):
        coupling_masks("checkerboard", 6, 2, (2, 2))
