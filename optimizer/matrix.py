"""A thin canonical-matrix modelling layer: named variable and row blocks, COO coefficients.

Every constraint family appends rows and coefficient triplets as numpy arrays; the model is
turned into one sparse matrix once, then handed unchanged to either solver backend. The model is
a *minimisation* (the benefit maximisation is negated by the builder) with an objective offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class LinearModel:
    """min c'x + offset  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper."""

    col_lower: list[np.ndarray] = field(default_factory=list)
    col_upper: list[np.ndarray] = field(default_factory=list)
    col_cost: list[np.ndarray] = field(default_factory=list)
    col_integer: list[np.ndarray] = field(default_factory=list)
    row_lower: list[np.ndarray] = field(default_factory=list)
    row_upper: list[np.ndarray] = field(default_factory=list)
    coef_rows: list[np.ndarray] = field(default_factory=list)
    coef_cols: list[np.ndarray] = field(default_factory=list)
    coef_vals: list[np.ndarray] = field(default_factory=list)
    variable_blocks: dict[str, np.ndarray] = field(default_factory=dict)
    row_blocks: dict[str, np.ndarray] = field(default_factory=dict)
    objective_offset: float = 0.0
    n_cols: int = 0
    n_rows: int = 0

    def add_variables(
        self,
        name: str,
        shape: tuple[int, ...],
        lower: float | np.ndarray = 0.0,
        upper: float | np.ndarray = np.inf,
        cost: float | np.ndarray = 0.0,
        integer: bool = False,
    ) -> np.ndarray:
        """Append a block of columns; returns their indices shaped ``shape``."""
        size = int(np.prod(shape))
        index = np.arange(self.n_cols, self.n_cols + size).reshape(shape)
        self.col_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), shape).ravel().copy())
        self.col_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), shape).ravel().copy())
        self.col_cost.append(np.broadcast_to(np.asarray(cost, dtype=float), shape).ravel().copy())
        self.col_integer.append(np.full(size, integer))
        self.variable_blocks[name] = index
        self.n_cols += size
        return index

    def add_constraints(
        self,
        name: str,
        shape: tuple[int, ...],
        lower: float | np.ndarray = -np.inf,
        upper: float | np.ndarray = np.inf,
    ) -> np.ndarray:
        """Append a block of rows with bounds; returns their indices shaped ``shape``."""
        size = int(np.prod(shape))
        index = np.arange(self.n_rows, self.n_rows + size).reshape(shape)
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), shape).ravel().copy())
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), shape).ravel().copy())
        self.row_blocks[name] = index
        self.n_rows += size
        return index

    def add_coefficients(self, rows: np.ndarray, cols: np.ndarray, values: float | np.ndarray) -> None:
        """Add A[rows, cols] += values (broadcast together; duplicates are summed)."""
        rows, cols, values = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(values, dtype=float))
        self.coef_rows.append(rows.ravel())
        self.coef_cols.append(cols.ravel())
        self.coef_vals.append(values.ravel())

    def _cat(self, parts: list[np.ndarray], dtype: type = float) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    def finish(self) -> CanonicalModel:
        """Freeze into arrays and one CSC matrix (duplicate entries summed, zeros dropped)."""
        matrix = sp.csc_matrix(
            (self._cat(self.coef_vals), (self._cat(self.coef_rows, np.int64), self._cat(self.coef_cols, np.int64))),
            shape=(self.n_rows, self.n_cols),
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return CanonicalModel(
            matrix=matrix,
            col_lower=self._cat(self.col_lower),
            col_upper=self._cat(self.col_upper),
            col_cost=self._cat(self.col_cost),
            col_integer=self._cat(self.col_integer, bool),
            row_lower=self._cat(self.row_lower),
            row_upper=self._cat(self.row_upper),
            objective_offset=self.objective_offset,
            variable_blocks=self.variable_blocks,
            row_blocks=self.row_blocks,
        )


@dataclass(frozen=True)
class CanonicalModel:
    """The assembled model every backend receives."""

    matrix: sp.csc_matrix
    col_lower: np.ndarray
    col_upper: np.ndarray
    col_cost: np.ndarray
    col_integer: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    objective_offset: float
    variable_blocks: dict[str, np.ndarray]
    row_blocks: dict[str, np.ndarray]

    @property
    def n_cols(self) -> int:
        return self.matrix.shape[1]

    @property
    def n_rows(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_integer(self) -> int:
        return int(self.col_integer.sum())

    @property
    def n_nonzeros(self) -> int:
        return int(self.matrix.nnz)

    def objective(self, x: np.ndarray) -> float:
        """c'x + offset (the minimisation objective)."""
        return float(self.col_cost @ x + self.objective_offset)

    def max_violation(self, x: np.ndarray) -> float:
        """Largest bound or row violation of a point (0 when feasible)."""
        activity = self.matrix @ x
        parts = [
            np.maximum(self.col_lower - x, 0.0), np.maximum(x - self.col_upper, 0.0),
            np.maximum(self.row_lower - activity, 0.0), np.maximum(activity - self.row_upper, 0.0),
        ]
        return float(max((p.max() if p.size else 0.0) for p in parts))
