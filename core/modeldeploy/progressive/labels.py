"""Live accuracy or error per variant from delayed labels.

Labels of live requests usually arrive late (a fraud verdict, a click, the real demand).
The platform logs what each variant answered by request id (`TrafficStatus.predictions_url`:
the local router keeps the latest answers and returns each request's id to the client in
`x-request-id`). At every step's analysis the answers of the step's window are joined with
the labels the user's source knows by then, giving `live_accuracy` (classification) or
`live_rmse` / `live_mae` (regression) and `labelled` (rows joined) per variant. Too few
labels yet: the figures stay unmeasured, so a rule on them makes the step inconclusive.

A label source is one of: an HTTP(S) `url` answering GET with a JSON object
{request_id: label}; a local `file` with such an object, or JSON lines
{"request_id": ..., "label": ...}; a `function` "package.module:name" called with the
list of request ids and returning a mapping. A label is one value for a one-row request,
or a list with one value per row.
"""

from __future__ import annotations

import importlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modeldeploy.errors import InvalidConfigError, PlatformError
from modeldeploy.progressive.scoring import Task, predictions_of, score
from modeldeploy.redaction import redact

LIVE_METRICS = ("live_accuracy", "live_rmse", "live_mae", "labelled")
_HTTP_TIMEOUT = 10.0
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
LabelFunction = Callable[[list[str]], Mapping[str, Any]]


class LabelSource(BaseModel):
    """Where delayed labels come from (exactly one of `url`, `file`, `function`)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    file: Path | None = None
    function: str | None = None
    task: Task = "classification"
    #: fewer labelled rows than this for a variant leaves its live figures unmeasured
    min_labels: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> LabelSource:
        given = [n for n in ("url", "file", "function") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "analysis.labels needs exactly one of url (GET answering {request_id: label}), "
                f"file (JSON or JSON lines) or function ('module:name'); got {given or 'none'}"
            )
        if self.url is not None:
            parts = urllib.parse.urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"analysis.labels.url {self.url!r} is not an http(s) URL")
            if parts.username or parts.password or redact(self.url) != self.url:
                raise ValueError(
                    "analysis.labels.url must not carry credentials (the rollout state is "
                    "saved as JSON); serve labels without them or use a function source"
                )
        if self.function is not None and not _IMPORT_STRING.match(self.function):
            raise ValueError(
                f"analysis.labels.function {self.function!r} is not an import string such "
                "as 'mypackage.labels:fetch'"
            )
        return self

    def check(self) -> None:
        """Before anything changes: the function imports, the file's folder exists."""
        if self.function is not None:
            self.resolve()
        if self.file is not None and not self.file.parent.is_dir():
            raise InvalidConfigError(
                f"analysis.labels.file {self.file} is in a folder that does not exist; "
                "create it (the file itself may appear later, as labels arrive)"
            )

    def resolve(self) -> LabelFunction:
        assert self.function is not None
        module_name, _, name = self.function.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise InvalidConfigError(
                f"analysis.labels.function {self.function!r} cannot be imported: {exc}; "
                "install the module where the rollout runs (worker, triggerer, flow)"
            ) from None
        if not callable(found):
            raise InvalidConfigError(f"analysis.labels.function {self.function!r} is not callable")
        return found  # type: ignore[no-any-return]

    def labels_for(self, request_ids: list[str]) -> Mapping[str, Any]:
        """The labels known now for these ids (others may simply not have arrived)."""
        if self.function is not None:
            found = self.resolve()(request_ids)
            if not isinstance(found, Mapping):
                raise PlatformError(
                    f"analysis.labels.function {self.function!r} returned "
                    f"{type(found).__name__}; it must return a mapping request_id -> label"
                )
            return found
        if self.file is not None:
            return _read_file(self.file)
        assert self.url is not None
        body = _get(self.url, "labels")
        try:
            answered = json.loads(body)
        except ValueError:
            answered = None
        if not isinstance(answered, dict):
            raise PlatformError(
                f"the label source {self.url} did not answer a JSON object {{request_id: label}}"
            )
        return answered


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}  # no label has arrived yet
    except OSError as exc:
        raise PlatformError(f"cannot read analysis.labels.file {path}: {exc}") from None
    try:
        found = json.loads(text)
    except ValueError:
        found = None  # JSON lines, or broken: told below
    if isinstance(found, dict) and not {"request_id", "label"} <= found.keys():
        return {str(k): v for k, v in found.items()}
    try:
        return _from_lines(json.loads(line) for line in text.splitlines() if line.strip())
    except (ValueError, TypeError, KeyError) as exc:
        raise PlatformError(
            f"analysis.labels.file {path} is neither a JSON object {{request_id: label}} nor "
            f'JSON lines {{"request_id": ..., "label": ...}}: {exc!r}'
        ) from None


def _from_lines(items: Iterable[Any]) -> dict[str, Any]:
    return {str(item["request_id"]): item["label"] for item in items}


def _get(url: str, what: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PlatformError(f"cannot read {what} at {url}: {exc}") from None


def logged_answers(predictions_url: str, since: float) -> list[dict[str, Any]]:
    """The answers the platform logged since `since` (wall-clock seconds)."""
    sep = "&" if "?" in predictions_url else "?"
    text = _get(f"{predictions_url}{sep}since={since:.6f}", "logged predictions")
    answers = []
    for line in text.splitlines():
        try:
            answers.append(json.loads(line))
        except ValueError:
            continue  # an answer that was not JSON cannot be scored
    return answers


def join(source: LabelSource, answers: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per variant: the live figures of its answers that have labels now."""
    usable = [a for a in answers if a.get("answer") is not None and 200 <= a["status"] < 300]
    ids = sorted({str(a["request_id"]) for a in usable})
    labels = source.labels_for(ids) if ids else {}
    pairs: dict[str, tuple[list[Any], list[Any]]] = defaultdict(lambda: ([], []))
    for answer in usable:
        label = labels.get(str(answer["request_id"]))
        if label is None:
            continue
        predicted = predictions_of(answer["answer"])
        wanted = label if isinstance(label, list) else [label]
        if len(wanted) != len(predicted):
            continue  # a label that does not fit the request's rows is not guessed at
        predictions, truths = pairs[answer["variant"]]
        predictions.extend(predicted)
        truths.extend(wanted)
    figures: dict[str, dict[str, float | None]] = {}
    for variant, (predictions, truths) in pairs.items():
        enough = len(truths) >= source.min_labels
        scored = score(source.task, predictions, truths) if enough else {}
        figures[variant] = {
            "labelled": float(len(truths)),
            **{f"live_{name}": value for name, value in scored.items()},
        }
    return figures


def live_figures(
    source: LabelSource, predictions_url: str | None, since: float
) -> dict[str, dict[str, float | None]]:
    """Join the step's logged answers with the labels known now; nothing without a log."""
    if predictions_url is None:
        return {}
    return join(source, logged_answers(predictions_url, since))
