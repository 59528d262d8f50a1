"""The result of a run: tidy frames, KPIs and a manifest; saved as Parquet + JSON, loaded back.

A result folder holds ``manifest.json``, ``kpis.json`` and one Parquet file per frame:

* ``ticks`` -- one row per (tick, site): loads, supply, storage, grid, GPUs, inference served and
  dropped (requests routed to the site that found no room anywhere, plus the unassigned share of
  a class at its nearest site), prices, carbon intensity and the tick's emissions;
* ``routing`` -- one row per (tick, class, latency-feasible site): the routing share set by the
  controller, the requests/s served there (after spill and shedding) and dropped;
* ``jobs`` -- one row per submitted training job with its placement and status
  (``completed``, ``running`` at the end, ``dropped`` when its deadline became unreachable while
  queued, ``late``, ``never-started``);
* ``solver_log`` -- one row per control step (status, objective, gap, times, model size, fallback);
* ``events`` -- job submissions, starts, refusals, completions, drops, SOC limits and
  real-time generator starts at their exact times;
* ``kpis_by`` -- the KPIs per site, per inference class and for the fleet
  (:mod:`simulator.kpis_by_site`), also written as ``kpis_by.csv``;
* ``vintages``, ``planned``, ``signals`` -- the controller's record: every forecast it was given,
  the first hours of every plan it made, and the realised signals they are scored against
  (:mod:`simulator.controller_record`). Absent (empty frames) when the run was made with
  ``record_plans=False`` (``--no-record-plans``).

Both JSON files are standard JSON: a value that is NaN or infinite (a KPI that does not apply,
e.g. the budget use without a carbon budget) is written as ``null``; :meth:`RunResult.load`
reads a null KPI back as NaN.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FRAMES = ("ticks", "routing", "jobs", "solver_log", "events")
#: frames written when present and read back when their file exists (older results lack them)
OPTIONAL_FRAMES = ("kpis_by", "vintages", "planned", "signals")

#: keys every manifest written by :func:`simulator.run.run_closed_loop` holds
MANIFEST_KEYS = frozenset({"scenario", "controller_name", "seed"})


class ResultFolderError(ValueError):
    """A result folder that cannot be read; ``str()`` is ``FOLDER: what is wrong (FILE)``.

    Attributes ``folder`` (Path), ``file`` (name inside it) and ``reason`` (text).
    """

    def __init__(self, folder: Path, file: str, reason: str) -> None:
        super().__init__(f"{folder}: {reason} ({file})")
        self.folder, self.file, self.reason = folder, file, reason


def _read_frame(folder: Path, name: str) -> pd.DataFrame:
    """``folder/name.parquet``; :class:`ResultFolderError` when missing or unreadable."""
    return read_parquet_checked(folder, f"{name}.parquet", "incomplete result: the file is missing")


def read_parquet_checked(folder: Path, file: str, missing: str) -> pd.DataFrame:
    """``folder/file`` as a frame; :class:`ResultFolderError` with ``missing`` when the file is absent,
    or with pyarrow's reason when it is not a readable Parquet file."""
    path = folder / file
    if not path.is_file():
        raise ResultFolderError(folder, file, missing)
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types (ArrowInvalid, OSError, ...)
        raise ResultFolderError(folder, file, f"cannot read the file, not a valid Parquet file "
                                f"({_first_line(error)})") from error


