"""Progressive delivery: strategies, the analysis of each step, and the runner that walks
a rollout one step at a time from a JSON-ready state (see docs/progressive-delivery.md)."""
