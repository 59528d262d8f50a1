"""Progress bars that suit where the output goes: shown on a terminal only, never with ``--quiet``.

A redirected log (``make run > log``) gets no carriage-return lines: tqdm's ``disable=None``
turns a bar off when its stream (stderr) is not a TTY.
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(quiet: bool = False, **kwargs: Any) -> Any:
    """A :class:`tqdm.tqdm` bar on stderr (keyword arguments passed on), disabled when ``quiet``
    or when stderr is not a terminal. A disabled bar accepts every call and prints nothing."""
    from tqdm import tqdm

    kwargs.setdefault("file", sys.stderr)
    return tqdm(disable=True if quiet else None, **kwargs)
