"""Errors that end a command with a clear message and a documented exit code (never a traceback)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNSAFE = 3  # failed, and the fleet is not on one healthy version: a human must look


class RollwrightError(Exception):
    """Base error: its message is shown to the user as is."""

    exit_code = EXIT_FAILED


class BadInput(RollwrightError):
    """The user gave something we cannot accept (spec, arguments, environment): exit 2."""

    exit_code = EXIT_BAD_INPUT
