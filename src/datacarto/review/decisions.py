"""The review audit log: ``RUN/review/decisions.jsonl``, append-only and fsynced.

One JSON object per line, in the order decisions were made::

    {"time": "2025-01-31T12:00:00.123456+00:00", "id": 17, "old_label": "neg",
     "action": "accept", "new_label": "pos"}

``action`` is one of :data:`ACTIONS`: ``accept`` (take the suggested label), ``relabel``
(another label chosen by the reviewer), ``keep`` (the label stays; ``new_label`` equals
``old_label``) or ``drop`` (remove the example; ``new_label`` is null). The latest line for
an id wins, so a reviewer can change their mind; nothing is ever rewritten or deleted. A
decision may carry ``source`` (why, in words: ``"new class 'mixed' (proposal 1)"``).

Bulk actions (a selection, a new class, a merge) are one decision line per row, each with
the action's ``group`` id and ``source``, followed by control lines (a ``kind`` key, no
``id``)::

    {"kind": "class", "group": "9f3a0c1e", "name": "mixed", ...}   a class created
    {"kind": "merge", "group": "9f3a0c1e", "from": "neu", "into": "neg", ...}
    {"kind": "commit", "group": "9f3a0c1e", "rows": 12, "source": "...", ...}
    {"kind": "undo", "group": "9f3a0c1e", ...}                     written later, on undo

A group counts only once its ``commit`` line is in the file, and not after an ``undo`` line
names it: the whole batch goes out in one fsynced write with the commit last, so a crash
mid-batch leaves row lines without a commit, which :meth:`DecisionLog.load` reports and
ignores. The state (latest decision per id, classes created, classes merged away) is always
recomputed from the file, so a reload shows exactly what was saved.

Durability: each append is one ``write`` on a file opened with ``O_APPEND``, followed by
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
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError

try:  # POSIX only; on other platforms the thread lock alone serialises writers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ACTIONS", "CONTROL_KINDS", "DecisionLog", "LOG_NAME", "REVIEW_DIR"]

ACTIONS = ("accept", "relabel", "keep", "drop")
#: Kinds of the control lines of a bulk action (see the module docstring).
CONTROL_KINDS = ("class", "merge", "commit", "undo")
REVIEW_DIR = "review"
LOG_NAME = "decisions.jsonl"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _text(record: dict[str, Any], key: str) -> bool:
    return isinstance(record.get(key), str) and bool(record[key])


def _control_problem(record: dict[str, Any]) -> str | None:
    kind = record["kind"]
    if kind not in CONTROL_KINDS:
        return f"'kind' is {str(kind)[:40]!r}; expected one of {', '.join(CONTROL_KINDS)}"
    if not _text(record, "group"):
        return f"a {kind!r} line needs a 'group'"
    if kind == "class" and not _text(record, "name"):
        return "a 'class' line needs a 'name'"
    if kind == "merge" and not (_text(record, "from") and _text(record, "into")):
        return "a 'merge' line needs 'from' and 'into'"
    if kind == "commit" and (isinstance(record.get("rows"), bool) or not isinstance(record.get("rows"), int)):
        return "a 'commit' line needs 'rows'"
    return None


def _problem(record: Any) -> str | None:
    """Why a parsed line is neither a decision nor a control line, or None when it is one."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    if not isinstance(record.get("time"), str) and "kind" in record:
        return "no 'time'"
    if "kind" in record:
        return _control_problem(record)
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
    if "group" in record and not _text(record, "group"):
        return "'group' must be a non-empty string"
    return None


def new_group_id() -> str:
    """A fresh id for a bulk action (8 hex digits)."""
    return secrets.token_hex(4)


