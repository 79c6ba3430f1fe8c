"""The review audit log: ``RUN/review/decisions.jsonl``, append-only and fsynced.

One JSON object per line, in the order decisions were made::

    {"time": "2025-01-31T12:00:00.123456+00:00", "id": 17, "old_label": "neg",
     "action": "accept", "new_label": "pos"}

``action`` is one of :data:`ACTIONS`: ``accept`` (take the suggested label), ``relabel``
(another label chosen by the reviewer), ``keep`` (the label stays; ``new_label`` equals
``old_label``) or ``drop`` (remove the example; ``new_label`` is null). The latest line for
an id wins, so a reviewer can change their mind; nothing is ever rewritten or deleted.

Durability: each decision is one ``write`` on a file opened with ``O_APPEND``, followed by
``fsync``, before the caller is told it succeeded; a thread lock and, where the platform has
it, ``flock`` keep concurrent writers (two browser tabs, two servers) from interleaving.
A crash can therefore lose at most the decision being written, which then shows up as a
truncated last line: :meth:`DecisionLog.load` reports it and skips it, keeps every earlier
decision, and the next append starts on a fresh line.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError

try:  # POSIX only; on other platforms the thread lock alone serialises writers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ACTIONS", "DecisionLog", "LOG_NAME", "REVIEW_DIR"]

ACTIONS = ("accept", "relabel", "keep", "drop")
REVIEW_DIR = "review"
LOG_NAME = "decisions.jsonl"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _problem(record: Any) -> str | None:
    """Why a parsed line is not a decision, or None when it is one."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    rid = record.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (int, str)):
        return "no valid 'id'"
    if record.get("action") not in ACTIONS:
        return f"'action' is {record.get('action')!r}; expected one of {', '.join(ACTIONS)}"
    new = record.get("new_label")
    if record["action"] == "drop":
        if new is not None:
            return "a 'drop' must have new_label null"
    elif not isinstance(new, str):
        return f"'new_label' must be a class name for action {record['action']!r}"
    if not isinstance(record.get("time"), str):
        return "no 'time'"
    return None


class DecisionLog:
    """Append-only decision log with resume; one instance per server, safe across threads.

    Parameters
    ----------
    path : str or Path
        The ``decisions.jsonl`` file; its directory is created on the first append.

    Attributes
    ----------
    latest : dict
        ``str(id)`` -> the latest valid decision for that id.
    problems : list of str
        One message per skipped line found by :meth:`load`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "decisions.jsonl")
    >>> _ = log.append(id=3, old_label="neg", action="accept", new_label="pos")
    >>> DecisionLog(log.path).load().latest["3"]["new_label"]
    'pos'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.latest: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.count = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def load(self) -> DecisionLog:
        """Read the file (if any): keep valid lines, report and skip the others."""
        with self._lock:
            self.latest, self.problems, self.count = {}, [], 0
            if not self.path.is_file():
                return self
            raw = self.path.read_bytes()
            lines = raw.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                last = lineno == len(lines)
                try:
                    record = json.loads(line.decode("utf-8"))
                    why = _problem(record)
                except (UnicodeDecodeError, json.JSONDecodeError) as err:
                    why = f"not valid JSON ({err.__class__.__name__}: {err})"
                    record = None
                if why is not None:
                    hint = (" (probably cut off by a crash while it was written)"
                            if last and not raw.endswith(b"\n") else "")
                    self.problems.append(f"{self.path} line {lineno}: {why}{hint}; skipped, "
                                         "earlier decisions are kept.")
                    continue
                self.latest[str(record["id"])] = record
                self.count += 1
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self.latest.values()))

    def __len__(self) -> int:
        return len(self.latest)

    # ------------------------------------------------------------------ writing
    def append(self, *, id: int | str, old_label: str, action: str,  # noqa: A002 - the log's field
               new_label: str | None, **extra: Any) -> dict[str, Any]:
        """Record one decision durably (written and fsynced) and return it.

        Raises InputError for an unknown action or a label that does not fit it.
        """
        record = {"time": _now(), "id": id, "old_label": old_label, "action": action,
                  "new_label": new_label, **extra}
        why = _problem(record)
        if why is not None:
            raise InputError(f"DecisionLog.append: {why}.")
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        with self._lock:
            created = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                with _file_lock(fd):
                    size = os.fstat(fd).st_size
                    # a line cut off by a crash must not swallow this one
                    if size and _last_byte(fd, size) != b"\n":
                        line = b"\n" + line
                    _write_all(fd, line)
                    os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
            self.latest[str(id)] = record
            self.count += 1
        return record


def _last_byte(fd: int, size: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, 1, size - 1)
    with open(os.dup(fd), "rb") as fh:  # pragma: no cover - platforms without pread
        fh.seek(size - 1)
        return fh.read(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def _file_lock(fd: int) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
