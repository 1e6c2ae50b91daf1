"""The supervisor's routed mode: both variants on private ports, the router on the public one.

Driven by the supervisor's loop from the record (`record["traffic"]`, written by
`traffic.py` in any process), so every step is a reconciliation:

- entering: start the champion and the challenger on private loopback ports; once the
  champion answers there, start the router on the public socket, then retire the scoring
  server that held the public socket (it finishes its in-flight requests first);
- routed: every record change swaps the router's table in one assignment; a variant that
  left the table is retired a moment later (`RETIRE_AFTER`), after requests that already
  read the old table have reached it;
- leaving (promoted or removed): the router sends everything to the champion's private
  child while a scoring server loads on the public socket again; once it serves, the router
  drains (no new connections, each open one closes after its answer) and the private
  children retire. Single-variant servers so pay nothing for routing.

Stdlib only, like the supervisor.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeldeploy.flavors.mlflow.router import (
    CHALLENGER,
    CHAMPION,
    METRICS_PATH,
    PREDICTIONS_PATH,
    Backend,
    RouterThread,
    Table,
)

if TYPE_CHECKING:
    from modeldeploy.flavors.mlflow.supervisor import Child, Supervisor

LOOPBACK = "127.0.0.1"
RETIRE_AFTER = 1.0  # seconds a variant stays up after it left the routing table
CRASH_RETRY_SECONDS = 2.0
#: written by MLflow beside MLmodel when the model was saved with an input example
WARM_UP_EXAMPLE = "serving_input_example.json"
WARM_UP_TIMEOUT = 30.0


class Private:
    """A scoring server on a private loopback port, reachable only through the router."""

    def __init__(self, generation: int, spec: dict[str, Any], supervisor: Supervisor) -> None:
        from modeldeploy.flavors.mlflow.supervisor import Child

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(1024)
        self.sock.set_inheritable(True)
        self.port: int = self.sock.getsockname()[1]
        self.child: Child = Child(generation, spec, self.sock, supervisor.log)
        self.unused_since: float | None = None
        self.warm = threading.Event()
        threading.Thread(
            target=self._warm_up, args=(spec.get("model_dir"),), daemon=True, name="warm-up"
        ).start()

    @property
    def ready(self) -> bool:
        """Loaded and warmed up: only then is a client's request routed here."""
        return self.warm.is_set()

    def _warm_up(self, model_dir: str | None) -> None:
        """A fresh scoring server's first prediction is several times slower than the next
        (lazy imports, first schema check): pay it with the model's own input example
        before any client waits on it. Without an example, or if it fails, ready as is."""
        while not self.child.ready.wait(0.25):
            if self.child.exited():
                return
        try:
            example = Path(model_dir) / WARM_UP_EXAMPLE if model_dir else None
            if example is not None and example.is_file():
                conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=WARM_UP_TIMEOUT)
                try:
                    conn.request(
                        "POST",
                        "/invocations",
                        example.read_bytes(),
                        {"Content-Type": "application/json"},
                    )
                    conn.getresponse().read()
                finally:
                    conn.close()
        except (OSError, http.client.HTTPException):
            pass  # a model that cannot answer its example is the analysis's to find
        finally:
            self.warm.set()

    def retire(self, wait: bool = False) -> None:
        """Terminate in the background: uvicorn finishes in-flight requests first."""

        def stop() -> None:
            self.child.terminate()
            self.sock.close()

        if wait:
            stop()
        else:
            threading.Thread(target=stop, daemon=True, name="retire").start()


