"""Flows of the modeldeploy collection."""

from prefect_modeldeploy.flows.continuous_deployment import continuous_deployment

__all__ = ["continuous_deployment"]
