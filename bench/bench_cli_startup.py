"""Start-up cost of the `modeldeploy` console script and of `import modeldeploy`.

- `modeldeploy models list`, wall time of the whole process, median of several runs:
  against an empty MODELDEPLOY_HOME and against one with a running MLflow server
  (target under 1 s)
- `python -c "import modeldeploy"` minus `python -c pass`, median of several runs, and the
  heavy libraries (mlflow, pandas, sklearn, requests, kubernetes) that either command
  imports, read from `python -X importtime` (target: none)

Run: .venv/bin/python bench/bench_cli_startup.py [--runs N] [--no-server]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
HEAVY = ("mlflow", "pandas", "sklearn", "requests", "kubernetes")
LIST_TARGET_S = 1.0
CORE_IMPORT_TARGET_S = 0.1


def modeldeploy() -> list[str]:
    script = Path(PY).parent / "modeldeploy"
    return [str(script)] if script.exists() else [PY, "-m", "modeldeploy.cli.main"]


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELDEPLOY_", "MLFLOW_"))}
    env["MODELDEPLOY_HOME"] = str(home)
    return env


def wall(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    """Top-level packages from HEAVY that `python -X importtime ...` reports loading."""
    result = subprocess.run(
        [PY, "-X", "importtime", *argv], env=env, capture_output=True, text=True, cwd=ROOT
    )
    loaded = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return sorted(loaded & set(HEAVY))


@contextlib.contextmanager
def one_running_server(home: Path) -> Iterator[str]:
    """Deploy a small sklearn model through the core API; delete it afterwards."""
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from modeldeploy.flavors import create_deployer
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(features, target)
    model_dir = home.parent / "model"
    mlflow.sklearn.save_model(
        model,
        model_dir,
        signature=infer_signature(features, model.predict(features)),
        pip_requirements=["scikit-learn"],
    )
    deployer = create_deployer(
        "mlflow", {"home": home, "tracking_uri": f"sqlite:///{home / 'mlflow.db'}"}
    )
    server = deployer.deploy_model(
        {"model_name": "bench-cli", "model_uri": str(model_dir)}, timeout=300
    )
    try:
        yield str(server.uuid)
    finally:
        deployer.delete_model_server(server.uuid, force=True)


def run(runs: int = 7, with_server: bool = True) -> list[tuple[str, str, str, bool | None]]:
    rows: list[tuple[str, str, str, bool | None]] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        empty = scratch / "empty-home"
        empty.mkdir()
        list_argv = [*modeldeploy(), "models", "list"]
        wall(list_argv, env_for(empty), 1)  # warm the page cache
        t = statistics.median(wall(list_argv, env_for(empty), runs))
        rows.append(
            (
                f"`modeldeploy models list`, empty home (median of {runs})",
                f"{t:.3f} s",
                f"< {LIST_TARGET_S:g} s",
                t < LIST_TARGET_S,
            )
        )
        if with_server:
            home = scratch / "home"
            home.mkdir()
            with one_running_server(home) as uuid:
                out = subprocess.run(list_argv, env=env_for(home), capture_output=True, text=True)
                assert uuid in out.stdout, out
                t = statistics.median(wall(list_argv, env_for(home), runs))
                rows.append(
                    (
                        f"`modeldeploy models list`, one running server (median of {runs})",
                        f"{t:.3f} s",
                        f"< {LIST_TARGET_S:g} s",
                        t < LIST_TARGET_S,
                    )
                )
                heavy = heavy_imports(
                    ["-m", "modeldeploy.cli.main", "models", "list"], env_for(home)
                )
        else:
            heavy = heavy_imports(["-m", "modeldeploy.cli.main", "models", "list"], env_for(empty))
        rows.append(
            (
                "heavy libraries imported by `models list`",
                ", ".join(heavy) or "none",
                "none",
                not heavy,
            )
        )

        env = env_for(empty)
        bare = statistics.median(wall([PY, "-c", "pass"], env, runs))
        with_core = statistics.median(wall([PY, "-c", "import modeldeploy"], env, runs))
        engine = statistics.median(
            wall([PY, "-c", "import modeldeploy; modeldeploy.ModelDeployer"], env, runs)
        )
        rows.append(("`python -c pass` (reference)", f"{bare:.3f} s", "-", None))
        cost = max(0.0, with_core - bare)
        rows.append(
            (
                "`import modeldeploy` over bare python",
                f"{cost * 1000:.0f} ms",
                f"< {CORE_IMPORT_TARGET_S * 1000:.0f} ms",
                cost < CORE_IMPORT_TARGET_S,
            )
        )
        rows.append(
            (
                "`import modeldeploy` + the engine (pydantic) over bare python",
                f"{max(0.0, engine - bare) * 1000:.0f} ms",
                "-",
                None,
            )
        )
        heavy = heavy_imports(["-c", "import modeldeploy"], env)
        rows.append(
            (
                "heavy libraries imported by `import modeldeploy`",
                ", ".join(heavy) or "none",
                "none",
                not heavy,
            )
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def print_table(title: str, rows: list[tuple[str, str, str, bool | None]]) -> None:
    headers = ("measure", "figure", "target", "met")
    cells = [(m, f, t, "-" if ok is None else ("yes" if ok else "NO")) for m, f, t, ok in rows]
    widths = [max(len(r[i]) for r in [headers, *cells]) for i in range(4)]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (median)")
    parser.add_argument(
        "--no-server", action="store_true", help="skip the listing with a running server"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sys.path.insert(0, str(ROOT))
    rows = run(args.runs, with_server=not args.no_server)
    print_table("CLI start-up and `import modeldeploy`", rows)
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
