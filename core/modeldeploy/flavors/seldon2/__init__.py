"""Seldon Core 2 flavor: model servers are `Model`s (mlops.seldon.io/v1alpha1) on shared
`Server`s, progressive rollouts are `Experiment`s."""
