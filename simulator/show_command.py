"""``aidc show DIR``: the KPIs and manifest of a saved run or sweep, its plots and CSV exports.

Wired into :mod:`simulator.cli`; argparse only at import, the rest inside :func:`run_show`.

* a run folder (``manifest.json``): a summary of the manifest and the main KPIs; ``--by site`` or
  ``--by class`` the KPIs per site or per inference class next to the fleet totals
  (:mod:`simulator.kpis_by_site`); ``--plot KIND`` writes a plot into the folder; ``--csv``
  writes every frame as CSV into ``DIR/csv/``;
* a sweep folder (``runs.parquet``): the summary table of the sweep (mean ± std over seeds).

Nothing in the folder is replaced without ``--force``: a plot whose file exists is written under
the first free name ``KIND-2.png``, ``KIND-3.png``, ...; ``--csv`` refuses an existing ``csv/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.results import RunResult

PLOTS = ("dispatch", "soc", "routing", "carbon", "forecast")
def _user_error(message: str) -> Exception:
    from simulator.errors import UserError

    return UserError(message)


def add_show_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``aidc show`` parser."""
    parser = subparsers.add_parser(
        "show", help="KPIs, manifest and plots of a saved run or sweep folder",
        description="Print the manifest summary and KPIs of a result folder written by `aidc run --out` "
                    "(or the summary of an `aidc sweep` folder); optionally the KPIs per site or class, "
                    "plots written into the folder, and the frames as CSV.",
    )
    parser.add_argument("folder", type=Path, metavar="RESULT_DIR", help="a run folder or a sweep folder")
    parser.add_argument("--by", choices=("site", "class"), help="KPIs per site or per inference class, with the fleet")
    parser.add_argument("--plot", action="append", choices=PLOTS, metavar="KIND",
                        help=f"write a plot into RESULT_DIR (repeatable): {', '.join(PLOTS)}; an existing file "
                             "is kept and the plot takes the next free name (KIND-2.png) unless --force")
    from simulator.commands import positive_number

    parser.add_argument("--lead-hours", type=positive_number, default=6.0,
                        help="lead time of the forecast plot, hours (default 6; a multiple of the control interval)")
    parser.add_argument("--csv", action="store_true",
                        help="write every frame as CSV into RESULT_DIR/csv/ (refused if it exists, unless --force)")
    parser.add_argument("--force", action="store_true", help="replace existing plots and csv/")
    return parser


def run_show(args: argparse.Namespace) -> int:
    """Print, plot and export as asked (see the module docstring)."""
    folder: Path = args.folder
    if not folder.exists():
        raise FileNotFoundError(2, "No such file or directory", str(folder))
    if not folder.is_dir():
        raise NotADirectoryError(20, "Not a directory (give a result folder)", str(folder))
    if (folder / "manifest.json").is_file():
        return _show_run(folder, args)
    if (folder / "runs.parquet").is_file():
        return _show_sweep(folder, args)
    raise _user_error(f"{folder}: not an aidc result folder (no manifest.json) nor a sweep folder (no runs.parquet)")


def _show_sweep(folder: Path, args: argparse.Namespace) -> int:
    if args.by or args.plot or args.csv:
        raise _user_error(f"{folder}: a sweep folder; --by, --plot and --csv work on one run folder "
                          f"(one of {folder / 'runs'}/*)")
    import pandas as pd

    from simulator.sweep_command import summary_table

    runs = pd.read_parquet(folder / "runs.parquet")
    scenario = runs["scenario"].iloc[0] if "scenario" in runs.columns and len(runs) else "?"
    print(f"{folder}: sweep of {scenario}, {len(runs)} runs; mean ± std over seeds")
    if len(runs):
        print(summary_table(runs))
    return 0


