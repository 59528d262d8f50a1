"""The noisy oracle: truth plus a seeded, lead-dependent, autocorrelated, correlated error.

For signal ``s``, key ``k``, issue time ``τ`` and target step ``i = 0..H-1`` with lead
``L_i = (i + 1)Δ`` hours (to the end of the target interval), the forecast is

    f = y + scale · (bias + σ(L_i) · z_i)

* ``y`` — the truth (mean over the target interval);
* ``scale`` — by the signal's ``mode``: ``relative`` → ``y`` itself (multiplicative error, zero
  where the truth is zero, e.g. PV at night); ``std`` → the standard deviation of the key's bound
  truth series (for signals that cross zero or hover near it: prices, wind); ``absolute`` → 1 (σ
  and bias are then in the signal's own unit, e.g. °C);
* ``σ(L)`` — the error-growth curve, with ``σ_0 = sigma_0`` and ``σ_24 = sigma_24h``:
  ``sqrt``: σ_0 + (σ_24 − σ_0)·sqrt(L/24);  ``linear``: σ_0 + (σ_24 − σ_0)·L/24;  ``const``: σ_24
  (the curves continue past 24 h);
* ``z`` — a stationary, unit-variance AR(1) process along the lead axis:
  ``z_0 = η_0``, ``z_i = φ z_{i-1} + sqrt(1 − φ²) η_i`` with ``φ = rho^(Δ/1 h)``, so ``rho`` is the
  correlation of errors one hour apart in lead (the lag-1 correlation for hourly steps) and
  ``std(error_i) = scale·σ(L_i)`` exactly;
* ``η`` — standard normal innovations with a nested factor structure,
  ``η = sqrt(c_g)·G + sqrt(c_s − c_g)·S_s + sqrt(1 − c_s)·I_{s,k}`` with ``c_s = site_corr`` and
  ``c_g = signal_corr ≤ site_corr``: the errors of two keys of one signal have correlation
  ``site_corr``, of two different signals ``signal_corr`` (exact when their ``rho`` agree).
  A derived signal (:data:`DERIVED_SIGNALS`: the export price) has no draws of its own: it uses
  its parent's ``z`` (the import price's), so its error follows the parent's, with settings that
  default to the parent's (``import_price.sigma_24h=0.2`` sets both; ``export_price.*`` only it).

The result is clipped to the signal's range (≥ 0 for demand, pv, wind, carbon; ≤ 1 for pv, wind),
so near a bound the realised error is smaller than the configured one.

Common random numbers. ``G``, ``S_s`` and ``I_{s,k}`` come from separate numpy ``PCG64`` streams
seeded by ``SeedSequence([seed, tag, hash(signal), hash(key), issue_time_ns])`` with a stable
BLAKE2b hash of the strings, so a draw depends only on (seed, signal, key, issue time) — never on
which forecasts were asked before, nor on the controller. Different issue times give independent
errors. A longer horizon extends the same draws (the first H innovations do not change).

Quantiles are Gaussian and centred on the forecast itself: ``f + z_q · σ(L) · scale_f`` with
``scale_f = |f|`` in ``relative`` mode (the truth is not used, so the spread does not reveal it). A
forecaster with ``bias ≠ 0`` is therefore over-confident, like a real biased model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import pandas as pd

from forecasts.base import (
    SIGNALS,
    ForecastRequest,
    HistoryView,
    OracleForecaster,
    Prediction,
    gaussian_quantile,
)
from forecasts.params import ForecastSpecError, Param
from forecasts.timegrid import NS_PER_HOUR

#: per-signal defaults of ``mode`` and ``sigma_24h`` (σ at 24 h lead as a fraction of the scale),
#: typical of good operational day-ahead forecasts: load ~5-10 % of actual, PV ~25 % of actual
#: output, wind ~12-15 % of capacity (≈ 0.5 of the series std), day-ahead prices ≈ 0.4 of the price
#: std, grid carbon intensity ~5-10 % of actual, temperature ~1.5-2 °C (≈ 0.3 of a week's std).
NOISE_DEFAULTS: dict[str, dict[str, object]] = {
    "demand": {"mode": "relative", "sigma_24h": 0.08},
    "pv": {"mode": "relative", "sigma_24h": 0.25},
    "wind": {"mode": "std", "sigma_24h": 0.5},
    "import_price": {"mode": "std", "sigma_24h": 0.4},
    "export_price": {"mode": "std", "sigma_24h": 0.4},
    "carbon": {"mode": "relative", "sigma_24h": 0.1},
    "temperature": {"mode": "std", "sigma_24h": 0.3},
}
#: a derived signal -> its parent: its errors are its parent's draws (same streams, same AR(1)
#: path), scaled by its own scale, and its settings default to the parent's. A contractual export
#: price is a fraction of the import price, so its error is that fraction of the import price's
#: error and its forecast stays that fraction of the import forecast -- never above it.
DERIVED_SIGNALS: dict[str, str] = {"export_price": "import_price"}
_MODES = ("relative", "std", "absolute")
_CURVES = ("sqrt", "linear", "const")


@dataclass(frozen=True)
class NoiseSettings:
    """Resolved error settings of one signal."""

    mode: str
    sigma_0: float
    sigma_24h: float
    curve: str
    rho: float
    bias: float

    def sigma_at(self, lead_h: np.ndarray) -> np.ndarray:
        """σ(L) for leads in hours (see the module docstring)."""
        lead_h = np.asarray(lead_h, dtype=np.float64)
        if self.curve == "const":
            return np.full_like(lead_h, self.sigma_24h)
        growth = np.sqrt(lead_h / 24.0) if self.curve == "sqrt" else lead_h / 24.0
        return self.sigma_0 + (self.sigma_24h - self.sigma_0) * growth


@lru_cache(maxsize=4096)
def stable_hash(text: str) -> int:
    """A 64-bit hash of a string that is the same in every process (unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def normal_stream(seed: int, parts: tuple[str, ...], issue_ns: int, size: int) -> np.ndarray:
    """``size`` standard normals from the stream keyed by (seed, parts, issue time)."""
    entropy = [int(seed), *(stable_hash(part) for part in parts), int(issue_ns) % (1 << 64)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy))).standard_normal(size)


