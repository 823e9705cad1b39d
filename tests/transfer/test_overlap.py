"""The overlap maths of partial weight copies."""

import numpy as np
import pytest

from kopt.transfer.overlap import copy_aligned
from kopt.transfer.overlap import copy_overlap
from kopt.transfer.overlap import overlap_size
from kopt.transfer.overlap import overlap_slices


def test_each_axis_starts_at_zero_unless_centred():
    source = np.arange(24.0).reshape(2, 3, 4)
    result = copy_overlap(source, np.full((3, 2, 4), -1.0))
    np.testing.assert_array_equal(result[:2], source[:, :2])
    assert (result[2] == -1).all()
    window = copy_overlap(np.ones((3, 3, 1, 1)), np.zeros((5, 5, 1, 1)), centred_axes=(0, 1))
    assert window[..., 0, 0].sum() == 9 and window[1:4, 1:4].all() and window[0].sum() == 0


def test_a_larger_source_gives_its_centre_on_a_centred_axis():
    assert overlap_slices((5, 2), (3, 4), centred_axes=(-2,)) == (
        (slice(1, 4), slice(0, 2)),
        (slice(0, 3), slice(0, 2)),
    )
    assert overlap_size((5, 2), (3, 4)) == 6


def test_the_target_keeps_its_dtype_and_is_not_changed():
    target = np.zeros((2,), np.float16)
    result = copy_overlap(np.array([1.5, 2.5, 3.5]), target)
    assert result.dtype == np.float16 and result.tolist() == [1.5, 2.5] and target.tolist() == [0, 0]


@pytest.mark.parametrize(
    "source, target, axes, expected",
    [((2, 3), (2,), (), "same rank"), ((2, 3), (2, 3), (2,), "centred_axes must be axes of a rank-2")],
)
def test_bad_shapes_and_axes_are_refused(source, target, axes, expected):
    with pytest.raises(ValueError, match=expected):
        overlap_slices(source, target, centred_axes=axes)


def test_gates_overlap_gate_by_gate():
    source = np.arange(8.0).reshape(1, 8)  # 2 gates of 4 units
    value, copied, where = copy_aligned(source, np.full((1, 12), -1.0), gates=2)
    assert value[0].tolist() == [0, 1, 2, 3, -1, -1, 4, 5, 6, 7, -1, -1]
    assert copied == 8 and where == "target[0:1, 0:4 of each of 2 gates]"
    smaller, copied, _ = copy_aligned(source, np.zeros((1, 4)), gates=2)
    assert smaller[0].tolist() == [0, 1, 4, 5] and copied == 4


def test_matched_rows_take_their_source_row_and_unmatched_ones_keep_the_target():
    source = np.arange(6.0).reshape(3, 2)
    value, copied, where = copy_aligned(source, np.full((4, 3), -1.0), rows=(-2, np.array([2, -1, 0, 1])))
    assert value.tolist() == [[4, 5, -1], [-1, -1, -1], [0, 1, -1], [2, 3, -1]]
    assert copied == 6 and where == "target[3 of 4 matched by channel, 0:2]"
    _, _, prefix = copy_aligned(source, np.zeros((4, 2)), rows=(0, np.array([0, 1, 2, -1])))
    assert prefix == "target[0:3, 0:2]"