def _show_run(folder: Path, args: argparse.Namespace) -> int:
    from simulator.results import RunResult

    if args.csv:
        target = folder / "csv"
        if target.exists() and not args.force:
            raise FileExistsError(f"{target}: exists; use --force to replace it")
    try:
        result = RunResult.load(folder)
    except (ValueError, KeyError, OSError) as error:
        if isinstance(error, OSError):
            raise
        raise _user_error(f"{folder}: cannot read the result: {error}") from None
    if args.plot and "forecast" in args.plot:
        _check_forecast_record(result, args.lead_hours)
    print(manifest_summary(result, folder))
    if args.by:  # the fleet column holds the totals
        from simulator.kpis_by_site import by_table

        if result.kpis_by is None:
            raise _user_error(f"{folder}: this result has no per-site KPIs (no accounting constants in its manifest)")
        print(by_table(result.kpis_by, args.by))
    else:
        from simulator.commands import format_kpis

        print(format_kpis(result.kpis))
    for kind in args.plot or ():
        path = _free_name(folder, kind, args.force)
        _plot(result, kind, path, args.lead_hours)
        print(f"wrote {path}")
    if args.csv:
        print(f"wrote {export_csv(result, folder / 'csv')}/ (one CSV per frame)")
    return 0


def manifest_summary(result: RunResult, folder: Path | None = None) -> str:
    """A few lines from the manifest: what ran, on what, with which code."""
    m: dict[str, Any] = result.manifest
    versions = m.get("versions") or {}
    commit = str(versions.get("aidc_git_commit", "unknown"))
    lines = [
        f"{folder or 'result'}: {m.get('scenario')} | controller {m.get('controller_name')} | "
        f"forecast {m.get('forecaster') or '-'} | seed {m.get('seed')}",
        f"  run        {m.get('days'):g} days from {m.get('start')}, plant tick {m.get('plant_tick_minutes'):g} min, "
        f"control every {m.get('control_interval_minutes'):g} min, horizon {m.get('horizon_hours'):g} h",
        f"  solver     {m.get('solver') or '-'}; noise {_noise(m.get('noise'))}; "
        f"bound {'yes' if m.get('bound') else 'no'}",
        f"  recorded   forecasts and plans: {'yes' if m.get('record_plans') else 'no'}",
        f"  code       aidc {versions.get('aidc', '?')} ({commit[:12]}{'+dirty' if commit.endswith('+dirty') else ''}),"
        f" python {versions.get('python', '?')}",
        f"  wall       {m.get('wall_start', '?')} .. {m.get('wall_end', '?')} "
        f"({float(m.get('wall_s', float('nan'))):.1f} s)",
        f"  scenario   sha256 {str(m.get('scenario_sha256', '?'))[:16]}...",
    ]
    return "\n".join(lines)


def _noise(noise: object) -> str:
    if isinstance(noise, dict):
        return "on" if noise.get("enabled", True) else "off"
    return str(noise) if noise is not None else "-"


def _free_name(folder: Path, kind: str, force: bool) -> Path:
    path = folder / f"{kind}.png"
    if force or not path.exists():
        return path
    number = 2
    while (folder / f"{kind}-{number}.png").exists():
        number += 1
    return folder / f"{kind}-{number}.png"


def _check_forecast_record(result: RunResult, lead_h: float) -> None:
    vintages = result.vintages
    if vintages is None or not len(vintages):
        why = ("the run was made with --no-record-plans" if result.manifest.get("record_plans") is False
               else "the controller used no forecasts (a heuristic), or the result predates the record")
        raise _user_error(f"--plot forecast: this result holds no forecasts: {why}")
    leads = vintages["lead_h"].unique()
    if not (abs(leads - lead_h) < 1e-6).any():
        raise _user_error(f"--lead-hours {lead_h:g}: the recorded forecasts have leads "
                          f"{leads.min():g} to {leads.max():g} h in steps of the control interval")


def _plot(result: RunResult, kind: str, path: Path, lead_h: float) -> None:
    from simulator import plots

    if kind == "forecast":
        plots.plot_forecast(result, lead_h=lead_h, path=path)
        return
    function = {"dispatch": plots.plot_dispatch, "soc": plots.plot_soc, "routing": plots.plot_routing,
                "carbon": plots.plot_carbon}[kind]
    function(result, path)


def export_csv(result: RunResult, target: Path) -> Path:
    """Every frame of ``result`` as ``target/<frame>.csv`` (times in ISO 8601 with their UTC offset)."""
    import shutil

    from simulator.results import FRAMES, OPTIONAL_FRAMES

    staging = target.parent / f".{target.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in (*FRAMES, *OPTIONAL_FRAMES):
        frame = getattr(result, name)
        if frame is not None:
            frame.to_csv(staging / f"{name}.csv", index=False)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    sys.stdout.flush()
    return target
