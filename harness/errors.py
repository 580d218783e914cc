"""Errors a user can cause. The CLI prints the message of any of these on one line and exits
with the error's `exit_code`: 2 for a mistake in what was asked, 1 where the ask was right but
there is nothing to give (an empty report, a store that cannot be written)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path


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


MAX_NAME_BYTES = 255  # one component of a path, on every common file system
MAX_PATH_BYTES = 4096


def usable_path(path: str | os.PathLike, what: str, error: type[HarnessError]) -> Path:
    """`path` with `~` expanded, or one `error` naming `what` where no file system could hold it: a
    component over 255 bytes, a NUL, over 4096 bytes in all, or `~someone` who is not a user here
    (Python's own words for these are an OSError or a RuntimeError, each a traceback)."""
    text = os.fspath(path)
    if "\0" in text:
        raise error(f"{what} {text!r} holds a NUL character")
    try:
        expanded = Path(text).expanduser()
    except RuntimeError:  # ~someone without a home here
        raise error(f"{what} {text[:80]!r}: {text.split('/')[0][:80]} is not a user of this machine") from None
    longest = max((len(os.fsencode(part)) for part in expanded.parts), default=0)
    if longest > MAX_NAME_BYTES or len(os.fsencode(expanded)) > MAX_PATH_BYTES:
        raise error(f"{what} {text[:60]!r}... is too long for a file system: at most {MAX_NAME_BYTES} bytes a "
                    f"name and {MAX_PATH_BYTES} in all")
    return expanded


def writable_folder(out: Path, what: str) -> Path:
    """The folder `out`, made if needed; a `HarnessError` naming `what` goes there if it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".harness-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise HarnessError(f"cannot write {what} to {out}: {e.strerror or e}") from None
    return out
