"""Label Studio round trip: suspects out as tasks with pre-annotations, annotations back as
review decisions.

Out (:func:`tasks_for`, :func:`label_config`): one task per example, ``data`` holding the
example (``text``, or ``image``: a data URI of its thumbnail for pixel data / its image file),
its run id (``datacarto_id``) and given label; ``predictions`` holding the run's suggested label
with ``label_error_score`` as the score. The labelling config is one single-choice ``Choices``
whose choices are the run's classes.

Back (:func:`decisions_from_export`): a Label Studio JSON export (a list of tasks with their
``annotations``). Rule for several annotations of one task: cancelled (skipped) annotations are
ignored; of the others the latest wins (``updated_at``, then ``created_at``, then the annotation
id); a task whose annotations disagree is counted in ``conflicts``. The chosen label becomes a
``keep`` decision when it is the given label, else ``relabel``. Every id and label is checked
before anything is written: an id the run does not have (an export from another project) or a
label that is not a class is an :class:`~datacarto.errors.InputError`.

The server (:class:`Client`) is spoken to through its REST API with ``urllib`` (``Token``
authorisation), so no client library is needed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["Client", "ImportResult", "decisions_from_export", "label_config", "tasks_for"]

#: The control and object names of the labelling config, shared by tasks, predictions and import.
FROM_NAME = "label"
ID_KEY = "datacarto_id"
MODEL_VERSION = "datacarto"


def label_config(classes: Sequence[str], *, kind: str = "text") -> str:
    """The labelling config XML: the example (``kind`` ``"text"`` or ``"image"``) and one
    single choice among ``classes``.

    >>> print(label_config(["neg", "pos"]))  # doctest: +ELLIPSIS
    <View>
      <Text name="text" value="$text"/>
      <Choices name="label" toName="text" choice="single" showInLine="true">
        <Choice value="neg"/>
    ...
    """
    tag = "Image" if kind == "image" else "Text"
    choices = "".join(f"    <Choice value={quoteattr(str(c))}/>\n" for c in classes)
    return (f'<View>\n  <{tag} name="{kind}" value="${kind}"/>\n'
            f'  <Choices name="{FROM_NAME}" toName="{kind}" choice="single" showInLine="true">\n'
            f"{choices}  </Choices>\n</View>\n")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def tasks_for(rows: pd.DataFrame, examples: Sequence[str | None], *, kind: str = "text") -> list[dict[str, Any]]:
    """Label Studio tasks for ``rows`` (columns ``id``, ``label_name``,
    ``suggested_label_name``, ``label_error_score``), ``examples[i]`` the text or image URI of
    row i; each task carries the suggested label as a prediction scored by
    ``label_error_score``."""
    tasks = []
    for (_, row), example in zip(rows.iterrows(), examples):
        tasks.append({
            "data": {kind: example if example is not None else "", ID_KEY: _plain(row["id"]),
                     "given_label": str(row["label_name"])},
            "predictions": [{
                "model_version": MODEL_VERSION, "score": round(float(row["label_error_score"]), 6),
                "result": [{"from_name": FROM_NAME, "to_name": kind, "type": "choices",
                            "value": {"choices": [str(row["suggested_label_name"])]}}]}],
        })
    return tasks


@dataclass
class ImportResult:
    """What :func:`decisions_from_export` found: the decisions to append and the counts."""

    decisions: list[dict[str, Any]]
    tasks: int = 0
    unannotated: int = 0
    cancelled: int = 0
    conflicts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        relabel = sum(d["action"] == "relabel" for d in self.decisions)
        text = (f"{len(self.decisions)} decision(s) from {self.tasks} task(s): {relabel} relabel, "
                f"{len(self.decisions) - relabel} keep; {self.unannotated} without an annotation, "
                f"{self.cancelled} skipped")
        if self.conflicts:
            text += (f"; {len(self.conflicts)} task(s) with disagreeing annotations (the latest "
                     f"wins): ids {', '.join(self.conflicts[:5])}{' ...' if len(self.conflicts) > 5 else ''}")
        return text


def _choice(annotation: Mapping[str, Any], where: str) -> str | None:
    for item in annotation.get("result") or []:
        if item.get("type") == "choices" and item.get("from_name", FROM_NAME) == FROM_NAME:
            chosen = (item.get("value") or {}).get("choices") or []
            if len(chosen) != 1:
                raise InputError(f"{where}: expected one chosen label, got {chosen!r}.")
            return str(chosen[0])
    return None


def _order(annotation: Mapping[str, Any]) -> tuple[str, str, int]:
    return (str(annotation.get("updated_at") or ""), str(annotation.get("created_at") or ""),
            int(annotation.get("id") or 0))


def decisions_from_export(export: Any, *, labels: Mapping[str, str], classes: Sequence[str],
                          source: str = "export") -> ImportResult:
    """Review decisions from a Label Studio JSON export (rule in the module docstring).

    Parameters
    ----------
    export : list of dict
        The export: tasks with ``data[datacarto_id]`` and ``annotations``.
    labels : mapping
        ``str(id)`` -> the run's given label name, for every example of the run.
    classes : sequence of str
        The run's classes (plus any created in the review).
    source : str
        Where the export came from, for messages.

    Raises
    ------
    InputError
        Not a list of tasks; a task without ``datacarto_id`` or with an id the run does not
        have; a chosen label that is not a class.
    """
    if not isinstance(export, list):
        raise InputError(f"{source}: not a Label Studio JSON export (expected a list of tasks, "
                         f"got {type(export).__name__}).")
    known = set(map(str, classes))
    result = ImportResult(decisions=[], tasks=len(export))
    for n, task in enumerate(export):
        where = f"{source} task {task.get('id', n) if isinstance(task, dict) else n}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or ID_KEY not in data:
            raise InputError(f"{where}: no data.{ID_KEY}; this export does not come from tasks "
                             "written by datacarto export labelstudio.")
        run_id = data[ID_KEY]
        key = str(run_id)
        if key not in labels:
            raise InputError(f"{where}: id {run_id!r} is not an example of this run (an export "
                             "from another project or run?).")
        live = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        result.cancelled += len(task.get("annotations") or []) - len(live)
        chosen = [(a, _choice(a, f"{where} annotation {a.get('id')}")) for a in live]
        chosen = [(a, c) for a, c in chosen if c is not None]
        if not chosen:
            result.unannotated += 1
            continue
        for _, label in chosen:
            if label not in known:
                raise InputError(f"{where}: label {label!r} is not a class of the run "
                                 f"({', '.join(map(str, classes))}).")
        if len({c for _, c in chosen}) > 1:
            result.conflicts.append(key)
        annotation, label = max(chosen, key=lambda ac: _order(ac[0]))
        old = labels[key]
        result.decisions.append({"id": run_id, "old_label": old,
                                 "action": "keep" if label == old else "relabel",
                                 "new_label": label,
                                 "labelstudio_task": task.get("id"),
                                 "labelstudio_annotation": annotation.get("id")})
    return result


class Client:
    """The few Label Studio REST calls datacarto needs (``Authorization: Token T``).

    An unreachable server or a refused token is an :class:`~datacarto.errors.InputError`.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise InputError(f"{self.url}: the Label Studio server refused the token "
                                 f"(HTTP {err.code}); give a valid --token.") from err
            detail = err.read()[:200].decode("utf-8", "replace")
            raise InputError(f"{self.url}: {method} {path} failed (HTTP {err.code}: "
                             f"{' '.join(detail.split())}).") from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise InputError(f"{self.url}: cannot reach the Label Studio server ({reason}).") from err
        return json.loads(raw) if raw else None

    def check(self) -> None:
        """Fail early on a wrong URL or token (nothing is created)."""
        self._call("GET", "/api/projects", query={"page_size": "1"})

    def create_project(self, title: str, config: str) -> int:
        """Create a project with the labelling ``config``; returns its id."""
        return int(self._call("POST", "/api/projects", {"title": title, "label_config": config})["id"])

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Import ``tasks`` (with their predictions); returns how many the server took."""
        answer = self._call("POST", f"/api/projects/{project}/import", tasks)
        return int((answer or {}).get("task_count", len(tasks)))

    def export(self, project: int) -> list[dict[str, Any]]:
        """The project's tasks with their annotations (Label Studio's JSON export)."""
        return self._call("GET", f"/api/projects/{project}/export", query={"exportType": "JSON"})
