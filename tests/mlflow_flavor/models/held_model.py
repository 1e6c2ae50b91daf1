"""A pyfunc model for router tests: answers 7 per row; `hold` blocks it, `fail` breaks it.

Both are files in the folder named by MODELDEPLOY_TEST_CONTROL, so a test steers a live
scoring server without timing.
"""

import os
import time
from pathlib import Path

import mlflow.pyfunc
from mlflow.models import set_model


class Held(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        control = Path(os.environ["MODELDEPLOY_TEST_CONTROL"])
        while (control / "hold").exists():
            time.sleep(0.01)
        if (control / "fail").exists():
            raise RuntimeError("the challenger is failing on purpose")
        return [7] * len(model_input)


set_model(Held())
