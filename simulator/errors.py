"""Errors a user can cause, shared by the command modules (no imports, so no cycles)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the command's input, reported by ``aidc`` as one line without a traceback."""
