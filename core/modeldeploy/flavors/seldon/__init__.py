"""Seldon Core 1 flavor: model servers are `SeldonDeployment`s (machinelearning.seldon.io/v1)."""