class Routing:
    """Private children, the router thread, and what they serve now."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor
        self.private: list[Private] = []
        self.router: RouterThread | None = None
        self.failed: dict[int, str] = {}  # generation -> why its scoring server never served
        self.retry_at: dict[int, float] = {}  # generation -> when to restart after a crash
        self.serving_generation: int | None = None  # the champion's, once the router serves
        self.challenger: tuple[int, Private | None] | None = None
        # scoring servers that held the public socket, still finishing; until they exit,
        # some connections land on them, so the routing is not reported as applied yet
        self.retiring: list[Child] = []
        self._reported: dict[str, Any] | None = None

    # -- the supervisor's loop ----------------------------------------------------------

    def step(self, record: dict[str, Any]) -> bool:
        """Reconcile with the record; True while routed (the supervisor then does nothing
        on the public socket), False while leaving or when left."""
        self._reap()
        traffic = record.get("traffic") or {}
        wanted = traffic.get("challenger")
        generation = int(record["generation"])
        if wanted is None or (self.router is not None and self.router.draining):
            self._leave(record)
            return False
        champion = self._ensure(record["launch"], generation, CHAMPION)
        challenger_gen = int(wanted["generation"])
        challenger = self._ensure(wanted["launch"], challenger_gen, CHALLENGER)
        self.challenger = (challenger_gen, challenger)
        if champion is None or not champion.ready:
            if self.router is None and self.sup.active is None:
                self.sup.last_error = self.failed.get(generation)
                self.publish("error" if generation in self.failed else "pending_startup")
            else:
                self.publish("active")
            return True
        table = Table(
            champion=Backend(CHAMPION, LOOPBACK, champion.port),
            challenger=(
                Backend(CHALLENGER, LOOPBACK, challenger.port)
                if challenger is not None and challenger.ready
                else None
            ),
            weight=int(traffic.get("weight", 0)),
            mirror_percent=int(traffic.get("mirror_percent", 0)),
            compare_percent=int(record.get("config", {}).get("compare_percent", 0)),
            sticky_header=traffic.get("sticky_header"),
            timeout=float(record.get("config", {}).get("request_timeout", 60)),
        )
        if self.router is None:
            assert self.sup.sock is not None
            self.router = RouterThread(self.sup.sock, table)
            self.sup.log.note(f"router serves the public socket (champion on port {champion.port})")
        else:
            self.router.set_table(table)
        self.serving_generation = generation
        for child in (self.sup.active, self.sup.pending):
            if child is not None:
                self.retiring.append(child)
                _retire_child(child)
        self.sup.active = self.sup.pending = None
        self.sup.failed_generation = None
        self.sup.last_error = None
        self._retire_unused({champion, challenger})
        self.publish("active")
        return True

    def _leave(self, record: dict[str, Any]) -> None:
        """All traffic to the champion's private child until a scoring server serves on
        the public socket again, then drain the router and retire the private children."""
        self.challenger = None
        if self.router is None:
            for private in self.private:
                private.retire()
            self.private.clear()
            return
        if not self.router.draining:
            champion = next((p for p in self.private if p.child.spec == record["launch"]), None)
            if champion is not None and champion.ready:
                self.router.set_table(Table(champion=Backend(CHAMPION, LOOPBACK, champion.port)))
                self.serving_generation = int(record["generation"])
            self._retire_unused({champion})
            active = self.sup.active
            if active is not None and active.spec == record["launch"]:
                self.sup.log.note("a scoring server holds the public socket again; draining")
                self.router.begin_drain()
        elif self.router.drained():
            self.router.close()
            self.router = None
            for private in self.private:
                private.retire()
            self.private.clear()
            self.serving_generation = None
            self.sup.log.note("router drained and stopped")
        if self.router is not None:
            self.publish("active")

    def finished(self) -> bool:
        return self.router is None and not self.private

    def busy(self) -> bool:
        """Something changes soon: the supervisor's loop then looks more often."""
        return (
            any(not p.ready or p.unused_since is not None for p in self.private)
            or (self.router is not None and self.router.draining)
            or bool(self.retiring)
        )

    def close(self) -> None:
        if self.router is not None:
            self.router.close()
            self.router = None
        for private in self.private:
            private.retire(wait=True)
        self.private.clear()

    # -- private children -----------------------------------------------------------------

    def _ensure(self, spec: dict[str, Any], generation: int, role: str) -> Private | None:
        for private in self.private:
            if private.child.spec == spec:
                return private
        if generation in self.failed or time.monotonic() < self.retry_at.get(generation, 0):
            return None
        private = Private(generation, spec, self.sup)
        self.sup.log.note(
            f"starting the {role}'s scoring server (generation {generation}) "
            f"on {LOOPBACK}:{private.port}"
        )
        self.private.append(private)
        return private

    def _reap(self) -> None:
        self.retiring = [child for child in self.retiring if not child.exited()]
        for private in [p for p in self.private if p.child.exited()]:
            self.private.remove(private)
            generation = private.child.generation
            reason = private.child.failure()
            private.sock.close()
            if private.child.ready.is_set():
                self.sup.log.note(f"scoring server of generation {generation} died: {reason}")
                self.retry_at[generation] = time.monotonic() + CRASH_RETRY_SECONDS
            else:
                self.sup.log.note(f"generation {generation} failed: {reason}")
                self.failed[generation] = reason

    def _retire_unused(self, keep: set[Private | None]) -> None:
        now = time.monotonic()
        for private in list(self.private):
            if private in keep:
                private.unused_since = None
            elif private.unused_since is None:
                private.unused_since = now
            elif now - private.unused_since >= RETIRE_AFTER:
                self.sup.log.note(f"retiring generation {private.child.generation}")
                self.private.remove(private)
                private.retire()

    # -- status ---------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """What is routed where, as applied; written to status.json by the supervisor."""
        alone = not self.retiring and self.sup.active is None  # the router has the socket
        table = self.router.table if self.router is not None and alone else None
        weight = table.weight if table is not None and table.challenger is not None else 0
        variants: list[dict[str, Any]] = [
            {
                "name": CHAMPION,
                "generation": self.serving_generation,
                "port": table.champion.port if table is not None else None,
                "ready": table is not None,
                "weight": 100 - weight,
                "last_error": None,
            }
        ]
        if self.challenger is not None:
            generation, private = self.challenger
            variants.append(
                {
                    "name": CHALLENGER,
                    "generation": generation,
                    "port": private.port if private is not None else None,
                    "ready": table is not None and table.challenger is not None,
                    "weight": weight,
                    "last_error": self.failed.get(generation),
                }
            )
        return {
            "routed": table is not None,
            "draining": self.router is not None and self.router.draining,
            "variants": variants,
            "mirror_percent": table.mirror_percent if table and table.challenger else 0,
            "sticky_header": table.sticky_header if table is not None else None,
            "metrics_path": METRICS_PATH if table is not None else None,
            "predictions_path": PREDICTIONS_PATH if table is not None else None,
        }

    def publish(self, state: str) -> None:
        """Write status.json when what it would say changed."""
        snapshot = {"state": state, "traffic": self.report(), "error": self.sup.last_error}
        if snapshot != self._reported:
            self._reported = snapshot
            self.sup.publish(state)


def _retire_child(child: Child) -> None:
    threading.Thread(target=child.terminate, daemon=True, name="retire").start()
