"""KServe flavor: model servers are `InferenceService` objects (serving.kserve.io/v1beta1)."""
