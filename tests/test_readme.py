"""The README's commands run as written, in order, in a fresh shell."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(1)) for m in re.finditer(rf"```{language}\n(.*?)```", README, flags=re.S)]


def test_aidc_is_on_the_path_before_the_first_bare_aidc_command():
    activate = README.index("source .venv/bin/activate")
    bare = [start for start, block in _blocks("sh") if re.search(r"^\s*aidc ", block, flags=re.M)]
    assert bare and activate < min(bare)


def test_the_python_example_writes_where_no_earlier_command_did():
    (python_start, python_block), = [b for b in _blocks("python") if "simulate(" in b[1]]
    earlier_outs = {out for start, block in _blocks("sh") if start < python_start
                    for out in re.findall(r"--out\s+(\S+)", block)}
    saved = set(re.findall(r"""\.save\(["']([^"']+)["']""", python_block))
    swept = set(re.findall(r"""run_sweep\([^,]+,\s*["']([^"']+)["']""", python_block))
    assert saved and not (saved | swept) & earlier_outs