def _read_json(folder: Path, file: str) -> Any:
    path = folder / file
    if not path.is_file():
        raise ResultFolderError(folder, file, "incomplete result: the file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ResultFolderError(folder, file, f"damaged result: not valid JSON ({_first_line(error)})") from error
    except OSError as error:
        raise ResultFolderError(folder, file, f"cannot read the file ({error.strerror or error})") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def replaceable_result_folder(folder: Path) -> bool:
    """True if ``folder`` may be replaced by a new result: an empty folder, or an aidc result
    folder (it holds ``manifest.json``). Anything else is the user's and is never deleted."""
    if not folder.is_dir() or folder.resolve() == Path.cwd().resolve():
        return False
    return (folder / "manifest.json").is_file() or not any(folder.iterdir())

@dataclass
class RunResult:
    """A closed-loop run (see the module docstring for the frames)."""

    ticks: pd.DataFrame
    routing: pd.DataFrame
    jobs: pd.DataFrame
    solver_log: pd.DataFrame
    events: pd.DataFrame
    kpis: dict[str, Any]  # JSON values: numbers, strings, None
    manifest: dict[str, Any]  # JSON values
    plans: list = field(default_factory=list, repr=False)  # PlanRecord (time_h, plan) per control step; not saved
    kpis_by: pd.DataFrame | None = field(default=None, repr=False)
    vintages: pd.DataFrame | None = field(default=None, repr=False)
    planned: pd.DataFrame | None = field(default=None, repr=False)
    signals: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kpis_by is None and "accounting" in self.manifest:
            from simulator.kpis_by_site import kpis_by

            self.kpis_by = kpis_by(self.ticks, self.routing, self.jobs, self.manifest)

    def save(self, folder: str | Path, force: bool = False,
             extras: Callable[[Path], object] | None = None) -> Path:
        """Write the result folder atomically (a temporary folder next to it, then a rename).

        An existing folder is refused unless ``force``. ``extras(temporary_folder)`` may add files
        (a plot) before the rename, so that an interrupted save never leaves a folder that looks
        complete.
        """
        folder = Path(folder)
        if folder.exists() and not force:
            raise FileExistsError(f"{folder}: result folder exists; pass force=True (--force) to replace it")
        if folder.exists() and not replaceable_result_folder(folder):
            raise FileExistsError(f"{folder}: not an aidc result folder (no manifest.json) and not empty; "
                                  "force replaces only result folders")
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
        temporary.mkdir()
        try:
            for name in FRAMES:
                getattr(self, name).to_parquet(temporary / f"{name}.parquet", index=False)
            for name in OPTIONAL_FRAMES:
                frame = getattr(self, name)
                if frame is not None and (len(frame) or name == "kpis_by"):
                    frame.to_parquet(temporary / f"{name}.parquet", index=False)
            if self.kpis_by is not None:
                self.kpis_by.to_csv(temporary / "kpis_by.csv", index=False)
            (temporary / "kpis.json").write_text(_dump(self.kpis), encoding="utf-8")
            (temporary / "manifest.json").write_text(_dump(self.manifest), encoding="utf-8")
            if extras is not None:
                extras(temporary)
            if folder.exists():
                old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(folder, old)
                os.replace(temporary, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(temporary, folder)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return folder

    @staticmethod
    def load(folder: str | Path) -> RunResult:
        """Read a folder written by :meth:`save`.

        Raises :class:`ResultFolderError` (a ``ValueError``) naming the file and what is wrong when
        the folder is not an aidc result, is incomplete (a frame or JSON file missing) or holds a
        file that cannot be read (damaged Parquet, invalid JSON, a manifest that is not aidc's).
        """
        folder = Path(folder)
        if not (folder / "manifest.json").is_file():
            raise FileNotFoundError(f"{folder}: not a result folder (no manifest.json)")
        manifest = _read_json(folder, "manifest.json")
        if not isinstance(manifest, dict) or not manifest.keys() >= MANIFEST_KEYS:
            raise ResultFolderError(folder, "manifest.json", "not an aidc result: the manifest is not an aidc "
                                    f"manifest (a JSON object with {', '.join(sorted(MANIFEST_KEYS))})")
        frames = {name: _read_frame(folder, name) for name in FRAMES}
        frames.update({name: _read_frame(folder, name) for name in OPTIONAL_FRAMES
                       if (folder / f"{name}.parquet").is_file()})
        raw_kpis = _read_json(folder, "kpis.json")
        if not isinstance(raw_kpis, dict):
            raise ResultFolderError(folder, "kpis.json", "damaged result: the KPIs are not a JSON object")
        kpis = {key: float("nan") if value is None else value  # null: a KPI that does not apply
                for key, value in raw_kpis.items()}
        try:
            return RunResult(**frames, kpis=kpis, manifest=manifest)
        except (KeyError, ValueError, TypeError) as error:  # frames that do not fit together
            raise ResultFolderError(folder, "ticks.parquet", f"damaged result: the frames do not fit the "
                                    f"manifest ({type(error).__name__}: {error})") from error

    def kpi_table(self, keys: tuple[str, ...] | None = None) -> pd.Series:
        """The KPIs as a labelled Series (all, or ``keys`` in that order)."""
        keys = tuple(self.kpis) if keys is None else keys
        values = {key: self.kpis.get(key, float("nan")) for key in keys}
        return pd.Series(values, name=self.manifest.get("controller_name"))

    def __repr__(self) -> str:
        m = self.manifest
        return (f"<RunResult {m.get('scenario')} controller={m.get('controller_name')} seed={m.get('seed')} "
                f"days={m.get('days')} benefit={self.kpis.get('benefit_usd', float('nan')):,.0f} USD>")


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / Infinity: null (a KPI that does not apply, e.g. no budget)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _dump(data: dict[str, object]) -> str:
    """Standard JSON (``allow_nan=False``: any other reader can read it); NaN and infinities as null."""
    return json.dumps(_plain(data), indent=2, sort_keys=False, allow_nan=False)


def same_kpis(a: dict[str, object], b: dict[str, object]) -> bool:
    """KPI dicts equal, NaN equal to NaN."""
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True
