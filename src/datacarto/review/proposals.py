"""Class proposals for the review page: read ``classes.json`` and give each proposal a stable id.

The file is what ``datacarto classes RUN -o classes.json`` writes::

    {"proposals": [{"kind": "add", "classes": ["neg", "pos"], "ids": [3, 17, ...],
                    "size": 12, "evidence": {...}, "examples": [...], "terms": [...]},
                   {"kind": "merge", "classes": ["neu", "pos"], ...}]}

A proposal's id is a digest of its kind, classes and member ids, so the page can act on it
by id: if the file is written again (a new ``datacarto classes`` run) and the proposal is no
longer in it, acting on the old id is refused with a clear message instead of touching other
rows. The file is read again whenever it changes on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["DEFAULT_NAME", "ProposalFile", "proposal_id", "resolve_path"]

#: Where ``datacarto review`` looks for proposals when none is given: ``RUN/classes.json``.
DEFAULT_NAME = "classes.json"
KINDS = ("add", "merge")


def proposal_id(proposal: Mapping[str, Any]) -> str:
    """A short digest of ``kind``, ``classes`` and the sorted member ids (10 hex digits).

    >>> proposal_id({"kind": "merge", "classes": ["a", "b"]})
    'c61a3b73a4'
    """
    ids = sorted(str(i) for i in proposal.get("ids") or [])
    key = json.dumps([proposal.get("kind"), list(proposal.get("classes") or []), ids])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def _check(path: Path, number: int, p: Any) -> str | None:
    where = f"{path}: proposal {number}"
    if not isinstance(p, dict):
        return f"{where} is not a JSON object"
    if p.get("kind") not in KINDS:
        return f"{where}: 'kind' is {str(p.get('kind'))[:40]!r}; expected add or merge"
    classes = p.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        return f"{where}: 'classes' must be a list of class names"
    if p["kind"] == "merge" and len(classes) != 2:
        return f"{where}: a merge names exactly two classes; got {len(classes)}"
    ids = p.get("ids")
    if p["kind"] == "add" and (not isinstance(ids, list) or not ids or not all(
            isinstance(i, (int, str)) and not isinstance(i, bool) for i in ids)):
        return f"{where}: an add proposal needs 'ids', a non-empty list of example ids"
    return None


class ProposalFile:
    """The proposals of one ``classes.json``, re-read when the file changes.

    Parameters
    ----------
    path : Path or None
        The file; None or a missing file means no proposals.
    known : set of str
        ``str(id)`` of the run's examples; member ids not in it are left out (and counted).
    """

    def __init__(self, path: str | os.PathLike[str] | None, known: set[str]) -> None:
        self.path = None if path is None else Path(path)
        self.known = known
        self.items: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._stamp: tuple[int, int] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if it changed since the last read (mtime and size)."""
        if self.path is None or not self.path.is_file():
            self.items, self.problems, self._stamp = [], [], None
            return
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self.items, self.problems = self._read()

    def _read(self) -> tuple[list[dict[str, Any]], list[str]]:
        assert self.path is not None
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            return [], [f"{self.path}: not a readable proposals file ({err.__class__.__name__}); "
                        "no proposals shown."]
        if not isinstance(doc, dict) or not isinstance(doc.get("proposals"), list):
            return [], [f"{self.path}: expected {{\"proposals\": [...]}}; no proposals shown."]
        items, problems = [], []
        for number, p in enumerate(doc["proposals"], start=1):
            why = _check(self.path, number, p)
            if why is not None:
                problems.append(why + "; skipped.")
                continue
            keys = [str(i) for i in p.get("ids") or []]
            members = [k for k in dict.fromkeys(keys) if k in self.known]
            if p["kind"] == "add" and len(members) < len(keys):
                problems.append(f"{self.path}: proposal {number}: {len(keys) - len(members)} of its "
                                f"{len(keys)} ids are not in this run; left out.")
            items.append({"pid": proposal_id(p), "number": number, "kind": p["kind"],
                          "classes": list(p["classes"]), "ids": members,
                          "size": len(members) if p["kind"] == "add" else p.get("size"),
                          "terms": [str(t) for t in (p.get("terms") or [])][:20],
                          "where": p.get("where") if p.get("where") in ("between", "apart") else "",
                          "evidence": p.get("evidence") if isinstance(p.get("evidence"), dict) else {}})
        return items, problems

    def get(self, pid: str) -> dict[str, Any]:
        """The proposal with id ``pid``; InputError when the (re-read) file no longer has it."""
        self.refresh()
        for p in self.items:
            if p["pid"] == pid:
                return p
        where = self.path.name if self.path is not None else "the proposals file"
        raise InputError(f"proposal {str(pid)[:40]!r} no longer exists in {where} (it was written "
                         f"again and now has {len(self.items)} proposal(s)); reload the page.")

    def summaries(self) -> list[dict[str, Any]]:
        """What the page lists: every field but the member ids (the count is ``size``)."""
        self.refresh()
        return [{k: v for k, v in p.items() if k != "ids"} for p in self.items]


def resolve_path(run_dir: Path, given: str | os.PathLike[str] | None) -> Path | None:
    """``given`` (must exist), else ``RUN/classes.json`` when present, else None."""
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise InputError(f"--proposals {path}: no such file. Write it with "
                             f"`datacarto classes RUN -o {path}`.")
        return path
    default = Path(run_dir) / DEFAULT_NAME
    return default if default.is_file() else None

