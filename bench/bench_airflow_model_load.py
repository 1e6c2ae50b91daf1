"""What loading a skops-format model costs a deploy task's log once Airflow is loaded.

The deploy's signature replay loads the serving and candidate models in the task's
process; the first skops-format model imports skops, which looks up every scipy ufunc in
every loaded module and meets Airflow's deprecated-import shims (a warning each). Each fresh
interpreter loads Airflow and our operators, sends warnings to a log handler as a task
does, then runs the replay (`modeldeploy.signature.check_compatible`) once as a bare call
and once inside `modeldeploy_provider.quiet.quiet_dependencies` (what our operators do).
It prints the log lines and seconds of each.

Run: .venv/bin/python bench/bench_airflow_model_load.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import median, print_table

#: our call's log lines: at most the one summary line
LINES_TARGET = 1

SAVE = """
import sys
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

features, target = load_iris(return_X_y=True, as_frame=True)
options = dict(
    input_example=features.head(3),
    pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
)
model = LogisticRegression(max_iter=500).fit(features, target)
mlflow.sklearn.save_model(model, sys.argv[1], **options)
model = DummyClassifier(strategy="constant", constant=2).fit(features, target)
mlflow.sklearn.save_model(model, sys.argv[2], **options)
"""

PROBE = """
import contextlib, json, logging, sys, time
import airflow.sdk
from modeldeploy_provider.operators import modeldeploy
from modeldeploy_provider.quiet import quiet_dependencies
from modeldeploy.signature import check_compatible

logging.captureWarnings(True)
handler = logging.StreamHandler(sys.stderr)  # a task log's handler writes each record
handler.setLevel(logging.INFO)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
lines = []
class Count(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())
logging.getLogger().addHandler(Count())
block = quiet_dependencies() if sys.argv[3] == "quiet" else contextlib.nullcontext()
start = time.perf_counter()
with block:
    report = check_compatible(sys.argv[1], sys.argv[2])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "lines": len(lines), "replayed": report.replayed}))
"""


def probe(first: Path, second: Path, mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(first), str(second), mode],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["replayed"], "the replay did not run: nothing was measured"
    return {"seconds": float(result["seconds"]), "lines": float(result["lines"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh interpreters per mode")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "first", Path(tmp) / "second"
        subprocess.run(
            [sys.executable, "-c", SAVE, str(first), str(second)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        results = {
            mode: [probe(first, second, mode) for _ in range(args.runs)]
            for mode in ("bare", "quiet")
        }
    rows: list[tuple[str, str, str, bool | None]] = []
    for mode, runs in results.items():
        lines = median([r["lines"] for r in runs])
        seconds = median([r["seconds"] for r in runs])
        met = lines <= LINES_TARGET if mode == "quiet" else None
        rows.append((f"{mode}: log lines", f"{lines:g}", f"<= {LINES_TARGET}", met))
        rows.append((f"{mode}: replay seconds", f"{seconds:.2f}", "-", None))
    print_table(f"Signature replay of a skops model after Airflow (median of {args.runs})", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
