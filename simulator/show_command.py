"""``aidc show DIR``: the KPIs and manifest of a saved run or sweep, its plots and CSV exports.

Wired into :mod:`simulator.cli`; argparse only at import, the rest inside :func:`run_show`.

* a run folder (``manifest.json``): a summary of the manifest and the main KPIs; ``--by site`` or
  ``--by class`` the KPIs per site or per inference class next to the fleet totals
  (:mod:`simulator.kpis_by_site`); ``--plot KIND`` writes a plot into the folder; ``--csv``
  writes every frame as CSV into ``DIR/csv/``;
* a sweep folder (``runs.parquet``): the summary table of the sweep (mean ± std over seeds) and,
  for a ``compare --runs`` folder, the paired differences (:func:`print_paired_differences`).

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
    parser.add_argument("--by", choices=("site", "class"), action="append",
                        help="KPIs per site or per inference class, with the fleet (once)")
    parser.add_argument("--plot", action="append", choices=PLOTS, metavar="KIND",
                        help=f"write a plot into RESULT_DIR (repeatable): {', '.join(PLOTS)}; an existing file "
                             "is kept and the plot takes the next free name (KIND-2.png) unless --force")
    from simulator.commands import positive_number

    parser.add_argument("--lead-hours", type=positive_number, default=None,
                        help="lead time of the forecast plot, hours (default 6; a multiple of the control interval; "
                             "only with --plot forecast)")
    parser.add_argument("--plot-dir", type=Path, metavar="DIR",
                        help="write the plots into DIR (created if needed) instead of RESULT_DIR")
    parser.add_argument("--csv", action="store_true",
                        help="write every frame as CSV into RESULT_DIR/csv/ (refused if it exists, unless --force; "
                             "--force replaces only the CSV files aidc writes and keeps any other file there)")
    parser.add_argument("--force", action="store_true", help="replace existing plots and aidc's CSV files")
    return parser


def run_show(args: argparse.Namespace) -> int:
    """Print, plot and export as asked (see the module docstring)."""
    folder: Path = args.folder
    if not folder.exists():
        raise FileNotFoundError(2, "No such file or directory", str(folder))
    if not folder.is_dir():
        raise NotADirectoryError(20, "Not a directory (give a result folder)", str(folder))
    _check_options(args)
    if (folder / "manifest.json").is_file():
        return _show_run(folder, args)
    if (folder / "runs.parquet").is_file():
        return _show_sweep(folder, args)
    raise _user_error(f"{folder}: not an aidc result folder (no manifest.json) nor a sweep folder (no runs.parquet)")


def _show_sweep(folder: Path, args: argparse.Namespace) -> int:
    if args.by or args.plot or args.csv:
        raise _user_error(f"{folder}: a sweep folder; --by, --plot and --csv work on one run folder "
                          f"(one of {folder / 'runs'}/*)")

    from simulator.results import ResultFolderError, read_parquet_checked
    from simulator.sweep_command import summary_table

    try:
        runs = read_parquet_checked(folder, "runs.parquet", "incomplete sweep: the file is missing")
    except ResultFolderError as error:
        raise _user_error(str(error)) from None
    scenario = runs["scenario"].iloc[0] if "scenario" in runs.columns and len(runs) else "?"
    print(f"{folder}: sweep of {scenario}, {len(runs)} runs; mean ± std over seeds")
    if len(runs):
        print(summary_table(runs))
        print_paired_differences(runs)
    return 0


def print_paired_differences(runs: Any) -> None:
    """The paired differences of ``aidc compare`` (controller - reference on the same seed, mean
    and 95 % Student-t interval), per scenario variant, when every controller of the variant ran
    one forecast (a ``compare --runs`` folder, or a sweep over controllers only). The reference is
    ``mpc`` when present, else the first controller."""
    from simulator.compare_command import CONFIDENCE, differences_table, paired_differences

    if not {"controller", "seed"} <= set(runs.columns):
        return
    variants = list(dict.fromkeys(runs["variant"])) if "variant" in runs.columns else [None]
    for variant in variants:
        rows = runs if variant is None else runs[runs["variant"] == variant]
        controllers = [str(c) for c in dict.fromkeys(rows["controller"])]
        if len(controllers) < 2 or ("forecast" in rows.columns
                                    and (rows.groupby("controller")["forecast"].nunique() > 1).any()):
            continue
        reference = "mpc" if "mpc" in controllers else controllers[0]
        others = [c for c in controllers if c != reference]
        differences = paired_differences(rows, reference, others)
        if not len(differences):
            continue
        n = int(differences["n"].max())
        where = f" (scenario variant {variant})" if variant is not None and len(variants) > 1 else ""
        interval = f"[{CONFIDENCE:.0%} CI, Student t over the seeds both ran]" if n > 1 else "(one seed: no interval)"
        print(f"\npaired differences vs {reference}{where} (controller - {reference}, same seed): mean {interval}")
        print(differences_table(differences, others))


def _show_run(folder: Path, args: argparse.Namespace) -> int:
    from simulator.results import ResultFolderError, RunResult

    if args.csv:
        _check_csv_target(folder / "csv", args.force)
    plot_dir: Path = args.plot_dir or folder
    if args.plot and plot_dir.exists() and not plot_dir.is_dir():
        raise _user_error(f"--plot-dir {plot_dir}: exists and is not a folder")
    try:
        result = RunResult.load(folder)
    except ResultFolderError as error:
        raise _user_error(str(error)) from None
    except Exception as error:  # any other load failure is a damaged folder, never a traceback
        raise _user_error(f"{folder}: cannot read the result ({type(error).__name__}: "
                          f"{str(error).strip().splitlines()[0] if str(error).strip() else '-'})") from None
    lead_h = 6.0 if args.lead_hours is None else args.lead_hours
    if args.plot and "forecast" in args.plot:
        _check_forecast_record(result, lead_h, folder)
    print(manifest_summary(result, folder))
    if args.by:  # the fleet column holds the totals
        from simulator.kpis_by_site import by_table

        if result.kpis_by is None:
            raise _user_error(f"{folder}: this result has no per-site KPIs (no accounting constants in its manifest)")
        print(by_table(result.kpis_by, args.by[0]))
    else:
        from simulator.commands import format_kpis

        print(format_kpis(result.kpis))
    if args.plot:
        plot_dir.mkdir(parents=True, exist_ok=True)
    for kind in args.plot or ():
        path = _free_name(plot_dir, kind, args.force)
        _plot(result, kind, path, lead_h)
        print(f"wrote {path}")
    if args.csv:
        print(f"wrote {export_csv(result, folder / 'csv')}/ (one CSV per frame)")
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Options that do not go together, refused before any work."""
    if args.by and len(args.by) > 1:
        raise _user_error(f"--by given {len(args.by)} times ({', '.join(args.by)}): give it once")
    if args.lead_hours is not None and "forecast" not in (args.plot or ()):
        raise _user_error("--lead-hours applies only to --plot forecast")
    if args.plot_dir is not None and not args.plot:
        raise _user_error("--plot-dir applies only to --plot")


