"""A pyfunc model for router tests: answers 7 per row; `hold` blocks it, `fail` breaks it.

All are files in the folder named by MODELDEPLOY_TEST_CONTROL, so a test steers a live
scoring server without timing:

- `hold` blocks every prediction, `hold-<pid>` only those of the scoring server `<pid>`;
  each blocked prediction shows as a file `held-<pid>-<n>` while it waits;
- `hold-load` blocks loading the model (a slow load), shown as `loading-<pid>` meanwhile;
- `fail` makes every prediction raise.
"""

import itertools
import os
import time
from pathlib import Path

import mlflow.pyfunc
from mlflow.models import set_model

_COUNTER = itertools.count()


def _wait_while(gate: Path, marker: Path) -> None:
    if not gate.exists():
        return
    marker.touch()
    try:
        while gate.exists():
            time.sleep(0.01)
    finally:
        marker.unlink(missing_ok=True)


class Held(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        control = Path(os.environ["MODELDEPLOY_TEST_CONTROL"])
        _wait_while(control / "hold-load", control / f"loading-{os.getpid()}")

    def predict(self, context, model_input, params=None):
        control = Path(os.environ["MODELDEPLOY_TEST_CONTROL"])
        while (control / "hold").exists():
            time.sleep(0.01)
        pid = os.getpid()
        _wait_while(control / f"hold-{pid}", control / f"held-{pid}-{next(_COUNTER)}")
        if (control / "fail").exists():
            raise RuntimeError("the challenger is failing on purpose")
        return [7] * len(model_input)


set_model(Held())
