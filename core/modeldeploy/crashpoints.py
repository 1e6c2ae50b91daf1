"""Named points of a rollout where a test can make the process die (SIGKILL) on purpose.

Crash-consistency is tested with real processes: a subprocess runs a rollout with
`MODELDEPLOY_TEST_CRASH_AT=<step>` and kills itself at that step, then the next run must
find alias and serving in agreement. Unset (always, outside tests), this costs one lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "MODELDEPLOY_TEST_CRASH_AT"
#: the steps of `continuous_deploy`, in order
STEPS = ("registered", "written", "ready", "promoted")


def crash_point(step: str) -> None:
    """Die here, as a power cut or `kill -9` would, if the test asked for this step."""
    if os.environ.get(CRASH_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