class NoisyForecaster(OracleForecaster):
    """Noisy oracle: truth plus seeded error growing with lead (see module docstring for the maths)."""

    name: ClassVar[str] = "noisy"
    description: ClassVar[str] = (
        "oracle + error growing with lead (AR(1) in lead, correlated across sites/signals, bias)"
    )
    PARAMETERS: ClassVar[tuple] = (
        Param("sigma_24h", "float", None, "error std at 24 h lead, fraction of the scale (unit if absolute)",
              low=0.0, per_signal=True),
        Param("sigma_0", "float", 0.0, "error std as the lead goes to 0 (sqrt, linear)", low=0.0,
              per_signal=True),
        Param("curve", "choice", "sqrt", "growth of σ with lead", choices=_CURVES, per_signal=True),
        Param("rho", "float", 0.9, "AR(1) correlation of errors 1 h apart in lead", low=0.0, high=1.0,
              per_signal=True),
        Param("bias", "float", 0.0, "mean error, fraction of the scale (unit if absolute)", per_signal=True),
        Param("mode", "choice", None, "error scale: relative (×truth), std (×series std) or absolute",
              choices=_MODES, per_signal=True),
        Param("site_corr", "float", 0.0, "error correlation between keys of a signal", low=0.0, high=1.0),
        Param("signal_corr", "float", 0.0, "error correlation between signals, ≤ site_corr", low=0.0,
              high=1.0),
        Param("seed", "int", 0, "seed of the error streams (make_forecaster's seed unless given)", low=0),
        Param("quantiles", "quantiles", (0.1, 0.5, 0.9), "Gaussian quantile levels to report"),
    )

    def __init__(self, truth: Mapping[str, pd.DataFrame] | None = None, **params: object) -> None:
        super().__init__(truth=truth, **params)
        site_corr = self.number("site_corr")
        signal_corr = self.number("signal_corr")
        if signal_corr > site_corr:
            raise ForecastSpecError(
                f"forecaster 'noisy' needs signal_corr <= site_corr, got signal_corr={signal_corr:g} > "
                f"site_corr={site_corr:g}"
            )
        self.settings: dict[str, NoiseSettings] = {signal: self._resolve(signal) for signal in SIGNALS}
        # innovation weights of the global, per-signal and per-key factors
        self._weights = (np.sqrt(signal_corr), np.sqrt(site_corr - signal_corr), np.sqrt(1.0 - site_corr))

    def _resolve(self, signal: str) -> NoiseSettings:
        parent = DERIVED_SIGNALS.get(signal)
        resolved: dict[str, object] = dict(NOISE_DEFAULTS[parent or signal])
        for name in ("mode", "sigma_0", "sigma_24h", "curve", "rho", "bias"):
            own = (name, f"{parent}.{name}", f"{signal}.{name}") if parent else (name, f"{signal}.{name}")
            for source in own:
                if self.params.get(source) is not None:
                    resolved[name] = self.params[source]
        settings = NoiseSettings(**resolved)  # type: ignore[arg-type]  # values checked by resolve_params
        if settings.curve != "const" and settings.sigma_0 > settings.sigma_24h:
            raise ForecastSpecError(
                f"forecaster 'noisy' needs sigma_0 <= sigma_24h for {signal!r}, got "
                f"{settings.sigma_0:g} > {settings.sigma_24h:g}"
            )
        return settings

    @property
    def seed(self) -> int:
        """Seed of the error streams."""
        return int(self.number("seed"))

    def config(self) -> dict[str, object]:
        """Parameters as given plus the resolved settings per signal."""
        return {**super().config(), "resolved": {s: vars(v).copy() for s, v in self.settings.items()}}

    def error_spread(self, signal: str, values: np.ndarray, lead_h: np.ndarray, keys: tuple) -> np.ndarray:
        """The error standard deviation this forecaster states for its forecast ``values`` (H, keys)
        at leads ``lead_h`` (H,) hours: ``σ(L)·scale_f``, the spread of its Gaussian quantiles
        (``scale_f = |f|`` in relative mode, the key's truth std in std mode, 1 in absolute mode).
        Shape (H, keys). Needs the signal's truth bound (std mode reads its std)."""
        settings = self.settings[signal]
        sigma = settings.sigma_at(lead_h)[:, None]
        if settings.mode == "relative":
            return sigma * np.abs(values)
        if settings.mode == "std":
            table = self._truth_table(signal)
            return sigma * table.std_by_key[table.columns_for(keys)][None, :]
        return np.broadcast_to(sigma, values.shape).copy()

    def error_dependence(self, signal: str) -> tuple[float, float, float]:
        """(rho, site_corr, signal_corr) of this forecaster's errors of ``signal`` (module docstring)."""
        return self.settings[signal].rho, self.number("site_corr"), self.number("signal_corr")

    def standard_errors(self, request: ForecastRequest) -> np.ndarray:
        """The unit-variance AR(1) error paths ``z``, shape (horizon_steps, keys)."""
        source = DERIVED_SIGNALS.get(request.signal, request.signal)  # a derived signal draws its parent's
        settings = self.settings[source]
        size = request.horizon_steps
        w_global, w_signal, w_key = self._weights
        innovations = np.empty((size, len(request.keys)))
        for column, key in enumerate(request.keys):
            innovations[:, column] = normal_stream(
                self.seed, ("noisy/key", source, str(key)), request.issue_ns, size
            )
        if w_key < 1.0:
            innovations *= w_key
        if w_signal > 0.0:
            innovations += w_signal * normal_stream(
                self.seed, ("noisy/signal", source), request.issue_ns, size
            )[:, None]
        if w_global > 0.0:
            global_factor = normal_stream(self.seed, ("noisy/global",), request.issue_ns, size)
            innovations += w_global * global_factor[:, None]
        phi = settings.rho ** (request.step_ns / NS_PER_HOUR)
        gain = np.sqrt(max(0.0, 1.0 - phi * phi))
        # z_i = φ z_{i-1} + gain η_i with z_0 = η_0: initial state chosen so the first output is η_0
        initial = ((1.0 - gain) * innovations[0])[None, :]
        from scipy.signal import lfilter  # here, not at import: scipy.signal costs ~0.1 s at start-up

        z, _ = lfilter([gain], [1.0, -phi], innovations, axis=0, zi=initial)
        return z

    def _predict(self, request: ForecastRequest, history: HistoryView) -> Prediction:
        table = self._truth_table(request.signal)
        truth = table.means(request)
        settings = self.settings[request.signal]
        sigma = settings.sigma_at(request.lead_h)[:, None]
        if settings.mode == "relative":
            scale = truth
        elif settings.mode == "std":
            scale = np.broadcast_to(table.std_by_key[table.columns_for(request.keys)], truth.shape)
        else:
            scale = np.ones_like(truth)
        values = truth + scale * (settings.bias + sigma * self.standard_errors(request))
        quantiles = None
        levels = self.quantile_levels
        if levels:
            spread = sigma * (np.abs(values) if settings.mode == "relative" else scale)
            quantiles = {level: values + gaussian_quantile(level) * spread for level in levels}
        return Prediction(values=values, quantiles=quantiles)
