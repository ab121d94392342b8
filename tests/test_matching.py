"""Hungarian algorithm: scipy's and brute force's optimum, scipy's types and errors, on seeded matrices."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment as scipy_assignment

from course_lib.matching import linear_sum_assignment

INFEASIBLE = "cost matrix is infeasible"


def random_cost(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    """A seeded cost matrix of one kind: many ties, continuous, large or negative values."""
    if kind == "ties":
        return rng.integers(0, 4, shape).astype(np.float64)
    if kind == "floats":
        return rng.random(shape)
    if kind == "large":
        return rng.integers(0, 10, shape) * 1e9 + rng.integers(0, 3, shape)
    assert kind == "negative"
    return rng.normal(size=shape) * 100 - 50


def forbid(rng: np.random.Generator, cost: np.ndarray, share: float, value: float = np.inf) -> np.ndarray:
    """A copy of ``cost`` with a random ``share`` of its entries set to ``value`` (+inf: forbidden)."""
    cost = cost.copy()
    cost[rng.random(cost.shape) < share] = value
    return cost


def total_or_error(solver, cost, maximize=False):
    """The total cost of ``solver``'s assignment, or the start of its ValueError's message."""
    try:
        rows, cols = solver(cost, maximize=maximize)
    except ValueError as error:
        return str(error)[: len(INFEASIBLE)]
    return np.asarray(cost)[np.asarray(rows), np.asarray(cols)].sum()


def check_assignment(rows, cols, shape):
    """A valid answer: min(n, m) pairs, no row or column twice, rows ascending, int64 numpy."""
    assert isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray)
    assert rows.dtype == np.int64 and cols.dtype == np.int64
    assert len(rows) == len(cols) == min(shape)
    assert np.all(np.diff(rows) > 0) and len(set(cols.tolist())) == len(cols)
    assert np.all((0 <= rows) & (rows < shape[0])) and np.all((0 <= cols) & (cols < shape[1]))


def brute_force_total(cost: np.ndarray) -> float:
    """The least total over every assignment (inf if all use a forbidden pair); n, m <= 6."""
    if cost.shape[0] > cost.shape[1]:
        cost = cost.T
    n, m = cost.shape
    return min(cost[np.arange(n), list(cols)].sum() for cols in itertools.permutations(range(m), n))


def test_a_hand_computed_case():
    # scipy's documentation example. The 6 permutations (column of rows 0, 1, 2) and their totals:
    # 012: 6, 021: 11, 102: 5, 120: 9, 201: 7, 210: 6. Least 5, greatest 11, each unique.
    cost = [[4, 1, 3], [2, 0, 5], [3, 2, 2]]
    rows, cols = linear_sum_assignment(cost)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]
    rows, cols = linear_sum_assignment(cost, maximize=True)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [0, 2, 1]
    # Rectangular: two rows, three columns; row 1 takes column 2, row 0 the cheaper of the rest.
    rows, cols = linear_sum_assignment(np.array([[1.0, 2.0, 9.0], [1.0, 8.0, 0.5]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 2]


def test_the_greedy_choice_is_not_the_optimum():
    # Greedy takes 0 at (0, 0) and must then pay 100: 100 in all; the optimum is 1 + 1 = 2.
    rows, cols = linear_sum_assignment(np.array([[0.0, 1.0], [1.0, 100.0]]))
    assert cols.tolist() == [1, 0]


@pytest.mark.parametrize("kind", ["ties", "floats", "large", "negative"])
def test_same_total_as_scipy_on_random_matrices(kind):
    rng = np.random.default_rng(0)
    for n in range(1, 31):
        for m in (n, int(rng.integers(1, 31))):
            for shape in ((n, m), (m, n)):  # both orientations
                cost = random_cost(rng, shape, kind)
                rows, cols = linear_sum_assignment(cost)
                check_assignment(rows, cols, shape)
                expected = cost[scipy_assignment(cost)].sum()
                np.testing.assert_allclose(cost[rows, cols].sum(), expected, rtol=1e-12, atol=1e-9)


def test_same_assignment_as_scipy_where_the_optimum_is_unique():
    # Continuous random costs: two assignments tie with probability 0.
    rng = np.random.default_rng(1)
    for n in range(1, 31):
        for shape in ((n, n), (n, int(rng.integers(1, 31))), (int(rng.integers(1, 31)), n)):
            cost = rng.random(shape)
            for maximize in (False, True):
                rows, cols = linear_sum_assignment(cost, maximize=maximize)
                expected_rows, expected_cols = scipy_assignment(cost, maximize=maximize)
                np.testing.assert_array_equal(rows, expected_rows)
                np.testing.assert_array_equal(cols, expected_cols)


@pytest.mark.parametrize("kind", ["ties", "floats", "negative"])
def test_maximize_has_the_same_total_as_scipy(kind):
    rng = np.random.default_rng(2)
    for _ in range(100):
        shape = tuple(int(size) for size in rng.integers(1, 16, 2))
        cost = random_cost(rng, shape, kind)
        total = total_or_error(linear_sum_assignment, cost, maximize=True)
        np.testing.assert_allclose(total, total_or_error(scipy_assignment, cost, maximize=True), rtol=1e-12)
        # Maximizing C is minimizing -C.
        np.testing.assert_allclose(total, -total_or_error(linear_sum_assignment, -cost), rtol=1e-12)


@pytest.mark.parametrize("share", [0.1, 0.4, 0.7])
def test_forbidden_entries_feasible_or_not_as_scipy(share):
    rng = np.random.default_rng(3)
    outcomes = set()
    for _ in range(150):
        shape = tuple(int(size) for size in rng.integers(1, 13, 2))
        cost = forbid(rng, random_cost(rng, shape, "ties"), share)
        expected = total_or_error(scipy_assignment, cost)
        assert total_or_error(linear_sum_assignment, cost) == pytest.approx(expected)
        outcomes.add(isinstance(expected, str))
        # maximize=True forbids -inf instead.
        flipped = -cost
        expected = total_or_error(scipy_assignment, flipped, maximize=True)
        assert total_or_error(linear_sum_assignment, flipped, maximize=True) == pytest.approx(expected)
    if share == 0.4:
        assert outcomes == {True, False}  # both feasible and infeasible matrices were met


def test_infeasible_matrices_raise_scipys_error():
    inf = np.inf
    with pytest.raises(ValueError, match=INFEASIBLE):
        linear_sum_assignment([[1.0, inf], [3.0, inf]])  # column 1 is all forbidden
    with pytest.raises(ValueError, match=INFEASIBLE):
        linear_sum_assignment(np.full((2, 3), inf))
    with pytest.raises(ValueError, match=INFEASIBLE):  # rows 0 and 1 both need column 0
        linear_sum_assignment(np.array([[1.0, inf, inf], [2.0, inf, inf], [1.0, 1.0, 1.0]]).T)
    # Only one row or column need be assigned: a single finite entry is enough.
    assert linear_sum_assignment([[inf, 1.0, inf]])[1].tolist() == [1]
    assert linear_sum_assignment([[inf], [1.0], [inf]])[0].tolist() == [1]
    # The forbidden pair is avoided even when it would be cheapest at any finite price.
    assert linear_sum_assignment([[1.0, inf], [inf, 2.0]])[1].tolist() == [0, 1]


def test_brute_force_optimum_on_small_matrices():
    rng = np.random.default_rng(4)
    for n, m in itertools.product(range(1, 7), repeat=2):
        for kind, share in (("ties", 0.0), ("negative", 0.0), ("ties", 0.3), ("floats", 0.5)):
            cost = forbid(rng, random_cost(rng, (n, m), kind), share)
            best = brute_force_total(cost)
            if best == np.inf:
                with pytest.raises(ValueError, match=INFEASIBLE):
                    linear_sum_assignment(cost)
                continue
            rows, cols = linear_sum_assignment(cost)
            check_assignment(rows, cols, (n, m))
            assert cost[rows, cols].sum() == pytest.approx(best, rel=1e-12, abs=1e-9)


def test_invariants_transpose_permutation_and_row_shift():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n, m = (int(size) for size in rng.integers(1, 12, 2))
        cost = random_cost(rng, (n, m), "ties")
        total = total_or_error(linear_sum_assignment, cost)
        assert total_or_error(linear_sum_assignment, cost.T) == total
        shuffled = cost[rng.permutation(n)][:, rng.permutation(m)]
        assert total_or_error(linear_sum_assignment, shuffled) == total
        if n <= m:  # every row is assigned: adding c_i to row i adds sum(c) to every assignment
            shift = rng.integers(-5, 6, (n, 1)).astype(np.float64)
            assert total_or_error(linear_sum_assignment, cost + shift) == total + shift.sum()


def test_degenerate_matrices_all_equal_and_one_entry():
    for shape in ((1, 1), (4, 4), (3, 7), (7, 3)):
        rows, cols = linear_sum_assignment(np.zeros(shape))
        check_assignment(rows, cols, shape)
    assert [array.tolist() for array in linear_sum_assignment([[-3.5]])] == [[0], [0]]
    # Identical rows: any permutation is optimal, each column still used once.
    rows, cols = linear_sum_assignment(np.tile(np.arange(5.0), (5, 1)))
    check_assignment(rows, cols, (5, 5))


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_empty_matrices_return_empty_int64(shape):
    rows, cols = linear_sum_assignment(np.zeros(shape))
    check_assignment(rows, cols, shape)
    rows, cols = linear_sum_assignment(torch.zeros(shape))
    assert rows.dtype == cols.dtype == torch.int64 and rows.shape == cols.shape == (0,)
    # NaN in an empty matrix is no entry at all, as in scipy.
    assert len(linear_sum_assignment(np.full(shape, np.nan))[0]) == 0


def test_types_follow_the_input():
    cost = np.random.default_rng(6).random((4, 6))
    expected = linear_sum_assignment(cost)
    check_assignment(*linear_sum_assignment(cost.tolist()), cost.shape)  # nested lists -> numpy
    check_assignment(*linear_sum_assignment(cost.astype(np.float32)), cost.shape)
    tensor = torch.tensor(cost, requires_grad=True)  # DETR's cost is a tensor, possibly in the graph
    rows, cols = linear_sum_assignment(tensor)
    assert isinstance(rows, torch.Tensor) and rows.dtype == cols.dtype == torch.int64
    assert rows.device == tensor.device
    assert rows.tolist() == expected[0].tolist() and cols.tolist() == expected[1].tolist()
    # Integer and bool matrices are accepted (as in scipy) and computed in float64.
    for values in (np.array([[1, 0], [0, 1]]), np.array([[True, False], [False, True]])):
        assert linear_sum_assignment(values)[1].tolist() == scipy_assignment(values)[1].tolist()
        assert linear_sum_assignment(torch.from_numpy(values))[1].tolist() == [1, 0]


def test_the_input_is_not_modified():
    cost = np.random.default_rng(7).random((5, 5))
    tensor = torch.from_numpy(cost.copy())  # float64: shares memory with what the solver reads
    original = cost.copy()
    linear_sum_assignment(cost, maximize=True)
    linear_sum_assignment(tensor, maximize=True)
    np.testing.assert_array_equal(cost, original)
    np.testing.assert_array_equal(tensor.numpy(), original)


def test_bad_input_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"expected a 2-D matrix \(n, m\), got shape \(3,\)"):
        linear_sum_assignment(np.zeros(3))
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        linear_sum_assignment(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        linear_sum_assignment(1.0)
    with pytest.raises(ValueError, match="ragged"):
        linear_sum_assignment([[1.0, 2.0], [3.0]])
    forbidden = r"expected numbers or \{}inf \(a forbidden pair\), got {} at \({}\)"
    with pytest.raises(ValueError, match=forbidden.format("+", "nan", "1, 0")):
        linear_sum_assignment([[1.0, 2.0], [np.nan, 4.0]])
    with pytest.raises(ValueError, match=forbidden.format("+", "-inf", "0, 1")):
        linear_sum_assignment(torch.tensor([[1.0, -np.inf], [3.0, 4.0]]))
    with pytest.raises(ValueError, match=forbidden.format("-", "inf", "0, 1")):
        linear_sum_assignment([[1.0, np.inf], [3.0, 4.0]], maximize=True)
    with pytest.raises(TypeError, match="expected real numbers, got dtype <U1"):
        linear_sum_assignment([["a", "b"], ["c", "d"]])
    with pytest.raises(TypeError, match="expected real numbers, got dtype complex128"):
        linear_sum_assignment(np.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="expected real numbers, got dtype torch.complex64"):
        linear_sum_assignment(torch.ones(2, 2, dtype=torch.complex64))
    with pytest.raises(TypeError, match="expected real numbers, got dtype object"):
        linear_sum_assignment([[None, 1.0]])
    with pytest.raises(TypeError, match="maximize: expected a bool, got str 'yes'"):
        linear_sum_assignment([[1.0]], maximize="yes")


def test_a_100_by_100_matrix_completes_and_matches_scipy():
    rng = np.random.default_rng(8)
    for cost in (rng.random((100, 100)), rng.integers(0, 3, (100, 100)).astype(np.float64)):
        rows, cols = linear_sum_assignment(cost)
        check_assignment(rows, cols, cost.shape)
        np.testing.assert_allclose(cost[rows, cols].sum(), cost[scipy_assignment(cost)].sum(), rtol=1e-12)