def _check_csv_target(target: Path, force: bool) -> None:
    """Refuse an existing ``csv/`` without ``force``; with it, refuse anything but a folder."""
    if not target.exists() and not target.is_symlink():
        return
    if not force:
        raise FileExistsError(f"{target}: exists; use --force to replace the CSV files aidc writes there")
    if not target.is_dir():
        raise _user_error(f"{target}: exists and is not a folder; --force replaces only CSV files inside a csv/ folder")


def manifest_summary(result: RunResult, folder: Path | None = None) -> str:
    """A few lines from the manifest: what ran, on what, with which code."""
    m: dict[str, Any] = result.manifest
    versions = m.get("versions") or {}
    commit = str(versions.get("aidc_git_commit", "unknown"))
    lines = [
        f"{folder or 'result'}: {m.get('scenario')} | controller {m.get('controller_name')} | "
        f"forecast {m.get('forecaster') or '-'} | seed {m.get('seed')}",
        f"  run        {_days(m.get('days'))} from {m.get('start')}, plant tick {m.get('plant_tick_minutes'):g} min, "
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


def _days(days: object) -> str:
    if not isinstance(days, int | float):
        return f"{days} days"
    return f"{days:g} day" if days == 1 else f"{days:g} days"


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


def _check_forecast_record(result: RunResult, lead_h: float, folder: Path) -> None:
    """Refuse ``--plot forecast`` on a result without the record, saying why in this case."""
    vintages = result.vintages
    if vintages is None or not len(vintages):
        raise _user_error(f"--plot forecast: {folder}: {no_forecasts_reason(result.manifest, folder)}")
    if result.signals is None or not len(result.signals):
        raise _user_error(f"{folder}: incomplete result: the realised signals are missing (signals.parquet)")
    leads = vintages["lead_h"].unique()
    if not (abs(leads - lead_h) < 1e-6).any():
        raise _user_error(f"--lead-hours {lead_h:g}: the recorded forecasts have leads "
                          f"{leads.min():g} to {leads.max():g} h in steps of the control interval")


def no_forecasts_reason(manifest: dict[str, Any], folder: Path) -> str:
    """Why a result folder holds no forecast vintages, true to the case (one phrase)."""
    from simulator.sweep import RUN_MARKER

    recorded = manifest.get("record_plans")
    if recorded is None:
        return "no forecasts recorded: the result predates the forecast record"
    if recorded is False and (folder / RUN_MARKER).is_file():
        return ("no forecasts recorded: runs of `aidc sweep` and `aidc compare --runs` do not record forecasts "
                "or plans; repeat this run alone with `aidc run ... --out DIR` to record them")
    if recorded is False:
        return "no forecasts recorded: the run was made with --no-record-plans"
    if not manifest.get("forecaster"):
        return f"no forecasts recorded: the controller {manifest.get('controller_name')} uses no forecasts"
    return "incomplete result: the recorded forecasts are missing (vintages.parquet)"


def _plot(result: RunResult, kind: str, path: Path, lead_h: float) -> None:
    from simulator import plots

    if kind == "forecast":
        plots.plot_forecast(result, lead_h=lead_h, path=path)
        return
    function = {"dispatch": plots.plot_dispatch, "soc": plots.plot_soc, "routing": plots.plot_routing,
                "carbon": plots.plot_carbon}[kind]
    function(result, path)


def export_csv(result: RunResult, target: Path) -> Path:
    """Every frame of ``result`` as ``target/<frame>.csv`` (times in ISO 8601 with their UTC offset).

    Only the files ``<frame>.csv`` are written, each atomically (a temporary file, then a rename);
    any other file in ``target`` is left as it is.
    """
    import os

    from simulator.results import FRAMES, OPTIONAL_FRAMES

    target.mkdir(parents=True, exist_ok=True)
    for name in (*FRAMES, *OPTIONAL_FRAMES):
        frame = getattr(result, name)
        if frame is not None:
            temporary = target / f".{name}.csv.tmp"
            try:
                frame.to_csv(temporary, index=False)
                os.replace(temporary, target / f"{name}.csv")
            finally:
                temporary.unlink(missing_ok=True)
    sys.stdout.flush()
    return target
