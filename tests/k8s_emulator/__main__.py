"""``python -m tests.k8s_emulator --kubeconfig PATH [--port N] [--model URI=DIR ...]``: an
emulator for people and tools (kubectl, k9s, the CLI). It serves HTTPS with its own CA,
writes a kubeconfig with context ``emulator``, prints where it listens and runs until
interrupted. Each ``--model`` serves a storage URI from a local MLflow model folder behind
the data plane's ingress, so predictions work as on a cluster. Each namespace gets the
Servers a Seldon Core 2 runtime installs (``mlserver``, ``triton``), as on a cluster with
Seldon Core 2; ``--fail-uri`` makes models under a prefix fail to load, as an unreachable
bucket does (the contract tests' failing model, MODELDEPLOY_TEST_KUBECONFIG)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .emulator import KubernetesEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.k8s_emulator", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "--namespace", action="append", default=None, help="namespace to create (repeatable)"
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="URI=DIR",
        help="serve storage URI from a local MLflow model folder (repeatable)",
    )
    parser.add_argument(
        "--fail-uri",
        action="append",
        default=[],
        metavar="PREFIX",
        help="models whose URI starts with PREFIX fail to load (repeatable)",
    )
    parser.add_argument(
        "--server-replicas",
        type=int,
        default=1,
        metavar="N",
        help="replicas of each Seldon Core 2 Server (default 1)",
    )
    args = parser.parse_args(argv)
    models = [m.split("=", 1) for m in args.model]
    bad = [m for m, pair in zip(args.model, models, strict=True) if len(pair) != 2]
    if bad:
        parser.error(f"--model takes URI=DIR (e.g. s3://bucket/iris=./model), got {bad}")
    namespaces = args.namespace or ["default"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with KubernetesEmulator(namespaces=namespaces, port=args.port, tls=True) as emu:
        for controller in (emu.kserve, emu.seldon, emu.seldon2):
            controller.fail_when_uri_startswith = tuple(args.fail_uri) or None
        for namespace in namespaces:
            emu.seldon2.install_runtime(namespace, replicas=args.server_replicas)
        path = emu.write_kubeconfig(args.kubeconfig, namespace=namespaces[0])
        print(f"Kubernetes API emulator listening on {emu.url}", flush=True)
        print(f"kubeconfig: {path} (context emulator)", flush=True)
        for uri, folder in models:
            try:
                emu.dataplane.register_model(uri, folder)
                emu.dataplane.wait_ready(uri)
            except (ValueError, RuntimeError, TimeoutError) as exc:
                print(f"cannot serve {uri}: {exc}", file=sys.stderr, flush=True)
                return 2
            print(f"serving {uri} from {folder}", flush=True)
        if models:
            print(f"ingress (ingress_base_url): {emu.dataplane.url}", flush=True)
            print(f"request metrics: {emu.dataplane.metrics_url}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
