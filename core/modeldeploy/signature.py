"""Signature safety: will clients of the serving model still work with the candidate?

An in-place update or a traffic shift hands the candidate every request the clients of
the serving model send. `check_compatible` compares the two MLflow model signatures and
replays the serving model's saved input example through the candidate, before anything is
written. Breaking changes (an input removed or renamed, a new required input, a type
narrowed, any change of the outputs) are spelled out; additive ones (a new optional input,
a type widened) are only noted. Used by `continuous_deploy` and by progressive strategies.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from modeldeploy.errors import InvalidConfigError
from modeldeploy.registry import ModelRegistry, _first_line

logger = logging.getLogger("modeldeploy")

#: numeric types from narrowest to widest; moving right is widening
_WIDTH = {"boolean": 0, "integer": 1, "long": 2, "float": 3, "double": 4}


class SignatureReport(BaseModel):
    """How the candidate's signature relates to the serving model's."""

    compatible: bool
    #: changes that break clients of the serving model, one sentence each
    breaking: list[str] = []
    #: changes clients do not notice (new optional inputs, widened types)
    additive: list[str] = []
    #: whether signatures were compared (False: one of them has none, or was unreadable)
    compared: bool = True
    #: whether the serving model's input example was replayed through the candidate
    replayed: bool = False
    #: one line for the decision's reason and the logs
    note: str = ""


class SignatureChangeError(InvalidConfigError):
    """The candidate would break the serving model's clients; `report` spells it out."""

    def __init__(self, message: str, report: SignatureReport) -> None:
        super().__init__(message)
        self.report = report


def check_compatible(
    serving_uri: str,
    candidate_uri: str,
    tracking_uri: str | None = None,
    replay: bool = True,
) -> SignatureReport:
    """Compare the signatures of two MLflow models; replay the serving input example.

    `tracking_uri` resolves `runs:/` and `models:/` URIs. A model without a signature,
    or one that cannot be read from here (say, an `s3://` URI without credentials), is not
    judged: the report says so and stays compatible.
    """
    remote = [uri for uri in (serving_uri, candidate_uri) if not _readable_here(uri)]
    if remote:
        return SignatureReport(
            compatible=True,
            compared=False,
            note=f"signatures not compared: {remote[0]} is read by the serving platform, "
            "not from here",
        )
    with _tracking(tracking_uri):
        try:
            serving, candidate = _load_model_meta(serving_uri), _load_model_meta(candidate_uri)
        except Exception as exc:  # any reader error means "cannot judge from here"
            return SignatureReport(
                compatible=True,
                compared=False,
                note=f"signatures not compared: {_first_line(exc)}",
            )
        if serving.signature is None or candidate.signature is None:
            which = "serving model" if serving.signature is None else "candidate"
            return SignatureReport(
                compatible=True, compared=False, note=f"signatures not compared: the {which} "
                "has none (log it with a signature or an input_example)",
            )  # fmt: skip
        breaking, additive = diff_signatures(
            serving.signature.to_dict(), candidate.signature.to_dict()
        )
        replayed = False
        if replay and not breaking:
            failure, replayed = _replay(serving_uri, candidate_uri)
            if failure:
                breaking.append(failure)
    parts = []
    if breaking:
        parts.append("breaking: " + "; ".join(breaking))
    if additive:
        parts.append("additive: " + "; ".join(additive))
    if not parts:
        parts.append("unchanged")
    if replayed:
        parts.append("the serving model's input example replayed through the candidate")
    return SignatureReport(
        compatible=not breaking,
        breaking=breaking,
        additive=additive,
        replayed=replayed,
        note="signature " + ", ".join(parts),
    )


def diff_signatures(
    serving: dict[str, Any], candidate: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(breaking, additive) changes between two `ModelSignature.to_dict()` forms."""
    breaking: list[str] = []
    additive: list[str] = []
    old_inputs, new_inputs = _specs(serving.get("inputs")), _specs(candidate.get("inputs"))
    for name, old in old_inputs.items():
        new = new_inputs.get(name)
        if new is None:
            breaking.append(f"input {name!r} ({_type(old)}) was removed or renamed")
            continue
        change = _type_change(old, new)
        if change == "narrowed" or change == "changed":
            breaking.append(f"input {name!r} type {change} from {_type(old)} to {_type(new)}")
        elif change == "widened":
            additive.append(f"input {name!r} widened from {_type(old)} to {_type(new)}")
        if not old.get("required", True) and new.get("required", True):
            breaking.append(f"input {name!r} became required")
    for name, new in new_inputs.items():
        if name in old_inputs:
            continue
        if new.get("required", True):
            breaking.append(f"new required input {name!r} ({_type(new)})")
        else:
            additive.append(f"new optional input {name!r} ({_type(new)})")
    old_outputs, new_outputs = _specs(serving.get("outputs")), _specs(candidate.get("outputs"))
    if old_outputs != new_outputs:
        breaking.append(
            f"outputs changed from {_describe(old_outputs)} to {_describe(new_outputs)}"
        )
    return breaking, additive


def _specs(raw: Any) -> dict[str, dict[str, Any]]:
    """Column or tensor specs by name (unnamed ones by position) from a signature dict."""
    import json

    specs = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return {str(spec.get("name", f"#{i}")): dict(spec) for i, spec in enumerate(specs)}


def _type(spec: dict[str, Any]) -> str:
    if "tensor-spec" in spec:
        tensor = spec["tensor-spec"]
        return f"tensor {tensor.get('dtype')} {tensor.get('shape')}"
    return str(spec.get("type"))


def _type_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    before, after = _type(old), _type(new)
    if before == after:
        return None
    if before in _WIDTH and after in _WIDTH:
        return "widened" if _WIDTH[after] > _WIDTH[before] else "narrowed"
    return "changed"


def _describe(specs: dict[str, dict[str, Any]]) -> str:
    return "[" + ", ".join(f"{name}: {_type(spec)}" for name, spec in specs.items()) + "]"


def _readable_here(uri: str) -> bool:
    """Local paths and the tracking server's own URIs; storage (s3://, gs://...) is not
    read from here: that needs the platform's credentials, and may be far away."""
    from urllib.parse import urlsplit

    scheme = urlsplit(uri).scheme
    return scheme in ("", "file", "runs", "models", "mlflow-artifacts") or len(scheme) == 1


def _load_model_meta(uri: str) -> Any:
    from mlflow.models import Model

    return Model.load(uri)


def _replay(serving_uri: str, candidate_uri: str) -> tuple[str | None, bool]:
    """(failure, replayed): run the serving model's input example through the candidate."""
    import mlflow.pyfunc

    try:
        example = _input_example(serving_uri)
    except Exception as exc:  # unreadable from here: not judged
        logger.info("input example of %s not replayed: %s", serving_uri, _first_line(exc))
        return None, False
    if example is None:
        return None, False
    try:
        mlflow.pyfunc.load_model(candidate_uri).predict(example)
    except Exception as exc:  # the candidate's own failure is what the user must see
        return (
            f"the candidate failed on the serving model's input example: {_first_line(exc)}",
            True,
        )
    return None, True


def _input_example(uri: str) -> Any:
    from mlflow.models import Model

    local = Path(uri)
    if not local.is_dir():
        from mlflow.artifacts import download_artifacts

        local = Path(download_artifacts(artifact_uri=uri))
    return Model.load(str(local)).load_input_example(str(local))


@contextlib.contextmanager
def _tracking(tracking_uri: str | None) -> Iterator[None]:
    if tracking_uri is None:
        yield
        return
    with ModelRegistry(tracking_uri).using_tracking_uri():
        yield
