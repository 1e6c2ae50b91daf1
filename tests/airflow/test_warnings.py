"""Our operators drop the deprecation warnings of the libraries they call, and only those:
a warning attributed to the user's code still reaches the task log."""

from __future__ import annotations

import warnings
from typing import Any


def warn_from(module: str, message: str, category: type[Warning] = DeprecationWarning) -> None:
    """Raise a warning that Python attributes to `module`, as that library's code would."""
    code = compile("warnings.warn(message, category, stacklevel=1)", f"<{module}>", "exec")
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
