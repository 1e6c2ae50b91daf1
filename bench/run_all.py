"""Run every benchmark in this folder (`bench_*.py`), one after another.

`make bench`. Among them bench_triggerer.py (500 deferred waits in one event loop, issue 13).
Each prints its own table, each figure beside its target. The machines are
shared and noisy: read the ratios (measured in the same run) before the absolute figures.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n# {script.name}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)])
        print(f"({script.name}: {time.monotonic() - started:.0f} s)", flush=True)
        if result.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
