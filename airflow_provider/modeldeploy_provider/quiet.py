"""Keep the task log about the task: our calls' dependency deprecation warnings are dropped.

MLflow, Airflow, SQLAlchemy and friends warn about their own deprecations whenever our
engine calls them (a first MLflow store, a registry lookup...), and those lines are noise
to a DAG author, who can do nothing about them. While one of our operators runs, warnings
of the deprecation kind are ignored when Python attributes them to one of those libraries
or to modeldeploy itself. Loading a model imports its flavor's library (skops, xgboost...),
whose import-time probes can raise thousands of deprecation warnings (skops looks up each
scipy ufunc in every loaded module, meeting Airflow's deprecated-import shims): deprecation
warnings attributed to any installed library's file are counted and summarised in one log
line instead. A warning attributed to the user's own code (their DAG folder, a model's
`code_paths`, even when our operator calls it, e.g. a model's `predict`) still shows, as
does every warning raised outside our operators.
"""

from __future__ import annotations

import functools
import logging
import site
import sysconfig
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)

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
#: where installed libraries live (the standard library and every site-packages)
LIBRARY_DIRS = tuple(
    sorted(
        {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
        | set(site.getsitepackages())
    )
)


def library_path(filename: str) -> str | None:
    """`filename` inside the installed libraries (e.g. `skops/io/_utils.py`), or None when
    it is not an installed library's file (the user's own code)."""
    inside = [
        filename[len(directory) :].lstrip("/")
        for directory in LIBRARY_DIRS
        if filename.startswith(directory.rstrip("/") + "/")
    ]
    return min(inside, key=len) if inside else None


@contextmanager
def quiet_dependencies() -> Iterator[None]:
    """Ignore the dependencies' deprecation warnings raised inside the block and summarise
    other libraries' in one line (see above)."""
    dropped: Counter[str] = Counter()
    with warnings.catch_warnings():
        show = warnings.showwarning  # whatever Airflow or logging installed

        def show_unless_library(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            where = library_path(filename) if issubclass(category, QUIETED_CATEGORIES) else None
            if where is not None:
                dropped[f"{category.__name__} in {where}"] += 1
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = show_unless_library
        for category in QUIETED_CATEGORIES:
            warnings.filterwarnings("ignore", category=category, module=_MODULES)
        try:
            yield
        finally:
            if dropped:
                logger.info(
                    "%d deprecation warning(s) raised inside installed libraries during this "
                    "call were not shown (%s)",
                    dropped.total(),
                    ", ".join(f"{n}x {where}" for where, n in dropped.most_common(3)),
                )


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
