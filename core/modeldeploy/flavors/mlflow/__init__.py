"""The embedded default flavor: MLflow's own scoring server as a local daemon."""
