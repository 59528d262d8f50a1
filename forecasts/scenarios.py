"""Forecast scenarios: S joint sample paths of every signal around a set of point forecasts.

A stochastic controller needs more than a point forecast: it needs paths the truth could take,
with the errors of one path correlated along the lead axis, across sites (keys) and across
signals as the forecaster's errors are. For signal ``s``, key ``k`` and lead step ``i`` the
scenario ``n`` is

    y_n[i, k] = f[i, k] + spread[i, k] · z_n[i, k]        (``source="model"``)
    y_n[i, k] = Q_{i,k}(Φ(z_n[i, k]))                      (``source="quantiles"``)

* ``f`` — the point forecast; ``spread`` — the forecaster's own error standard deviation,
  ``σ(L_i)·scale`` (:meth:`forecasts.noisy.NoisyForecaster.error_spread`: the same spread its
  Gaussian quantiles use, centred on the forecast, so the truth is never used);
* ``Q`` — the forecaster's reported quantile function, interpolated linearly in the normal score
  ``z_q = Φ⁻¹(q)`` between its levels and extrapolated linearly beyond them (exact for Gaussian
  quantiles; any forecaster that reports two or more levels can be sampled this way);
* ``z_n`` — unit-variance paths with the noisy forecaster's dependence structure
  (:mod:`forecasts.noisy`): an AR(1) along the lead axis with ``φ = rho^(Δ/1 h)``, driven by
  innovations ``sqrt(c_g)·G + sqrt(c_s − c_g)·S_signal + sqrt(1 − c_s)·I_{signal,key}`` with
  ``c_s = site_corr`` and ``c_g = signal_corr``. The model source takes ``rho``, ``site_corr`` and
  ``signal_corr`` from the forecaster; the quantile source from :class:`Dependence` (defaults:
  rho 0.9, site_corr 0.5, signal_corr 0.0).

Results are clipped to each signal's range (:func:`forecasts.base.clip_to_signal_range`).

Common random numbers: every ``z`` comes from numpy ``PCG64`` streams keyed by
``(seed, "scenarios/...", signal, key, scenario number, issue time)`` (:func:`forecasts.noisy.normal_stream`),
streams the forecaster's own errors never use: a scenario set depends only on the seed, the issue
time, the point forecasts and the error model, never on which controller asks nor on what was
drawn before; scenario ``n`` does not change when more scenarios are asked for (antithetic pairs:
scenario ``2m+1`` is the mirror ``−z`` of scenario ``2m``, so the sample mean of ``z`` is zero and
the scenarios' mean is the point forecast up to clipping).

A forecaster with no error model and no quantiles (``perfect``, ``persistence``) gives S copies of
its point forecast: zero forecast error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasts.base import Forecast, Forecaster, clip_to_signal_range, gaussian_quantile
from forecasts.noisy import NoisyForecaster, normal_stream
from forecasts.timegrid import NS_PER_HOUR, timedelta_ns, timestamp_ns

SCENARIO_SOURCES: tuple[str, ...] = ("auto", "model", "quantiles", "point")


@dataclass(frozen=True)
class Dependence:
    """Correlation of scenario errors: ``rho`` between errors 1 h apart in lead, ``site_corr``
    between two keys of one signal, ``signal_corr`` (≤ site_corr) between two signals."""

    rho: float = 0.9
    site_corr: float = 0.5
    signal_corr: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.rho <= 1.0 and 0.0 <= self.signal_corr <= self.site_corr <= 1.0):
            raise ValueError(f"need 0 <= rho <= 1 and 0 <= signal_corr <= site_corr <= 1, got {self}")


@dataclass(frozen=True)
class ScenarioSet:
    """``paths[n][signal]``: a frame shaped like the point forecast of ``signal`` (H rows, keys),
    scenario ``n``'s values; ``probability`` (N,) sums to 1; ``source`` says how they were drawn
    (``model``, ``quantiles`` or ``point`` when the forecaster gave no spread); ``filled``: how
    many scenario values (over all scenarios, signals, leads and keys) took the point forecast
    because the forecaster's quantile there was NaN (a failed fit: ets early in a run)."""

    paths: tuple[dict[str, pd.DataFrame], ...]
    probability: np.ndarray
    source: str
    filled: int = 0

    @property
    def n_scenarios(self) -> int:
        return len(self.paths)

    def array(self, signal: str) -> np.ndarray:
        """(N, H, keys) values of ``signal`` in every scenario."""
        return np.stack([path[signal].to_numpy(dtype=float) for path in self.paths])


