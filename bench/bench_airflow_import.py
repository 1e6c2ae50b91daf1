"""What importing the Airflow provider costs a DAG file, beside cncf.kubernetes' pod operator.

Each figure is the median over fresh interpreters of the time and resident memory that
importing the modules adds, measured two ways:

- over ``import airflow.sdk`` (the issue's baseline; ``airflow.sdk`` loads its names lazily,
  so this also counts the Task SDK's operator machinery that any operator import pulls in);
- over a DAG file's usual first line, ``from airflow.sdk import DAG, BaseOperator,
  BaseSensorOperator, BaseHook, dag, task`` (what is left is ours alone).

It also lists which heavy libraries (mlflow, kubernetes, sklearn, pandas, numpy) end up in
``sys.modules`` (target: none). The cncf.kubernetes provider is not a dependency of the
project; pass ``--cncf-python`` with the interpreter of a virtualenv that has it (and the
same Airflow) to measure ``KubernetesPodOperator`` the same way, e.g.::

    uv venv /tmp/cncf-venv --python 3.11
    uv pip install --compile-bytecode --python /tmp/cncf-venv apache-airflow==3.3.2 \\
        apache-airflow-providers-cncf-kubernetes
    .venv/bin/python bench/bench_airflow_import.py --cncf-python /tmp/cncf-venv/bin/python

(Without ``--compile-bytecode`` uv leaves no ``.pyc`` files and every import compiles again,
which makes the pod operator look five times slower than it is.)

Run: .venv/bin/python bench/bench_airflow_import.py [--runs N] [--cncf-python PATH]
(`make bench` runs it without arguments; set CNCF_PYTHON to include the comparison.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import median, print_table

ROOT = Path(__file__).resolve().parents[1]
TIME_TARGET_MS = 50.0
MEMORY_TARGET_MIB = 10.0
HEAVY = ("mlflow", "kubernetes", "sklearn", "pandas", "numpy")
OURS = (
    "modeldeploy_provider.operators.modeldeploy",
    "modeldeploy_provider.sensors.modeldeploy",
    "modeldeploy_provider.hooks.modeldeploy",
)
POD_OPERATOR = ("airflow.providers.cncf.kubernetes.operators.pod",)
BASELINES = {
    "import airflow.sdk": "import airflow.sdk",
    "DAG-file names": (
        "from airflow.sdk import DAG, BaseHook, BaseOperator, BaseSensorOperator, dag, task"
    ),
}

PROBE = """
import importlib, json, sys, time

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

{baseline}
before_modules = set(sys.modules)
start, memory = time.perf_counter(), rss()
for name in {modules!r}:
    importlib.import_module(name)
seconds, added = time.perf_counter() - start, rss() - memory
print(json.dumps({{
    "seconds": seconds,
    "rss": added,
    "modules": len(set(sys.modules) - before_modules),
    "heavy": sorted(h for h in {heavy!r} if h in sys.modules),
}}))
"""


def measure(python: str, baseline: str, modules: tuple[str, ...], runs: int) -> dict:
    code = PROBE.format(baseline=baseline, modules=modules, heavy=HEAVY)
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONWARNINGS": "ignore",
        }
        samples = []
        for _ in range(runs):
            out = subprocess.run(
                [python, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
            )
            if out.returncode != 0:
                raise SystemExit(f"probe failed in {python}:\n{out.stderr[-3000:]}")
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "ms": median([s["seconds"] * 1000 for s in samples]),
        "mib": median([s["rss"] / 2**20 for s in samples]),
        "modules": median([s["modules"] for s in samples]),
        "heavy": samples[-1]["heavy"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--cncf-python",
        default=os.environ.get("CNCF_PYTHON"),
        help="interpreter of a venv with apache-airflow-providers-cncf-kubernetes "
        "(default: $CNCF_PYTHON)",
    )
    args = parser.parse_args(argv)

    rows: list[tuple[str, str, str, bool | None]] = []
    results = {}
    for label, baseline in BASELINES.items():
        ours = measure(sys.executable, baseline, OURS, args.runs)
        results[label] = ours
        rows.append(
            (
                f"provider modules, time over `{label}`",
                f"{ours['ms']:.1f} ms",
                f"< {TIME_TARGET_MS:.0f} ms",
                ours["ms"] < TIME_TARGET_MS,
            )
        )
        rows.append(
            (
                f"provider modules, memory over `{label}`",
                f"{ours['mib']:.1f} MiB ({ours['modules']:.0f} modules)",
                f"< {MEMORY_TARGET_MIB:.0f} MiB",
                ours["mib"] < MEMORY_TARGET_MIB,
            )
        )
    heavy = results["import airflow.sdk"]["heavy"]
    rows.append(("heavy libraries imported", ", ".join(heavy) or "none", "none", not heavy))

    if args.cncf_python:
        for label, baseline in BASELINES.items():
            pod = measure(args.cncf_python, baseline, POD_OPERATOR, args.runs)
            rows.append(
                (
                    f"cncf.kubernetes pod operator, time over `{label}`",
                    f"{pod['ms']:.1f} ms",
                    "(comparison)",
                    None,
                )
            )
            rows.append(
                (
                    f"cncf.kubernetes pod operator, memory over `{label}`",
                    f"{pod['mib']:.1f} MiB ({pod['modules']:.0f} modules)",
                    "(comparison)",
                    None,
                )
            )
            if label == "import airflow.sdk":
                pod_heavy = ", ".join(pod["heavy"]) or "none"
                rows.append(("cncf.kubernetes heavy libraries", pod_heavy, "(comparison)", None))
    else:
        rows.append(
            ("cncf.kubernetes pod operator", "not measured", "pass --cncf-python PATH", None)
        )

    print_table(f"Airflow provider import cost (median of {args.runs} fresh interpreters)", rows)
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
