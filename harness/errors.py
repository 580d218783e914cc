"""Errors a user can cause. The CLI prints the message of any of these on one line and exits
with the error's `exit_code`: 2 for a mistake in what was asked, 1 where the ask was right but
there is nothing to give (an empty report, a store that cannot be written)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Base of every error caused by the user's input, files or environment."""

    exit_code = 2


class SpecError(HarnessError):
    """An experiment file or a `--set` override is wrong."""


class DataError(HarnessError):
    """A dataset is missing, corrupt, or does not fit the experiment."""


class ModelFileError(HarnessError):
    """A saved model cannot be read, or does not fit the data it is used on."""


class TrackingError(HarnessError):
    """The tracking store cannot be reached or used."""


class NothingToReport(HarnessError):
    """What was asked for is not in the store (yet): nothing to report."""

    exit_code = 1


def suggest(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """' (did you mean "x"?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{prefix}{close[0]}"?)' if close else ""


def unknown_name(kind: str, name: object, known: Iterable[str], key: str | None = None) -> str:
    """The message for a name looked up in a registry that does not hold it."""
    known = sorted(known)
    where = f"{key}: " if key else ""
    hint = suggest(name, known) if isinstance(name, str) else ""
    return f"{where}unknown {kind} {name!r}{hint}; known: {', '.join(known)}"