def resolve_source(forecaster: Forecaster, forecasts: Mapping[str, Forecast], source: str) -> str:
    """The source ``auto`` stands for with this forecaster: ``model`` for a forecaster with an error
    model (noisy), else ``quantiles`` if its forecasts carry two or more levels, else ``point``
    (copies of the point forecast; also asked for by name, for ablations). Raises ValueError for an
    unknown source or a source the forecaster cannot give."""
    if source not in SCENARIO_SOURCES:
        raise ValueError(f"unknown scenario source {source!r}; choose from {', '.join(SCENARIO_SOURCES)}")
    has_model = isinstance(forecaster, NoisyForecaster)
    has_quantiles = all(f.quantiles is not None and len(f.quantiles) >= 2 for f in forecasts.values())
    if source == "model" and not has_model:
        raise ValueError(f"scenario source 'model' needs a forecaster with an error model (noisy), "
                         f"not {forecaster.name!r}")
    if source == "quantiles" and not has_quantiles:
        raise ValueError(f"scenario source 'quantiles' needs two or more quantile levels from {forecaster.name!r}")
    if source != "auto":
        return source
    return "model" if has_model else "quantiles" if has_quantiles else "point"


def source_problem(forecaster: Forecaster, source: str) -> str | None:
    """Why ``forecaster`` cannot give scenarios from ``source``, as far as is known before a run;
    None if it can (or if only its forecasts will tell: a user's forecaster may report quantiles
    it declares nowhere, so ``quantiles`` is checked for aidc's own forecasters only).

    ``model`` needs the noisy forecaster's error model; ``quantiles`` two or more quantile levels
    (the ``quantiles`` parameter of noisy and ets; perfect and persistence report none)."""
    name = forecaster.spec
    if source == "model" and not isinstance(forecaster, NoisyForecaster):
        return (f"source=model needs a forecaster with an error model (noisy); {name!r} has none: use "
                f"source=auto (its quantiles if it reports them, else copies of the point forecast) or "
                f"--forecast noisy")
    if source == "quantiles" and forecaster.origin is None and len(forecaster.quantile_levels) < 2:
        return (f"source=quantiles needs a forecaster that reports two or more quantile levels; {name!r} reports "
                f"{len(forecaster.quantile_levels) or 'none'}: use source=auto or point, or a forecaster with "
                f"quantiles (noisy, ets)")
    return None


