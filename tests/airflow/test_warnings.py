"""Our operators drop the deprecation warnings of the libraries they call, and only those:
a warning attributed to the user's code still reaches the task log."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import sysconfig
import warnings
from typing import Any

import pytest

from tests.conftest import SavedModels


def warn_from(
    module: str,
    message: str,
    category: type[Warning] = DeprecationWarning,
    filename: str | None = None,
) -> None:
    """Raise a warning that Python attributes to `module` (in file `filename`), as that
    library's code would."""
    code = compile(
        "warnings.warn(message, category, stacklevel=1)", filename or f"<{module}>", "exec"
    )
    exec(code, {"__name__": module, "warnings": warnings, "message": message, "category": category})


def shown(body: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        body()
    return [str(w.message) for w in caught]


def test_dependency_deprecations_are_dropped_but_user_warnings_show(airflow_db: Any) -> None:
    from modeldeploy_provider.quiet import quiet_dependencies

    def body() -> None:
        with quiet_dependencies():
            warn_from("mlflow.store.tracking.sqlalchemy_store", "mlflow noise")
            warn_from("airflow.sdk.definitions.asset", "airflow noise", FutureWarning)
            warn_from("modeldeploy.registry", "our own call", PendingDeprecationWarning)
            warn_from("my_dags.train", "the user's own deprecation")
            warn_from("mlflow.models", "not a deprecation", UserWarning)
        warn_from("mlflow.models", "mlflow outside our operators")

    assert shown(body) == [
        "the user's own deprecation",
        "not a deprecation",
        "mlflow outside our operators",
    ]


def test_installed_libraries_deprecations_are_summarised_in_one_line(
    airflow_db: Any, caplog: Any
) -> None:
    from modeldeploy_provider.quiet import quiet_dependencies

    library = f"{sysconfig.get_path('purelib')}/skops/io/_utils.py"

    def body() -> None:
        with quiet_dependencies():
            for name in ("zetac", "erf", "gamma"):
                warn_from("skops.io._utils", f"timezone.{name}", FutureWarning, library)
            warn_from("skops.io._utils", "a library's own problem", UserWarning, library)
            warn_from("my_dags.train", "the user's deprecation", filename="/dags/train.py")

    with caplog.at_level(logging.INFO, logger="modeldeploy_provider.quiet"):
        assert shown(body) == ["a library's own problem", "the user's deprecation"]
    assert [r.getMessage() for r in caplog.records] == [
        "3 deprecation warning(s) raised inside installed libraries during this call were not "
        "shown (3x FutureWarning in skops/io/_utils.py)"
    ]


#: a fresh interpreter, as a task's: Airflow loaded, warnings logged as Airflow logs them,
#: then our signature replay loads a skops-format model (skops is imported there first)
REPLAY = """
import json, logging, sys
import airflow.sdk
from modeldeploy_provider.operators import modeldeploy
from modeldeploy_provider.quiet import quiet_dependencies
from modeldeploy.signature import check_compatible

logging.captureWarnings(True)
lines = []
class Collect(logging.Handler):
    def emit(self, record):
        lines.append((record.name, record.getMessage()))
logging.getLogger().addHandler(Collect())
logging.getLogger().setLevel(logging.INFO)
assert "skops.io" not in sys.modules
with quiet_dependencies():
    report = check_compatible(sys.argv[1], sys.argv[2])
print(json.dumps({"replayed": report.replayed, "skops": "skops.io" in sys.modules, "lines": lines}))
"""


@pytest.mark.slow  # a fresh interpreter loads Airflow, then skops (~20 s)
def test_loading_a_skops_model_after_airflow_logs_one_line(
    airflow_db: Any, saved_models: SavedModels
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", REPLAY, str(saved_models.first), str(saved_models.second)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["replayed"] and result["skops"]
    warned = [message for logger, message in result["lines"] if logger == "py.warnings"]
    assert warned == [], warned[:3]
    (summary,) = [m for _, m in result["lines"] if "were not shown" in m]
    assert "DeprecatedImportWarning in skops/io/_utils.py" in summary, summary


def test_every_operator_runs_quietly(airflow_db: Any) -> None:
    from modeldeploy_provider.operators import modeldeploy as operators
    from modeldeploy_provider.sensors.modeldeploy import ModelServerReadySensor

    classes = [
        operators.DeployModelOperator,
        operators.ModelGateOperator,
        operators.StartModelServerOperator,
        operators.StopModelServerOperator,
        operators.DeleteModelServerOperator,
        operators.RollbackModelOperator,
        ModelServerReadySensor,
    ]
    for cls in classes:
        for name in ("execute", "execute_complete", "poke"):
            fn = getattr(cls, name, None)
            if fn is not None and name in {
                n
                for c in cls.__mro__
                for n in vars(c)
                if c.__module__.startswith("modeldeploy_provider")
            }:
                assert getattr(fn, "__quiet__", False), f"{cls.__name__}.{name} is not quiet"
