"""The Hungarian algorithm: the one-to-one assignment of rows to columns of least total cost.

DETR (Carion et al. 2020, Eq. 1) matches its Q predictions to the N objects of an image by the
permutation of least total matching cost, ``sigma_hat = argmin_sigma sum_i L_match(y_i,
y_hat_sigma(i))``, found by the Hungarian algorithm on the cost matrix ``C[i, j] = L_match(y_i,
y_hat_j)``. :func:`linear_sum_assignment` is that algorithm, with the signature and the results of
``scipy.optimize.linear_sum_assignment``, which DETR's ``models/matcher.py`` calls.

**The problem.** Given ``C`` of shape (n, m) with n <= m (else work on ``C.T``), give every row its
own column so that the sum of the chosen entries is least.

**The certificate: potentials.** Give each row a number ``u[i]`` and each column a number
``v[j] <= 0`` such that every *reduced cost* ``C[i, j] - u[i] - v[j]`` is >= 0. Then any assignment
costs at least ``sum(u) + sum(v)`` (add up ``C[i, j] >= u[i] + v[j]`` over its pairs; the unused
columns only add ``v[j] <= 0``). If the chosen pairs all have reduced cost 0 and the unused columns
have ``v[j] = 0``, the assignment costs exactly that bound, so none is cheaper (LP duality; Kuhn's
"Hungarian" method, after Egervary and Konig). The algorithm keeps such potentials while it assigns
the rows one at a time:

1. **Shortest augmenting path.** The new row ``start`` looks for a free column. Dijkstra's algorithm
   walks from it, in reduced costs, row -> column along any entry, then column -> the row that
   holds that column (reduced cost 0), until it settles a free column. Every edge it uses after the
   first is >= 0, so Dijkstra is exact.
2. **Potentials.** Every visited row and column moves by ``length - distance``: the edges of the
   path get reduced cost 0, and no reduced cost goes below 0.
3. **Augment.** Flip the path: each row on it takes the next column, ``start`` takes the first.
   One more row is assigned and the certificate still holds.

Each row runs one Dijkstra of at most n steps, each step O(m) (one numpy line over a row): O(n^2 m)
in all, O(n^3) for a square matrix. This is the shortest augmenting path form of the algorithm
(Tomizawa 1971; Edmonds & Karp 1972; Jonker & Volgenant 1987), as in Crouse 2016, "On implementing
2D rectangular assignment algorithms", which scipy implements. Munkres' 1957 version
(cover lines, star and prime zeros) is O(n^4) as usually coded. Unlike Jonker-Volgenant, there is
no initialization heuristic: row after row, so the code is only the three steps above.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def linear_sum_assignment(cost_matrix: Any, maximize: bool = False) -> tuple[Any, Any]:
    """The assignment of least (or greatest) total cost, as ``scipy.optimize.linear_sum_assignment``.

    ``min(n, m)`` pairs ``(rows[k], cols[k])``, no row and no column twice, minimizing
    ``cost_matrix[rows, cols].sum()`` (Kuhn 1955, Munkres 1957; the algorithm is in the module's
    docstring). DETR's matcher calls it once per image on ``Tensor[Q, N]``.

    Args:
        cost_matrix: ``Tensor[n, m]``, ``ndarray[n, m]`` or nested lists of real numbers (bool, int or
            float; computed in float64). ``+inf`` marks a forbidden pair (``-inf`` when ``maximize``).
        maximize: find the assignment of greatest total instead.

    Returns:
        ``(rows, cols)``, each of length ``min(n, m)``, int64, ``rows`` ascending: numpy arrays as
        scipy returns, or ``Tensor[min(n, m)]`` on the input's device when ``cost_matrix`` is a tensor.

    Raises:
        TypeError: ``cost_matrix`` is not real numbers (strings, complex), or ``maximize`` not a bool.
        ValueError: not 2-D, ragged, NaN or ``-inf`` (``+inf`` when maximizing), or
            "cost matrix is infeasible" (scipy's words): every assignment uses a forbidden pair.

    Note:
        Finite costs should stay well inside float64's range (say ``|C| < 1e300``): the potentials
        are sums and differences of costs, and one that overflows reads as a forbidden pair.
    """
    cost = _as_float64_matrix(cost_matrix, maximize)  # (n, m)
    n, m = cost.shape
    if n <= m:
        rows, cols = np.arange(n), _assign_rows(cost)
    else:  # assign every column instead, then list the pairs by row
        row_of_col = _assign_rows(cost.T)  # (m,)
        order = np.argsort(row_of_col)
        rows, cols = row_of_col[order], order
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    if isinstance(cost_matrix, Tensor):
        return torch.from_numpy(rows).to(cost_matrix.device), torch.from_numpy(cols).to(cost_matrix.device)
    return rows, cols


def _as_float64_matrix(cost_matrix: Any, maximize: bool) -> np.ndarray:
    """``cost_matrix`` as a float64 ``ndarray[n, m]`` to minimize (negated when ``maximize``), checked."""
    if not isinstance(maximize, bool | np.bool_):
        raise TypeError(f"maximize: expected a bool, got {type(maximize).__name__} {maximize!r}")
    if isinstance(cost_matrix, Tensor):
        if cost_matrix.is_complex():
            raise TypeError(f"cost_matrix: expected real numbers, got dtype {cost_matrix.dtype}")
        cost = cost_matrix.detach().cpu().to(torch.float64).numpy()
    else:
        try:
            array = np.asarray(cost_matrix)
        except ValueError as error:  # numpy refuses ragged nested lists
            raise ValueError("cost_matrix: expected a 2-D array of numbers, got a ragged sequence") from error
        kind = array.dtype
        if kind != np.bool_ and not (np.issubdtype(kind, np.integer) or np.issubdtype(kind, np.floating)):
            raise TypeError(f"cost_matrix: expected real numbers, got dtype {array.dtype}")
        cost = array.astype(np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost_matrix: expected a 2-D matrix (n, m), got shape {tuple(cost.shape)}")
    if maximize:
        cost = -cost  # the greatest total of C is the least total of -C
    invalid = np.isnan(cost) | (cost == -np.inf)
    if invalid.any():
        i, j = np.argwhere(invalid)[0]
        value = -cost[i, j] if maximize else cost[i, j]
        forbidden = "-inf" if maximize else "+inf"
        raise ValueError(
            f"cost_matrix: expected numbers or {forbidden} (a forbidden pair), got {value} at ({i}, {j})"
        )
    return cost


def _assign_rows(cost: np.ndarray) -> np.ndarray:
    """The column of every row of ``cost`` (n <= m, finite entries or +inf), of least total cost.

    Returns:
        ndarray[n] of int: ``col_of_row[i]``, all different.
    """
    n, m = cost.shape
    u = np.zeros(n)  # (n,) row potentials
    v = np.zeros(m)  # (m,) column potentials, <= 0; 0 on every free column
    col_of_row = np.full(n, -1)  # (n,)
    row_of_col = np.full(m, -1)  # (m,) -1 while the column is free
    for start in range(n):
        # Step 1: Dijkstra from `start` over the reduced costs, up to the nearest free column.
        dist = np.full(m, np.inf)  # (m,) shortest path length found so far from `start` to each column
        came_from = np.full(m, -1)  # (m,) the row just before each column on that path
        settled = np.zeros(m, dtype=bool)  # (m,) columns whose distance is final
        row, row_dist = start, 0.0
        while True:
            # Reach every unsettled column through `row`: the path to `row`, then one entry.
            through_row = row_dist + cost[row] - u[row] - v  # (m,) +inf for a forbidden pair
            shorter = ~settled & (through_row < dist)
            dist[shorter] = through_row[shorter]
            came_from[shorter] = row
            # Settle the closest unsettled column: no later path can be shorter (edges are >= 0).
            candidates = np.where(settled, np.inf, dist)  # (m,)
            col = int(np.argmin(candidates))
            if candidates[col] == np.inf:  # only forbidden pairs lead on: no augmenting path
                raise ValueError(
                    f"cost matrix is infeasible: every assignment of {n} pairs uses a forbidden entry"
                )
            settled[col] = True
            if row_of_col[col] < 0:
                break  # a free column: the shortest augmenting path ends here
            # Go back along the matched pair: its reduced cost is 0, so the row is as far as `col`.
            row, row_dist = row_of_col[col], dist[col]
        length = dist[col]

        # Step 2: move the potentials of everything visited by (length - its distance) >= 0. Then
        # the path's entries have reduced cost 0 and, by the triangle inequality of shortest paths,
        # no reduced cost becomes negative. The free column `col` moves by 0, so its v stays 0.
        visited = np.flatnonzero(settled)  # the settled columns
        held = visited[visited != col]  # those held by a row; the rows reached through them
        u[start] += length  # `start` is at distance 0
        u[row_of_col[held]] += length - dist[held]
        v[visited] -= length - dist[visited]

        # Step 3: augment, walking the path back from the free column to `start`: each row on it
        # takes the column that follows it, and gives up the one it held to the row before it.
        while True:
            row = came_from[col]
            row_of_col[col] = row
            col_of_row[row], col = col, col_of_row[row]
            if row == start:
                break
    return col_of_row
