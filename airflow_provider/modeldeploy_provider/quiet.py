"""Keep the task log about the task: our calls' dependency deprecation warnings are dropped.

MLflow, Airflow, SQLAlchemy and friends warn about their own deprecations whenever our
engine calls them (a first MLflow store, a registry lookup...), and those lines are noise
to a DAG author, who can do nothing about them. While one of our operators runs, warnings
of the deprecation kind are ignored when Python attributes them to one of those libraries
or to modeldeploy itself. A warning attributed to any other module (the user's own code,
even when our operator calls it, e.g. a model's `predict`) still shows, as does every
warning raised outside our operators.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: modules whose deprecation warnings our calls cause and the DAG author cannot act on
QUIETED_MODULES = (
    "modeldeploy",
    "modeldeploy_provider",
    "mlflow",
    "airflow",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "starlette",
    "fastapi",
    "google.protobuf",
    "pkg_resources",
    "setuptools",
    "kubernetes",
    "urllib3",
)
QUIETED_CATEGORIES: tuple[type[Warning], ...] = (
    DeprecationWarning,
    PendingDeprecationWarning,
    FutureWarning,
)
_MODULES = r"(" + "|".join(m.replace(".", r"\.") for m in QUIETED_MODULES) + r")(\..*)?$"


@contextmanager
def quiet_dependencies() -> Iterator[None]:
    """Ignore the dependencies' deprecation warnings raised inside the block (see above)."""
    with warnings.catch_warnings():
        for category in QUIETED_CATEGORIES:
            warnings.filterwarnings("ignore", category=category, module=_MODULES)
        yield


def quietly(fn: F) -> F:
    """Run `fn` inside `quiet_dependencies`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with quiet_dependencies():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class QuietDependenciesMixin:
    """Operators that mix this in run `execute`, `execute_complete` and `poke` quietly."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("execute", "execute_complete", "poke"):
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "__quiet__", False):
                wrapped = quietly(fn)
                wrapped.__quiet__ = True
                setattr(cls, name, wrapped)