def standard_paths(
    seed: int, signals: Mapping[str, tuple], issue_ns: int, step_ns: int, horizon: int, n_scenarios: int,
    dependence: Mapping[str, Dependence],
) -> dict[str, np.ndarray]:
    """Unit-variance error paths ``z`` of every signal: ``{signal: (N, H, keys)}``.

    ``signals`` maps each signal to its keys; ``dependence`` gives each signal's correlations
    (``site_corr``/``signal_corr`` must agree across signals: the first one's are used). Scenario
    ``2m+1`` is ``−z`` of scenario ``2m``; streams are keyed as the module docstring says.
    """
    from scipy.signal import lfilter  # here, not at import: scipy.signal costs ~0.1 s at start-up

    first = next(iter(dependence.values())) if dependence else Dependence()
    w_global = np.sqrt(first.signal_corr)
    w_signal = np.sqrt(first.site_corr - first.signal_corr)
    w_key = np.sqrt(1.0 - first.site_corr)
    drawn = (n_scenarios + 1) // 2
    tag = ("scenarios/global",)
    global_factor = np.stack([normal_stream(seed, (*tag, str(m)), issue_ns, horizon) for m in range(drawn)])
    out: dict[str, np.ndarray] = {}
    for signal, keys in signals.items():
        innovations = np.empty((drawn, horizon, len(keys)))
        for m in range(drawn):
            for column, key in enumerate(keys):
                innovations[m, :, column] = normal_stream(
                    seed, ("scenarios/key", signal, str(key), str(m)), issue_ns, horizon)
            innovations[m] *= w_key
            if w_signal > 0.0:
                innovations[m] += w_signal * normal_stream(
                    seed, ("scenarios/signal", signal, str(m)), issue_ns, horizon)[:, None]
        if w_global > 0.0:
            innovations += w_global * global_factor[:, :, None]
        phi = dependence.get(signal, first).rho ** (step_ns / NS_PER_HOUR)
        gain = np.sqrt(max(0.0, 1.0 - phi * phi))
        initial = ((1.0 - gain) * innovations[:, 0, :])[:, None, :]
        z, _ = lfilter([gain], [1.0, -phi], innovations, axis=1, zi=initial)
        paths = np.empty((n_scenarios, horizon, len(keys)))
        paths[0::2] = z[: (n_scenarios + 1) // 2]
        paths[1::2] = -z[: n_scenarios // 2]
        out[signal] = paths
    return out


def quantile_values(levels: np.ndarray, quantiles: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Sample a quantile function at normal scores ``z``.

    ``levels`` (m,) increasing in (0, 1); ``quantiles`` (m, H, K) the reported values; ``z`` (N, H, K).
    Linear in ``z_q = Φ⁻¹(q)`` between levels, linear extrapolation with the outermost pairs' slopes
    beyond them (exact for Gaussian quantiles). Crossing quantiles are put in order; a NaN quantile
    (a forecaster's failed fit) gives NaN. Returns (N, H, K)."""
    scores = np.array([gaussian_quantile(float(q)) for q in levels])
    q = np.sort(quantiles, axis=0)
    # slopes of each segment (m-1, H, K); segment chosen per sample
    slopes = np.diff(q, axis=0) / np.diff(scores)[:, None, None]
    segment = np.clip(np.searchsorted(scores, z, side="right") - 1, 0, len(scores) - 2)  # (N, H, K)
    h_index = np.arange(z.shape[1])[None, :, None]
    k_index = np.arange(z.shape[2])[None, None, :]
    base = q[segment, h_index, k_index]
    slope = slopes[segment, h_index, k_index]
    return base + slope * (z - scores[segment])


def draw_scenarios(
    forecaster: Forecaster,
    forecasts: Mapping[str, Forecast],
    n_scenarios: int,
    *,
    seed: int,
    source: str = "auto",
    dependence: Dependence | None = None,
) -> ScenarioSet:
    """``n_scenarios`` equally likely joint scenarios of every signal in ``forecasts``.

    ``forecasts`` maps each signal to the forecaster's :class:`~forecasts.Forecast` of one issue
    (same issue time, step and horizon). ``source``: ``model`` (the forecaster's error model: noisy),
    ``quantiles`` (its reported quantiles, Gaussian-copula dependence from ``dependence``),
    ``point`` (copies of the point forecast) or ``auto`` (model, else quantiles, else point). ``seed`` keys the streams
    (pass the run's seed: common random numbers). Raises ValueError for ``n_scenarios < 1`` or a
    source the forecaster cannot give.
    """
    if n_scenarios < 1:
        raise ValueError(f"n_scenarios must be at least 1, got {n_scenarios}")
    if not forecasts:
        raise ValueError("draw_scenarios needs at least one forecast")
    kind = resolve_source(forecaster, forecasts, source)
    probability = np.full(n_scenarios, 1.0 / n_scenarios)
    if kind == "point":
        paths = tuple({s: f.values.copy() for s, f in forecasts.items()} for _ in range(n_scenarios))
        return ScenarioSet(paths, probability, "point")
    any_forecast = next(iter(forecasts.values()))
    if any_forecast.issue_time is None or any_forecast.step is None:
        raise ValueError("draw_scenarios needs forecasts that carry their issue time and step")
    issue_ns = timestamp_ns(any_forecast.issue_time)
    step_ns = timedelta_ns(any_forecast.step)
    horizon = len(any_forecast.values)
    keys = {signal: tuple(f.values.columns) for signal, f in forecasts.items()}
    if kind == "model":
        assert isinstance(forecaster, NoisyForecaster)  # resolve_source
        dep = {signal: Dependence(*forecaster.error_dependence(signal)) for signal in forecasts}
    else:
        dep = {signal: dependence or Dependence() for signal in forecasts}
    z = standard_paths(seed, keys, issue_ns, step_ns, horizon, n_scenarios, dep)
    values: dict[str, np.ndarray] = {}
    filled = 0
    for signal, forecast in forecasts.items():
        point = forecast.values.to_numpy(dtype=float)
        if kind == "model":
            assert isinstance(forecaster, NoisyForecaster)
            lead_h = (np.arange(horizon) + 1) * step_ns / NS_PER_HOUR
            spread = forecaster.error_spread(signal, point, lead_h, keys[signal])
            values[signal] = point[None] + spread[None] * z[signal]
        else:
            assert forecast.quantiles is not None
            levels = np.array(sorted(forecast.quantiles))
            reported = np.stack([forecast.quantiles[level].to_numpy(dtype=float) for level in levels])
            sampled = quantile_values(levels, reported, z[signal])
            # a failed quantile fit (NaN) leaves the point forecast: no spread known there (counted)
            finite = np.isfinite(sampled)
            filled += int(finite.size - np.count_nonzero(finite))
            values[signal] = np.where(finite, sampled, point[None])
    paths = tuple(
        {signal: pd.DataFrame(clip_to_signal_range(signal, values[signal][n].copy()),
                              index=forecasts[signal].values.index, columns=forecasts[signal].values.columns)
         for signal in forecasts}
        for n in range(n_scenarios)
    )
    return ScenarioSet(paths, probability, kind, filled)


def merge_duplicates(scenarios: ScenarioSet) -> ScenarioSet:
    """The same scenarios with exact duplicates merged, their probabilities summed (first kept).

    Zero forecast error gives N identical scenarios; merged, one is left and a stochastic program
    over them is the deterministic one."""
    kept: list[int] = []
    probability: list[float] = []
    for n, path in enumerate(scenarios.paths):
        for position, m in enumerate(kept):
            if all(np.array_equal(path[s].to_numpy(), scenarios.paths[m][s].to_numpy()) for s in path):
                probability[position] += float(scenarios.probability[n])
                break
        else:
            kept.append(n)
            probability.append(float(scenarios.probability[n]))
    if len(kept) == scenarios.n_scenarios:
        return scenarios
    return ScenarioSet(tuple(scenarios.paths[n] for n in kept), np.array(probability), scenarios.source,
                       scenarios.filled)

