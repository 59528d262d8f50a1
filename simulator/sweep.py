"""Sweeps: grids of closed-loop runs on a local process pool or a Dask cluster (SPEC §7).

A grid is controllers x forecasts x seeds x scenario variants over one scenario::

    from simulator.sweep import ScenarioVariant, SweepGrid, run_sweep

    grid = SweepGrid("us-3site", controllers=("mpc", "greedy", "local"),
                     forecasts=("perfect", "noisy:sigma_24h=0.1", "noisy:sigma_24h=0.3"),
                     seeds=(1, 2, 3), days=1, bound=True,
                     variants=(ScenarioVariant("base"), ScenarioVariant.parse("rich:generation_scale=2")))
    outcome = run_sweep(grid, "sweeps/us-3site")       # dask="local" or "tcp://host:8786" for Dask
    outcome.runs      # one row per run: its parameters and KPIs
    outcome.summary   # mean / std / count over seeds per (variant, controller, forecast) and KPI

Heuristic controllers (``greedy``, ``local``) use no forecast: they run once per (seed, variant)
and their ``forecast`` is ``"n/a"``.

The sweep folder::

    SWEEP/sweep.json              the grid of the last invocation
    SWEEP/runs/<run-id>/          one finished run: a RunResult folder plus run.json
    SWEEP/runs.parquet, runs.csv  one row per finished run of the grid
    SWEEP/summary.parquet, .csv   the aggregate (tidy: one row per group and KPI)
    SWEEP/.staging/               runs being written (cleared when a sweep starts)

A run's id is a readable slug plus a hash of everything that determines it (the variant's
scenario content, days, controller, forecast, seed, solver options, bound), so a changed input
never reuses an old result. A worker simulates, saves the result into ``.staging``, writes
``run.json`` (parameters and KPIs) *last*, then renames the folder into ``runs/`` -- one atomic
step: a run is finished iff ``runs/<id>/run.json`` exists, and a sweep killed at any moment
leaves only finished runs and staging debris. Re-running the same grid skips finished runs. The
tables are always rebuilt from the folders on disk, so a resumed sweep's tables equal those of
an uninterrupted one.

Runs are deterministic under a seed (HiGHS with one thread), so the process pool and a Dask
cluster give the same tables -- except wall-clock columns (:func:`is_timing_column`), which
differ from run to run; :func:`same_tables` compares without them. On a remote Dask cluster,
workers write the run folders themselves: the sweep folder must be on a filesystem they share at
the same absolute path, and they need the same aidc version installed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# the grid, re-exported: ``from simulator.sweep import SweepGrid, run_sweep``
from simulator.sweep_grid import (  # noqa: F401
    HEURISTIC_CONTROLLERS,
    MPC_CONTROLLERS,
    NO_FORECAST,
    RUN_COLUMNS,
    RunSpec,
    ScenarioVariant,
    SweepGrid,
    SweepSpecError,
    forecast_sigma_24h,
    parse_seeds,
    split_forecasts,
)

if TYPE_CHECKING:
    import pandas as pd

    from scenarios.schema import Scenario

RUN_MARKER = "run.json"  # written last into a run folder: its presence means "finished"
GROUP_COLUMNS = ("variant", "controller", "forecast")


# ---------------------------------------------------------------------------------------------
# one run (in a worker)


def runs_folder(sweep_folder: str | Path) -> Path:
    return Path(sweep_folder) / "runs"


def is_finished(run_folder: Path) -> bool:
    """A run folder is finished iff its marker (written last) is there."""
    return (run_folder / RUN_MARKER).is_file()


#: Testing hook: a run whose id contains this environment variable's value raises in the worker.
FAIL_HOOK = "AIDC_SWEEP_FAIL_RUN"


def execute_run(spec: RunSpec, scenario: Scenario, sweep_folder: str) -> dict[str, object]:
    """Simulate one run and move its folder into ``runs/`` atomically; return a small KPI dict.

    Safe to call twice for the same run: a run finished meanwhile (by another worker) is kept
    and this one's copy discarded.
    """
    from simulator.controllers import make_controller
    from simulator.run import simulate

    target = runs_folder(sweep_folder) / spec.run_id
    if is_finished(target):
        return {"run_id": spec.run_id, "skipped": True}
    hook = os.environ.get(FAIL_HOOK)
    if hook and hook in spec.run_id:
        raise RuntimeError(f"{FAIL_HOOK}={hook}: failing run {spec.run_id} on purpose")
    began = time.perf_counter()
    controller = make_controller(spec.controller, scenario, forecast=spec.forecast or "perfect",
                                 solver=spec.solver or "highs", seed=spec.seed, **spec.mpc_settings())
    # no controller record in a sweep (1.7 MB per us-3site week): `aidc run` keeps it for one run
    result = simulate(scenario, controller, days=spec.days, seed=spec.seed, bound=spec.bound,
                      budget_scale=spec.budget_scale, record_plans=False)
    staging = Path(sweep_folder) / ".staging" / f"{spec.run_id}.{uuid.uuid4().hex[:8]}"
    result.save(staging)
    row = {**spec.row(), "days": float(result.manifest["days"])}
    record = {"spec": asdict(spec), "row": row, "kpis": result.kpis, "wall_s": time.perf_counter() - began}
    (staging / RUN_MARKER).write_text(json.dumps(record, indent=2, default=_plain_json), encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, target)
    except OSError:
        if not is_finished(target):
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another worker finished it first
    return {"run_id": spec.run_id, "skipped": False, "benefit_usd": result.kpis.get("benefit_usd"),
            "emissions_tco2": result.kpis.get("emissions_tco2"), "wall_s": record["wall_s"]}


def _plain_json(value: object) -> object:
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) else str(value)


# ---------------------------------------------------------------------------------------------
# the tables, from the folders on disk


def is_timing_column(name: str) -> bool:
    """Wall-clock columns: they differ between otherwise identical runs."""
    return (name in ("tick_us", "wall_s") or name.endswith("_wall_s")
            or name.startswith(("solve_s_", "decide_s_")))


def collect_runs(sweep_folder: str | Path, specs: Sequence[RunSpec] | None = None) -> pd.DataFrame:
    """One row per finished run (of ``specs`` in their order, or every finished run by id)."""
    import pandas as pd

    folder = runs_folder(sweep_folder)
    if specs is not None:
        folders = [folder / spec.run_id for spec in specs]
    else:
        folders = sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    rows = []
    for run_folder in folders:
        if not is_finished(run_folder):
            continue
        record = json.loads((run_folder / RUN_MARKER).read_text(encoding="utf-8"))
        rows.append({**record["row"], "wall_s": record.get("wall_s", math.nan), **record["kpis"]})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*RUN_COLUMNS, "wall_s"])
    return frame.reset_index(drop=True)


def kpi_columns(runs: pd.DataFrame) -> list[str]:
    """The numeric KPI columns of a runs table (parameters excluded)."""
    import pandas as pd

    return [c for c in runs.columns if c not in RUN_COLUMNS and pd.api.types.is_numeric_dtype(runs[c])
            and not pd.api.types.is_bool_dtype(runs[c])]


def summarise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1) and count of finite values over seeds, per
    (variant, controller, forecast) and KPI; one row each (tidy), groups in first-seen order."""
    import pandas as pd

    columns = [*GROUP_COLUMNS, "forecast_sigma_24h", "runs", "kpi", "mean", "std", "count"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    kpis = kpi_columns(runs)
    rows = []
    for keys, group in runs.groupby(list(GROUP_COLUMNS), sort=False):
        for kpi in kpis:
            values = group[kpi].to_numpy(dtype=float)
            values = values[pd.notna(values)]
            rows.append({
                **dict(zip(GROUP_COLUMNS, keys, strict=True)),
                "forecast_sigma_24h": group["forecast_sigma_24h"].iloc[0], "runs": len(group), "kpi": kpi,
                "mean": float(values.mean()) if values.size else math.nan,
                "std": float(values.std(ddof=1)) if values.size > 1 else math.nan, "count": int(values.size),
            })
    return pd.DataFrame(rows, columns=columns)


def without_timing(frame: pd.DataFrame) -> pd.DataFrame:
    """The table without wall-clock columns (runs table) or rows (summary table)."""
    if "kpi" in frame.columns:
        return frame[~frame["kpi"].map(is_timing_column)].reset_index(drop=True)
    return frame.drop(columns=[c for c in frame.columns if is_timing_column(c)])


def same_tables(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Equal runs or summary tables, rows in any order, timing excluded, NaN equal to NaN."""
    a, b = without_timing(a), without_timing(b)
    if sorted(a.columns) != sorted(b.columns) or len(a) != len(b):
        return False
    keys = ["run_id"] if "run_id" in a.columns else [*GROUP_COLUMNS, "kpi"]
    a = a.sort_values(keys).reset_index(drop=True)
    b = b.sort_values(keys).reset_index(drop=True)[list(a.columns)]
    return bool(a.equals(b))


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_tables(sweep_folder: str | Path, runs: pd.DataFrame, summary: pd.DataFrame) -> list[Path]:
    """``runs`` and ``summary`` as Parquet and CSV in the sweep folder (each file atomically)."""
    folder = Path(sweep_folder)
    paths = []
    for name, frame in (("runs", runs), ("summary", summary)):
        for suffix in ("parquet", "csv"):
            path = folder / f"{name}.{suffix}"
            if suffix == "parquet":
                _write_atomically(path, functools.partial(_write_parquet, frame))
            else:
                _write_atomically(path, functools.partial(_write_csv, frame))
            paths.append(path)
    return paths


def load_sweep(sweep_folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (runs, summary) tables of a sweep folder, rebuilt from its finished runs."""
    runs = collect_runs(sweep_folder)
    grid_file = Path(sweep_folder) / "sweep.json"
    if grid_file.is_file() and not runs.empty:  # keep the grid's order where the grid is known
        try:
            grid = SweepGrid.from_mapping(json.loads(grid_file.read_text(encoding="utf-8")), where=str(grid_file))
            order = {spec.run_id: i for i, spec in enumerate(grid.runs())}
            runs = runs.sort_values("run_id", key=lambda ids: ids.map(lambda i: order.get(i, len(order))),
                                    kind="stable").reset_index(drop=True)
        except Exception:  # noqa: BLE001 -- the grid's scenario may be gone; the table stands alone
            pass
    return runs, summarise_runs(runs)


# ---------------------------------------------------------------------------------------------
# the sweep (in the driver)


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did and the tables it wrote."""

    folder: Path
    runs: pd.DataFrame
    summary: pd.DataFrame
    total: int
    ran: int
    skipped: int
    failed: dict[str, str]  # run id -> error message
    wall_s: float

    @property
    def complete(self) -> bool:
        return not self.failed and len(self.runs) == self.total


class _Lock:
    """One sweep at a time per folder: ``.lock`` holds the driver's pid; a dead owner's lock is taken over."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"

    def __enter__(self) -> _Lock:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._owner_alive():
                    raise FileExistsError(f"{self.path.parent}: another sweep (pid {self._owner()}) is running "
                                          f"in this folder") from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            return self
        raise FileExistsError(f"{self.path}: cannot take the sweep lock")

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or -1)
        except (OSError, ValueError):
            return None

    def _owner_alive(self) -> bool:
        pid = self._owner()
        if pid is None or pid <= 0 or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def check_folder(sweep_folder: Path, option: str = "--out") -> None:
    """Create the sweep folder; refuse a file, or a non-empty folder that is not a sweep's
    (``option``: the command's option that named it, for the message)."""
    if sweep_folder.exists() and not sweep_folder.is_dir():
        raise NotADirectoryError(f"{sweep_folder}: not a folder")
    if sweep_folder.is_dir() and any(sweep_folder.iterdir()) and not any(
            (sweep_folder / name).exists() for name in ("sweep.json", ".lock", "runs")):
        raise FileExistsError(f"{sweep_folder}: exists and is not a sweep folder (no sweep.json); "
                              f"choose another {option}")
    runs_folder(sweep_folder).mkdir(parents=True, exist_ok=True)


def clean_folder(sweep_folder: Path) -> None:
    """Remove what a killed sweep left half-written: staging, temporary files, run folders
    without their marker. Only under the sweep's lock."""
    shutil.rmtree(sweep_folder / ".staging", ignore_errors=True)
    for path in [*sweep_folder.glob(".*.tmp-*"), *runs_folder(sweep_folder).iterdir()]:
        if path.name.startswith(".") or (path.is_dir() and not is_finished(path)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def run_sweep(
    grid: SweepGrid,
    folder: str | Path,
    *,
    workers: int = 2,
    dask: str | None = None,
    progress: bool = True,
) -> SweepOutcome:
    """Run every unfinished run of ``grid`` into ``folder`` and write the tables.

    ``workers`` processes in a local pool (0: in this process, one after the other), or with
    ``dask="local"`` a Dask LocalCluster of ``workers`` single-threaded worker processes, or
    with ``dask="tcp://host:port"`` the cluster of that scheduler. A failing run is reported in
    :attr:`SweepOutcome.failed` and does not stop the others; Ctrl-C keeps what is finished.
    """
    began = time.perf_counter()
    folder = Path(folder).resolve()
    scenarios = grid.scenarios()
    specs = grid.runs(scenarios)
    ids = [spec.run_id for spec in specs]
    if len(set(ids)) != len(ids):
        raise SweepSpecError("the grid repeats a run (duplicate controllers, forecasts or seeds)")
    if workers < 0:
        raise SweepSpecError(f"workers must be 0 or more, got {workers}")
    # a scheduler address is reached before the folder is touched: an unreachable one fails first
    client = _connect(dask) if dask is not None and dask != "local" else None
    try:
        return _run_in_folder(grid, folder, specs, scenarios, workers, dask, client, progress, began)
    finally:
        if client is not None:
            client.close()


def _run_in_folder(grid: SweepGrid, folder: Path, specs: list[RunSpec], scenarios: Mapping[str, Scenario],
                   workers: int, dask: str | None, client: Any, progress: bool, began: float) -> SweepOutcome:
    check_folder(folder)
    with _Lock(folder):
        clean_folder(folder)
        _write_atomically(folder / "sweep.json",
                          lambda p: _write_text(p, json.dumps(grid.to_dict(), indent=2)))
        pending = [spec for spec in specs if not is_finished(runs_folder(folder) / spec.run_id)]
        tasks = [(spec, scenarios[spec.variant]) for spec in pending]
        bar = None
        if progress:  # a status line (the bar shows on a terminal only)
            print(f"{grid.scenario}: {len(pending)} of {len(specs)} runs to run; running ...",
                  file=sys.stderr, flush=True)
            from simulator.progress import progress_bar

            bar = progress_bar(total=len(specs), initial=len(specs) - len(pending), desc="sweep", unit="run")
        failed: dict[str, str] = {}
        ran = 0

        def done(run_id: str, error: BaseException | None) -> None:
            nonlocal ran
            if error is None:
                ran += 1
            else:
                failed[run_id] = " ".join(f"{type(error).__name__}: {error}".split())
            if bar is not None:
                bar.update()
                if failed:
                    bar.set_postfix(failed=len(failed))

        try:
            if not tasks:
                pass
            elif dask is not None:
                _run_on_dask(tasks, str(folder), dask, workers, done, client)
            elif workers <= 0:
                for spec, scenario in tasks:
                    try:
                        execute_run(spec, scenario, str(folder))
                    except Exception as error:  # noqa: BLE001 -- reported, the sweep goes on
                        done(spec.run_id, error)
                    else:
                        done(spec.run_id, None)
            else:
                _run_on_pool(tasks, str(folder), workers, done)
        finally:
            if bar is not None:
                bar.close()
        runs = collect_runs(folder, specs)
        summary = summarise_runs(runs)
        write_tables(folder, runs, summary)
        with contextlib.suppress(OSError):
            (folder / ".staging").rmdir()  # when empty (a late worker of a killed sweep may still write there)
    return SweepOutcome(folder=folder, runs=runs, summary=summary, total=len(specs), ran=ran,
                        skipped=len(specs) - len(pending), failed=failed, wall_s=time.perf_counter() - began)


Task = tuple[RunSpec, "Scenario"]


@contextmanager
def workers_without_main_script() -> Iterator[None]:
    """Start worker processes as if the driver were not running a script.

    A spawned process imports the parent's ``__main__`` script again before it runs a task, so
    a script that calls :func:`run_sweep` without an ``if __name__ == "__main__":`` guard would
    run again in every worker. The tasks need nothing from the script (they are
    :func:`execute_run` on library objects), so while the workers start, ``__main__`` is an
    empty module. A ``python -m`` module or a notebook kernel (imported by name) is left alone.
    """
    main = sys.modules.get("__main__")
    by_name = getattr(getattr(main, "__spec__", None), "name", None)
    if main is None or by_name is not None or not getattr(main, "__file__", None):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _run_on_pool(tasks: list[Task], folder: str, workers: int,
                 done: Callable[[str, BaseException | None], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawn: workers start clean (no inherited threads or locks from the driver, e.g. a notebook's);
    # they ignore Ctrl-C (the terminal sends it to every process of the group): the driver stops them
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_ctrl_c)
    try:
        with workers_without_main_script(), _ctrl_c_ignored():  # the workers start on submit
            futures = {pool.submit(execute_run, spec, scenario, folder): spec.run_id for spec, scenario in tasks}
        waiting = set(futures)
        while waiting:
            finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    error = BrokenProcessPool(f"{error} (a worker process died: out of memory, or killed)")
                done(futures[future], error)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored while child processes start, so that they inherit it ignored (a Python
    handler would not survive their exec). A Ctrl-C in that moment (the cluster's start, about
    2 s) is lost; one after it stops the sweep."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _ignore_ctrl_c() -> None:
    """Pool initializer: a worker leaves SIGINT to the driver (no traceback per worker on Ctrl-C)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool: object) -> None:
    """Stop a :class:`~concurrent.futures.ProcessPoolExecutor` now: cancel what has not started and
    terminate the workers (a run cut short leaves only its staging folder, cleaned on the next start).

    ``shutdown`` alone would wait for the running tasks; Python 3.14's ``terminate_workers`` is
    not available on 3.11, hence the executor's process table.
    """
    processes = list(dict(getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)  # type: ignore[attr-defined]
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address`` (``tcp://host:port``); one-line errors."""
    from distributed import Client

    try:
        return Client(address, timeout="20s")
    except OSError as error:
        raise ConnectionError(f"--dask {address}: cannot reach the scheduler ({error})") from None
    except ValueError as error:  # e.g. an unknown address scheme
        raise SweepSpecError(f"--dask {address}: {error}") from None


def _run_on_dask(tasks: list[Task], folder: str, address: str, workers: int,
                 done: Callable[[str, BaseException | None], None], client: Any = None) -> None:
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    owned = client is None  # a client given by run_sweep is closed there
    if client is not None:
        pass
    elif address == "local":
        # the workers start in the constructor; they inherit an ignored SIGINT (Python keeps it
        # ignored), so Ctrl-C reaches only this driver, which closes the cluster: no worker tracebacks
        with workers_without_main_script(), _ctrl_c_ignored():
            cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = _connect(address)
    try:
        futures = {client.submit(execute_run, spec, scenario, folder, key=f"aidc-run-{spec.run_id}", pure=False,
                                 retries=0): spec.run_id for spec, scenario in tasks}
        for future in as_completed(list(futures)):
            failure = future.exception() if future.status == "error" else None
            done(futures[future], failure)
    finally:
        if owned:
            client.close()
        if cluster is not None:
            cluster.close()
