"""Rank fusion: reciprocal rank fusion and the convex combination of normalised scores, by hand-computed values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from rag.retrieve.fusion import convex, normalise, rrf

# Two retrievers' lists, best first. Scores are on unrelated scales on purpose.
LEXICAL = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
DENSE = [("c", 0.9), ("d", 0.5), ("a", 0.1)]


def as_dict(fused: list[tuple[str, float]]) -> dict[str, float]:
    return dict(fused)


# --- reciprocal rank fusion -------------------------------------------------------------


def test_rrf_matches_the_formula() -> None:
    fused = rrf([LEXICAL, DENSE], k=60)
    expected = {
        "a": 1 / (60 + 1) + 1 / (60 + 3),  # rank 1 in LEXICAL, rank 3 in DENSE
        "b": 1 / (60 + 2),  # rank 2 in LEXICAL only
        "c": 1 / (60 + 3) + 1 / (60 + 1),  # rank 3 in LEXICAL, rank 1 in DENSE
        "d": 1 / (60 + 2),  # rank 2 in DENSE only
    }
    assert as_dict(fused) == pytest.approx(expected, rel=1e-12)
    assert len(fused) == 4
    scores = [score for _, score in fused]
    assert scores == sorted(scores, reverse=True)


def test_rrf_k_and_weights_follow_the_formula() -> None:
    fused = as_dict(rrf([LEXICAL, DENSE], k=1, weights=[2.0, 0.5]))
    assert fused == pytest.approx(
        {
            "a": 2.0 / (1 + 1) + 0.5 / (1 + 3),
            "b": 2.0 / (1 + 2),
            "c": 2.0 / (1 + 3) + 0.5 / (1 + 1),
            "d": 0.5 / (1 + 2),
        },
        rel=1e-12,
    )
    # a = 1.125, c = 0.75, b = 0.667, d = 0.167
    assert [item for item, _ in rrf([LEXICAL, DENSE], k=1, weights=[2.0, 0.5])] == ["a", "c", "b", "d"]


def test_rrf_ignores_score_scales() -> None:
    rescaled = [[(item, score * 1000 - 7) for item, score in LEXICAL], [(item, -score) for item, score in DENSE]]
    assert rrf(rescaled) == rrf([LEXICAL, DENSE])


def test_rrf_ties_are_broken_by_id_whatever_the_input_order() -> None:
    # a and c tie exactly (1/61 + 1/63), as do b and d (1/62): ids decide, ascending.
    assert [item for item, _ in rrf([LEXICAL, DENSE])] == ["a", "c", "b", "d"]
    assert [item for item, _ in rrf([DENSE, LEXICAL])] == ["a", "c", "b", "d"]
    mirrored = [[("z", 1.0), ("y", 0.5)], [("y", 1.0), ("z", 0.5)]]
    assert [item for item, _ in rrf(mirrored)] == ["y", "z"]
    assert [item for item, _ in rrf(mirrored[::-1])] == ["y", "z"]


def test_rrf_of_nothing_is_empty() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []


# --- normalisation ----------------------------------------------------------------------


def test_minmax_maps_onto_zero_one() -> None:
    assert normalise(np.array([2.0, 4.0, 6.0]), "minmax").tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert normalise(np.array([-3.0, 1.0]), "minmax").tolist() == pytest.approx([0.0, 1.0])


def test_zscore_has_zero_mean_and_unit_spread() -> None:
    values = normalise(np.array([10.0, 6.0, 2.0]), "zscore")
    # mean 6, population std sqrt(32/3): z = +-4 / sqrt(32/3) = +-sqrt(1.5)
    assert values.tolist() == pytest.approx([math.sqrt(1.5), 0.0, -math.sqrt(1.5)])
    assert values.mean() == pytest.approx(0.0, abs=1e-12) and values.std() == pytest.approx(1.0)


def test_theoretical_divides_by_the_best_score_from_the_floor() -> None:
    assert normalise(np.array([8.0, 4.0, 2.0]), "theoretical").tolist() == pytest.approx([1.0, 0.5, 0.25])
    # a flat list stays flat: cosines 0.50..0.40 keep their ratio instead of being stretched onto [0, 1]
    flat = normalise(np.array([0.5, 0.45, 0.4]), "theoretical")
    assert flat.tolist() == pytest.approx([1.0, 0.9, 0.8])
    assert normalise(np.array([0.5, 0.45, 0.4]), "minmax").tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert normalise(np.array([0.2, -0.1]), "theoretical").tolist() == pytest.approx([1.0, -0.5])  # below the floor: below 0


def test_theoretical_list_without_evidence_maps_to_zeros() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalise(np.array([0.0, 0.0]), "theoretical").tolist() == [0.0, 0.0]
        assert normalise(np.array([-0.2, -0.3]), "theoretical").tolist() == [0.0, 0.0]
        assert normalise(np.array([3.0, 3.0]), "theoretical").tolist() == [1.0, 1.0]  # constant but above the floor: all best


@pytest.mark.parametrize("method", ["theoretical", "minmax", "zscore"])
def test_constant_and_empty_scores_do_not_divide_by_zero(method: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 would raise a RuntimeWarning here
        constant = normalise(np.array([3.0, 3.0, 3.0]), method)
        single = normalise(np.array([0.42]), method)
        empty = normalise(np.array([], dtype=np.float64), method)
        fused = convex([[("a", 2.0), ("b", 2.0)], [("a", 0.7), ("c", 0.1)]], [0.5, 0.5], method)
    assert constant.tolist() == [1.0, 1.0, 1.0]
    assert single.tolist() == [1.0]
    assert empty.size == 0
    assert all(math.isfinite(score) for _, score in fused)
    assert {item for item, _ in fused} == {"a", "b", "c"}


# --- convex combination -----------------------------------------------------------------


def test_convex_weight_one_reproduces_the_first_list() -> None:
    first = [("p", 0.91), ("q", 0.55), ("r", 0.54), ("s", 0.02)]
    second = [("s", 30.0), ("r", 20.0), ("t", 10.0), ("q", 1.0)]
    for method in ("theoretical", "minmax", "zscore"):
        fused = [item for item, _ in convex([first, second], [1.0, 0.0], method)]
        assert [item for item in fused if item in dict(first)] == ["p", "q", "r", "s"]
        fused = [item for item, _ in convex([first, second], [0.0, 1.0], method)]
        assert [item for item in fused if item in dict(second)] == ["s", "r", "t", "q"]


def test_convex_minmax_values_and_missing_items_get_the_list_minimum() -> None:
    lexical = [("a", 10.0), ("b", 6.0), ("c", 2.0)]  # minmax: a 1, b 0.5, c 0
    dense = [("b", 0.8), ("d", 0.6), ("e", 0.4)]  # minmax: b 1, d 0.5, e 0
    fused = convex([lexical, dense], [0.7, 0.3], "minmax")
    assert as_dict(fused) == pytest.approx(
        {
            "a": 0.7 * 1.0 + 0.3 * 0.0,  # missing from dense: dense's minimum (0)
            "b": 0.7 * 0.5 + 0.3 * 1.0,
            "c": 0.7 * 0.0 + 0.3 * 0.0,
            "d": 0.7 * 0.0 + 0.3 * 0.5,  # missing from lexical: lexical's minimum (0)
            "e": 0.7 * 0.0 + 0.3 * 0.0,
        }
    )
    assert [item for item, _ in fused] == ["a", "b", "d", "c", "e"]  # c and e tie at 0: by id


def test_convex_zscore_missing_items_get_the_lists_lowest_z() -> None:
    lexical = [("a", 10.0), ("b", 6.0), ("c", 2.0)]  # z: +sqrt(1.5), 0, -sqrt(1.5)
    dense = [("b", 1.0), ("d", 0.5)]  # z: +1, -1
    root = math.sqrt(1.5)
    fused = convex([lexical, dense], [0.5, 0.5], "zscore")
    assert as_dict(fused) == pytest.approx(
        {
            "a": 0.5 * root + 0.5 * -1.0,  # missing from dense -> dense's lowest z (-1), not 0
            "b": 0.5 * 0.0 + 0.5 * 1.0,
            "c": 0.5 * -root + 0.5 * -1.0,
            "d": 0.5 * -root + 0.5 * -1.0,  # missing from lexical -> lexical's lowest z
        }
    )
    assert [item for item, _ in fused] == ["b", "a", "c", "d"]


def test_convex_with_one_empty_list_uses_the_other() -> None:
    dense = [("x", 0.9), ("y", 0.3)]
    fused = convex([dense, []], [0.5, 0.5], "minmax")
    assert fused == [("x", pytest.approx(0.5)), ("y", pytest.approx(0.0))]
    assert convex([dense, []], [0.5, 0.5], "theoretical") == [("x", pytest.approx(0.5)), ("y", pytest.approx(0.5 / 3))]
    assert convex([[], dense], [0.5, 0.5]) == convex([dense, []], [0.5, 0.5])
    assert convex([[], []], [0.5, 0.5]) == []


def test_convex_theoretical_values_and_missing_items_get_the_list_minimum() -> None:
    lexical = [("a", 10.0), ("b", 5.0), ("c", 2.0)]  # / 10: a 1, b 0.5, c 0.2
    dense = [("b", 0.8), ("d", 0.6), ("e", 0.4)]  # / 0.8: b 1, d 0.75, e 0.5
    fused = convex([lexical, dense], [0.5, 0.5], "theoretical")
    assert as_dict(fused) == pytest.approx(
        {
            "a": 0.5 * 1.0 + 0.5 * 0.5,  # missing from dense: dense's lowest normalised value (e, 0.5)
            "b": 0.5 * 0.5 + 0.5 * 1.0,
            "c": 0.5 * 0.2 + 0.5 * 0.5,
            "d": 0.5 * 0.2 + 0.5 * 0.75,  # missing from lexical: lexical's lowest (c, 0.2)
            "e": 0.5 * 0.2 + 0.5 * 0.5,
        }
    )
    assert [item for item, _ in fused] == ["a", "b", "d", "c", "e"]  # a and b tie at 0.75: by id; c and e tie too


def test_convex_theoretical_lets_a_flat_list_only_break_near_ties() -> None:
    """The failure the default avoids: min-max stretches a flat dense list to [0, 1] and lets its arbitrary
    top hit beat the lexical list's clear winner; measured from the floor, the flat list barely moves."""
    lexical = [("right", 20.0), ("other", 6.0), ("third", 5.0)]
    flat_dense = [("other", 0.42), ("third", 0.41), ("right", 0.40)]
    assert [item for item, _ in convex([flat_dense, lexical], [0.5, 0.5], "minmax")][0] == "other"
    assert [item for item, _ in convex([flat_dense, lexical], [0.5, 0.5], "theoretical")][0] == "right"


def test_fusion_ties_are_broken_by_id_for_every_method() -> None:
    mirrored = [[("z", 1.0), ("y", 0.5)], [("y", 1.0), ("z", 0.5)]]
    for method in ("theoretical", "minmax", "zscore"):
        assert [item for item, _ in convex(mirrored, [0.5, 0.5], method)] == ["y", "z"]
        assert [item for item, _ in convex(mirrored[::-1], [0.5, 0.5], method)] == ["y", "z"]
