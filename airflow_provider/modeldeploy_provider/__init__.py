"""Apache Airflow provider for modeldeploy: hooks, operators, sensor, trigger and extra link.

Importing this package or its operator, sensor and hook modules is cheap: the engine's
heavy dependencies (mlflow, kubernetes, scikit-learn) load when a task runs.
"""

from __future__ import annotations

from modeldeploy_provider.get_provider_info import get_provider_info

__all__ = ["get_provider_info"]
