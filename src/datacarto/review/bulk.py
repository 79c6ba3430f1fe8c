"""Acting on many rows at once: selections, bulk decisions, new classes, merges, undo.

A mixin of :class:`datacarto.review.session.ReviewSession` (it uses the session's rows, labels,
decision log and proposals). Each action is previewed (:meth:`BulkActions.preview`: how many
rows it would change), then written as one batch (:meth:`DecisionLog.append_batch`: one line
per row, then its control lines and its commit) that :meth:`BulkActions.undo` can take back.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .decisions import DecisionLog
from .proposals import ProposalFile
from .selection import filter_mask, in_polygon

__all__ = ["BulkActions", "MAX_CLASS_NAME", "PREVIEW_IDS"]

#: Longest name a new class may have, and ids listed in a bulk action's preview.
MAX_CLASS_NAME = 60
PREVIEW_IDS = 50


class BulkActions:
    """Selections, bulk decisions, new classes, merges and undo for a review session."""

    if TYPE_CHECKING:  # provided by ReviewSession
        n: int
        ids: list[int | str]
        keys: list[str]
        index: dict[str, int]
        classes: list[str]
        label: np.ndarray
        sugg: np.ndarray
        var: np.ndarray
        conf: np.ndarray
        score: np.ndarray
        region: list[str]
        assessment: list[str] | None
        log: DecisionLog
        proposals: ProposalFile
        _write_lock: threading.Lock

        def _row(self, key: str) -> int: ...
        def _target(self, i: int, action: str, label: str | None) -> str | None: ...
        def _check_action(self, action: Any, label: Any) -> None: ...
        def _progress(self) -> dict[str, Any]: ...
        def next_undecided(self, after: int = -1) -> int | None: ...
        def all_classes(self) -> list[str]: ...
        def active_classes(self) -> list[str]: ...
        def current(self, i: int) -> str | None: ...
        def current_labels(self) -> list[str | None]: ...

    def proposal_source(self, pid: str, label: str | None) -> str:
        """Why a single decision taken while stepping through proposal ``pid`` was made."""
        p = self.proposals.get(str(pid))
        if label is not None and label in self.log.added:
            return f"new class {label!r} (proposal {p['number']})"
        return f"proposal {p['number']} ({p['kind']}: {' / '.join(p['classes'])})"

    # ------------------------------------------------------------------ selections
    def select(self, selection: Any) -> tuple[np.ndarray, str]:
        """Rows of a selection and its description, for the log's ``source``.

        ``selection`` is one of ``{"proposal": PID}``, ``{"filter": {"class", "region",
        "assessment", "score_min", "score_max"}}`` (any subset), ``{"lasso": [[x, y], ...]}``
        (a polygon in map units: variability, confidence) or ``{"ids": [...]}``.
        """
        if not isinstance(selection, dict) or len(selection) != 1:
            raise InputError("a selection is exactly one of proposal, filter, lasso or ids.")
        (kind, value), = selection.items()
        if kind == "proposal":
            p = self.proposals.get(str(value))
            if p["kind"] == "add":
                rows = np.array([self.index[k] for k in p["ids"]], dtype=np.int64)
            else:
                labels = self.current_labels()
                rows = np.flatnonzero([lab in p["classes"] for lab in labels])
            return rows, f"proposal {p['number']} ({p['kind']}: {' / '.join(p['classes'])})"
        if kind == "filter":
            return self._filter(value)
        if kind == "lasso":
            pts = value if isinstance(value, list) else []
            if len(pts) < 3 or not all(isinstance(q, list) and len(q) == 2 and all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) for c in q) for q in pts):
                raise InputError("a lasso is a list of at least 3 [variability, confidence] points.")
            return np.flatnonzero(in_polygon(self.var, self.conf, pts)), "lasso on the map"
        if kind == "ids":
            if not isinstance(value, list) or not value:
                raise InputError("'ids' must be a non-empty list of example ids.")
            rows = np.array(sorted({self._row(str(k)) for k in value}), dtype=np.int64)
            return rows, f"{len(rows)} chosen example(s)"
        raise InputError(f"unknown selection {str(kind)[:40]!r}; expected proposal, filter, lasso or ids.")

    def _selected(self, selection: Any, action: str, label: str | None) -> tuple[np.ndarray, str]:
        """:meth:`select`, naming a proposal's members moved to a class created from it."""
        rows, source = self.select(selection)
        if isinstance(selection, dict) and "proposal" in selection and action == "relabel":
            source = self.proposal_source(str(selection["proposal"]), label)
        return rows, source

    def _filter(self, spec: Any) -> tuple[np.ndarray, str]:
        if not isinstance(spec, dict) or set(spec) - {"class", "region", "assessment", "score_min",
                                                      "score_max"}:
            raise InputError("a filter takes class, region, assessment, score_min and score_max.")
        bounds = {}
        for key in ("score_min", "score_max"):
            v = spec.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v != v):
                raise InputError(f"filter {key} must be a number; got {str(v)[:40]!r}.")
            bounds[key] = None if v is None else float(v)
        for key, values in (("class", self.all_classes()), ("region", set(self.region)),
                            ("assessment", set(self.assessment or []))):
            v = spec.get(key)
            if v is not None and v not in values:
                raise InputError(f"filter {key} {str(v)[:60]!r} is not one of {', '.join(sorted(values))}.")
        mask = filter_mask(self.n, labels=self.current_labels(), label=spec.get("class"),
                           regions=self.region, region=spec.get("region"),
                           assessments=self.assessment, assessment=spec.get("assessment"),
                           score=self.score, **bounds)
        parts = [f"{k}={spec[k]}" for k in ("class", "region", "assessment") if spec.get(k) is not None]
        if bounds["score_min"] is not None:
            parts.append(f"score >= {bounds['score_min']:g}")
        if bounds["score_max"] is not None:
            parts.append(f"score <= {bounds['score_max']:g}")
        return np.flatnonzero(mask), "filter " + (", ".join(parts) if parts else "(every example)")

    def _changes(self, rows: np.ndarray, action: str, label: str | None) -> list[int]:
        """The rows whose latest decision the action would change (the others are skipped)."""
        out = []
        for i in rows.tolist():
            dec = self.log.latest.get(self.keys[i])
            if dec is None or dec["action"] != action or dec["new_label"] != self._target(i, action, label):
                out.append(int(i))
        return out

    def preview(self, selection: Any, action: str, label: str | None = None) -> dict[str, Any]:
        """What a bulk action would do: rows selected, rows it would change, a few ids."""
        self._check_action(action, label)
        rows, source = self._selected(selection, action, label)
        todo = self._changes(rows, action, label)
        return {"selected": int(len(rows)), "count": len(todo), "source": source,
                "ids": [self.keys[i] for i in todo[:PREVIEW_IDS]]}

    def bulk(self, selection: Any, action: str, label: str | None = None, *,
             expect: int | None = None) -> dict[str, Any]:
        """Apply one decision to every selected row it changes, as one undoable batch.

        ``expect`` is the count the user confirmed; if the selection now covers another number
        of rows (someone decided meanwhile, the proposals were rewritten), nothing is written.
        """
        self._check_action(action, label)
        with self._write_lock:
            rows, source = self._selected(selection, action, label)
            todo = self._changes(rows, action, label)
            if expect is not None and expect != len(todo):
                raise InputError(f"the selection now changes {len(todo)} example(s), not the {expect} "
                                 "you confirmed; nothing was changed. Preview it again.")
            if not todo:
                raise InputError(f"{source}: no example would change; nothing was written.")
            group = self.log.append_batch(self._records(todo, action, label), source=source)
        return {"action": group, **self._progress(), "next": self.next_undecided()}

    def _records(self, rows: Sequence[int], action: str, label: str | None) -> list[dict[str, Any]]:
        return [{"id": self.ids[i], "old_label": self.classes[self.label[i]], "action": action,
                 "new_label": self._target(i, action, label)} for i in rows]

    # ------------------------------------------------------------------ new classes, merges
    def check_new_name(self, name: Any) -> str:
        """A valid name for a new class (surrounding spaces removed), else InputError."""
        if not isinstance(name, str) or not name.strip():
            raise InputError("a new class needs a name; got an empty one.")
        name = name.strip()
        if len(name) > MAX_CLASS_NAME or any(ord(c) < 32 for c in name):
            raise InputError(f"class name {name[:80]!r}: use at most {MAX_CLASS_NAME} printable characters.")
        taken = {c.casefold(): c for c in self.all_classes()}
        if name.casefold() in taken:
            raise InputError(f"class {taken[name.casefold()]!r} already exists; choose another name.")
        return name

    def create_class(self, name: str, *, proposal: str | None = None,
                     accept_all: bool = False) -> dict[str, Any]:
        """Create a class (optionally from an ``add`` proposal, its members all moved to it).

        One batch: the ``class`` line, then (``accept_all``) a ``relabel`` line per member.
        """
        with self._write_lock:
            name = self.check_new_name(name)
            rows: list[int] = []
            source = f"new class {name!r}"
            if proposal is not None:
                p = self.proposals.get(str(proposal))
                if p["kind"] != "add":
                    raise InputError(f"proposal {p['number']} is a {p['kind']}, not an add; "
                                     "a new class comes from an add proposal.")
                source += f" (proposal {p['number']})"
                if accept_all:
                    rows = [self.index[k] for k in p["ids"]]
            elif accept_all:
                raise InputError("accept_all needs a proposal whose members move to the new class.")
            group = self.log.append_batch(self._records(rows, "relabel", name), source=source,
                                          controls=[{"kind": "class", "name": name}])
        return {"action": group, "name": name, "source": source, **self._progress()}

    def merge(self, a: str, b: str, into: str, *, proposal: str | None = None) -> dict[str, Any]:
        """Merge classes ``a`` and ``b`` into ``into`` (one of them): every row whose current
        label is the other one is relabelled, one line per row, and the other class is retired."""
        with self._write_lock:
            source_note = ""
            if proposal is not None:
                p = self.proposals.get(str(proposal))
                if p["kind"] != "merge" or set(p["classes"]) != {a, b}:
                    raise InputError(f"proposal {p['number']} does not merge {a!r} and {b!r}.")
                source_note = f" (proposal {p['number']})"
            active = self.active_classes()
            for c in (a, b):
                if c not in active:
                    raise InputError(f"class {str(c)[:60]!r} is not a current class "
                                     f"({', '.join(active)}); it may have been merged already.")
            if a == b:
                raise InputError("merge needs two different classes.")
            if into not in (a, b):
                raise InputError(f"the surviving name must be {a!r} or {b!r}; got {str(into)[:60]!r}.")
            other = b if into == a else a
            labels = self.current_labels()
            rows = [i for i in range(self.n) if labels[i] == other]
            source = f"merge {other!r} into {into!r}{source_note}"
            group = self.log.append_batch(self._records(rows, "relabel", into), source=source,
                                          controls=[{"kind": "merge", "from": other, "into": into}])
        return {"action": group, "source": source, **self._progress()}

    def undo(self, group: str) -> dict[str, Any]:
        """Undo a bulk action (InputError if unknown or already undone; nothing written then)."""
        def still_used(info: dict[str, Any]) -> None:
            # a class the action created must not vanish under rows decided outside it
            for name in info["created"]:
                used = [d["id"] for d in self.log.latest.values()
                        if d.get("new_label") == name and d.get("group") != info["group"]]
                if used:
                    raise InputError(f"undo: class {name!r} (created by this action) still holds "
                                     f"{len(used)} example(s) decided after it (e.g. id {used[0]}); "
                                     "give them another label first. Nothing changed.")

        with self._write_lock:
            info = self.log.undo(str(group), check=still_used)
        return {"action": info, **self._progress(), "next": self.next_undecided()}

    def actions(self) -> list[dict[str, Any]]:
        """The bulk actions in the log, newest first."""
        return list(reversed(list(self.log.groups.values())))

    def members(self, pid: str) -> dict[str, Any]:
        """An ``add`` proposal's members with their current labels (to step through them)."""
        p = self.proposals.get(str(pid))
        rows, _ = self.select({"proposal": p["pid"]})
        return {**{k: v for k, v in p.items() if k != "ids"},
                "members": [{"id": self.keys[i], "current": self.current(int(i))} for i in rows]}
