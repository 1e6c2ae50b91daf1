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

import http
import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeldeploy.flavors.mlflow.records import DEFAULT_REQUEST_TIMEOUT
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
#: a first prediction that times out this many times running (each bounded by the
#: variant's `request_timeout`) fails the load: the server never gets traffic
WARM_UP_ATTEMPTS = 3
TIMEOUT_GRACE = 5.0  # seconds past the request timeout before the warm-up gives up itself


def identity(spec: dict[str, Any]) -> str:
    """What names one scoring server: its launch (the model folder includes the generation
    it was prepared for), so the champion's and the challenger's never share a fate even
    when they share a generation number."""
    return json.dumps(spec, sort_keys=True)


def request_timeout(config: dict[str, Any]) -> float:
    return float(config.get("request_timeout") or DEFAULT_REQUEST_TIMEOUT)


class Private:
    """A scoring server on a private loopback port, reachable only through the router."""

    def __init__(
        self, generation: int, spec: dict[str, Any], timeout: float, supervisor: Supervisor
    ) -> None:
        from modeldeploy.flavors.mlflow.supervisor import Child

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(1024)
        self.sock.set_inheritable(True)
        self.port: int = self.sock.getsockname()[1]
        self.child: Child = Child(generation, spec, self.sock, supervisor.log)
        self.identity = identity(spec)
        self.unused_since: float | None = None
        self.warm = threading.Event()
        self.warm_failure: str | None = None  # set when the first prediction never answered
        self._log = supervisor.log
        threading.Thread(
            target=self._warm_up,
            args=(spec.get("model_dir"), timeout),
            daemon=True,
            name="warm-up",
        ).start()

    @property
    def ready(self) -> bool:
        """Loaded and warmed up: only then is a client's request routed here."""
        return self.warm.is_set()

    def _warm_up(self, model_dir: str | None, timeout: float) -> None:
        """A fresh scoring server's first prediction is several times slower than the next
        (lazy imports, first schema check): pay it with the model's own input example
        before any client waits on it. Without an example, or if it answers with an error,
        ready as is (the analysis judges errors). One that does not answer within the
        request timeout would time clients out too: not ready, asked again, and after
        `WARM_UP_ATTEMPTS` such timeouts the load has failed."""
        while not self.child.ready.wait(0.25):
            if self.child.exited():
                return
        example = Path(model_dir) / WARM_UP_EXAMPLE if model_dir else None
        try:
            body = example.read_bytes() if example is not None and example.is_file() else None
        except OSError:
            body = None  # an unreadable example: ready as without one
        for attempt in range(1, WARM_UP_ATTEMPTS + 1):
            if body is None or self._answers(body, timeout):
                self.warm.set()
                return
            if self.child.exited():
                return
            self._log.note(
                f"generation {self.child.generation}: its first prediction did not answer "
                f"within {timeout:g}s (attempt {attempt} of {WARM_UP_ATTEMPTS}); no traffic yet"
            )
        self.warm_failure = (
            f"its first prediction (the model's input example) did not answer within "
            f"request_timeout={timeout:g}s, {WARM_UP_ATTEMPTS} times running; it got no "
            "traffic. Check that the model's predict returns, or raise request_timeout"
        )

    def _answers(self, body: bytes, timeout: float) -> bool:
        """False only when the prediction timed out: MLflow's scoring server answers 504
        after its request timeout; waiting a little longer catches one that cannot even
        say so."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout + TIMEOUT_GRACE)
        try:
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status != http.HTTPStatus.GATEWAY_TIMEOUT
        except TimeoutError:
            return False
        except (OSError, http.client.HTTPException):
            return True  # a model that cannot answer its example is the analysis's to find
        finally:
            conn.close()

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
        self.failed: dict[str, str] = {}  # identity -> why its scoring server never served
        self.retry_at: dict[str, float] = {}  # identity -> when to restart after a crash
        self.serving_generation: int | None = None  # the champion's, once the router serves
        self.challenger: tuple[int, str, Private | None] | None = None  # generation, identity
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
        config = record.get("config", {})
        champion = self._ensure(record["launch"], generation, request_timeout(config), CHAMPION)
        challenger_gen = int(wanted["generation"])
        challenger = self._ensure(
            wanted["launch"], challenger_gen, request_timeout(wanted["config"]), CHALLENGER
        )
        self.challenger = (challenger_gen, identity(wanted["launch"]), challenger)
        if champion is None or not champion.ready:
            if self.router is None and self.sup.active is None:
                failure = self.failed.get(identity(record["launch"]))
                self.sup.last_error = failure
                self.publish("error" if failure is not None else "pending_startup")
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
            compare_percent=int(config.get("compare_percent", 0)),
            sticky_header=traffic.get("sticky_header"),
            timeout=request_timeout(config),
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

    def _ensure(
        self, spec: dict[str, Any], generation: int, timeout: float, role: str
    ) -> Private | None:
        for private in self.private:
            if private.child.spec == spec:
                return private
        name = identity(spec)
        if name in self.failed or time.monotonic() < self.retry_at.get(name, 0):
            return None
        private = Private(generation, spec, timeout, self.sup)
        self.sup.log.note(
            f"starting the {role}'s scoring server (generation {generation}) "
            f"on {LOOPBACK}:{private.port}"
        )
        self.private.append(private)
        return private

    def _reap(self) -> None:
        self.retiring = [child for child in self.retiring if not child.exited()]
        for private in list(self.private):
            if private.warm_failure is not None:
                self.private.remove(private)
                self.sup.log.note(
                    f"generation {private.child.generation} failed: {private.warm_failure}"
                )
                self.failed[private.identity] = private.warm_failure
                private.retire()
        for private in [p for p in self.private if p.child.exited()]:
            self.private.remove(private)
            generation = private.child.generation
            reason = private.child.failure()
            private.sock.close()
            if private.child.ready.is_set():
                self.sup.log.note(f"scoring server of generation {generation} died: {reason}")
                self.retry_at[private.identity] = time.monotonic() + CRASH_RETRY_SECONDS
            else:
                self.sup.log.note(f"generation {generation} failed: {reason}")
                self.failed[private.identity] = reason

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
        champion = (
            next((p for p in self.private if p.port == table.champion.port), None)
            if table is not None
            else None
        )
        variants: list[dict[str, Any]] = [
            {
                "name": CHAMPION,
                "generation": self.serving_generation,
                "port": table.champion.port if table is not None else None,
                "pid": champion.child.proc.pid if champion is not None else None,
                "ready": table is not None,
                "weight": 100 - weight,
                "last_error": None,
            }
        ]
        if self.challenger is not None:
            generation, name, private = self.challenger
            variants.append(
                {
                    "name": CHALLENGER,
                    "generation": generation,
                    "port": private.port if private is not None else None,
                    "pid": private.child.proc.pid if private is not None else None,
                    "ready": table is not None and table.challenger is not None,
                    "weight": weight,
                    "last_error": self.failed.get(name),
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