class DecisionLog:
    """Append-only decision log with resume; one instance per server, safe across threads.

    Parameters
    ----------
    path : str or Path
        The ``decisions.jsonl`` file; its directory is created on the first append.

    Attributes
    ----------
    latest : dict
        ``str(id)`` -> the latest decision for that id that counts (its group, if any,
        committed and not undone).
    groups : dict
        group id -> ``{"group", "source", "rows", "time", "undone", "created"}`` for committed
        bulk actions, in the order they were made (``undone``: the undo's time or None;
        ``created``: the classes it created).
    added : list of str
        Classes created by bulk actions that count, in the order they were created.
    merged : dict
        Class merged away -> the class that absorbed it, for merges that count.
    problems : list of str
        One message per skipped line (or interrupted bulk action) found by :meth:`load`.

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
        self.groups: dict[str, dict[str, Any]] = {}
        self.added: list[str] = []
        self.merged: dict[str, str] = {}
        self.problems: list[str] = []
        self.count = 0
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def load(self) -> DecisionLog:
        """Read the file (if any): keep valid lines, report and skip the others."""
        with self._lock:
            self._records, self.problems = [], []
            if self.path.is_file():
                self._parse(self.path.read_bytes())
            self._replay(report=True)
        return self

    def _parse(self, raw: bytes) -> None:
        lines = raw.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
                why = _problem(record)
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                why = f"not valid JSON ({err.__class__.__name__}: {err})"
            if why is not None:
                last = lineno == len(lines)
                hint = (" (probably cut off by a crash while it was written)"
                        if last and not raw.endswith(b"\n") else "")
                self.problems.append(f"{self.path} line {lineno}: {why}{hint}; skipped, "
                                     "earlier decisions are kept.")
                continue
            self._records.append(record)

    def _replay(self, *, report: bool = False) -> None:
        """Recompute the state from the valid lines: only committed, not undone groups count."""
        committed = {r["group"]: r for r in self._records if r.get("kind") == "commit"}
        undone = {r["group"]: r["time"] for r in self._records if r.get("kind") == "undo"
                  and r["group"] in committed}
        self.latest, self.added, self.merged, self.count = {}, [], {}, 0
        created: dict[str, list[str]] = {}
        for r in self._records:
            if r.get("kind") == "class":
                created.setdefault(r["group"], []).append(r["name"])
        self.groups = {g: {"group": g, "source": r.get("source", ""), "rows": r["rows"],
                           "time": r["time"], "undone": undone.get(g), "created": created.get(g, [])}
                       for g, r in committed.items()}
        pending: dict[str, list[dict[str, Any]]] = {}
        for record in self._records:
            group = record.get("group")
            if group is not None and group not in committed:
                pending.setdefault(group, []).append(record)
                continue
            if group is not None and group in undone:
                continue
            self._apply(record)
        if report:
            for group, records in pending.items():
                source = next((r.get("source") for r in records if r.get("source")), "")
                self.problems.append(
                    f"{self.path}: bulk action {group}{f' ({source})' if source else ''} was "
                    f"interrupted: {len(records)} line(s) but no closing 'commit' line; ignored "
                    "(nothing of it applies), redo it if it is still wanted.")

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind is None:
            self.latest[str(record["id"])] = record
            self.count += 1
        elif kind == "class" and record["name"] not in self.added:
            self.added.append(record["name"])
        elif kind == "merge":
            self.merged[record["from"]] = record["into"]

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
        record.pop("group", None)  # a single decision is never part of a bulk action
        why = _problem(record)
        if why is not None:
            raise InputError(f"DecisionLog.append: {why}.")
        with self._lock:
            self._write([record])
            self._records.append(record)
            self._apply(record)
        return record

    def append_batch(self, decisions: Iterable[dict[str, Any]], *, source: str,
                     controls: Iterable[dict[str, Any]] = (), group: str | None = None) -> dict[str, Any]:
        """Record a bulk action: one line per row, the control lines, then its commit line.

        ``decisions`` are dicts with ``id``, ``old_label``, ``action``, ``new_label`` (and any
        extra fields); ``controls`` are ``class``/``merge`` lines without ``group``/``time``.
        Everything goes out in one fsynced write, commit last; returns the group's summary.
        Raises InputError (nothing written) if any line is not valid.
        """
        group = group or new_group_id()
        now = _now()
        rows = [{"time": now, **d, "group": group, "source": source} for d in decisions]
        extra = [{"time": now, **c, "group": group} for c in controls]
        commit = {"time": now, "kind": "commit", "group": group, "rows": len(rows), "source": source}
        batch = [*rows, *extra, commit]
        for record in batch:
            why = _problem(record)
            if why is not None:
                raise InputError(f"DecisionLog.append_batch: {why}.")
        with self._lock:
            if group in self.groups:
                raise InputError(f"bulk action {group!r} is already in the log.")
            self._write(batch)
            self._records.extend(batch)
            for record in (*rows, *extra):
                self._apply(record)
            self.groups[group] = {"group": group, "source": source, "rows": len(rows), "time": now,
                                  "undone": None, "created": [c["name"] for c in extra
                                                              if c.get("kind") == "class"]}
            return dict(self.groups[group])

    def undo(self, group: str, *, check: Any = None) -> dict[str, Any]:
        """Undo a committed bulk action (one fsynced ``undo`` line); returns its summary.

        ``check(summary)``, called under the lock before writing, may raise to refuse.
        Raises InputError, nothing written, for an unknown group or one already undone.
        """
        with self._lock:
            info = self.groups.get(group)
            if info is None:
                raise InputError(f"undo: no bulk action {str(group)[:40]!r} in {self.path.name}; "
                                 "reload the page to see the current actions.")
            if info["undone"] is not None:
                raise InputError(f"undo: bulk action {group} ({info['source']}) was already undone "
                                 f"at {info['undone']}; nothing changed.")
            if check is not None:
                check(info)
            record = {"time": _now(), "kind": "undo", "group": group}
            self._write([record])
            self._records.append(record)
            self._replay()
            return dict(self.groups[group])

    def _write(self, records: list[dict[str, Any]]) -> None:
        """One write + fsync of whole lines (called with the thread lock held)."""
        data = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records)
        line = data.encode("utf-8")
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
