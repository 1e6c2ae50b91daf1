"""`TrafficControl` for local model servers: desired routing in the record, applied by the
supervisor.

Every method locks the server's folder, rewrites `record.json` atomically and wakes the
supervisor (SIGHUP), then returns; `traffic_status()` reads what the supervisor applied
(`status.json`). So any process (the CLI, an Airflow triggerer, a Prefect task after a
restart) can drive a rollout, and a restarted supervisor routes exactly as before.

Record layout: `record["traffic"] = {"challenger": {"config", "generation", "launch"} | None,
"weight", "mirror_percent", "sticky_header"}`; the champion stays `record["config"]` and
`record["launch"]`, so a server without a challenger has the same record as before.
"""

from __future__ import annotations

import fcntl
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import InvalidConfigError, ModelDeployError
from modeldeploy.flavors.mlflow.records import RECORD, STATUS, read_json, write_json
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficStatus, VariantStatus

if TYPE_CHECKING:
    from modeldeploy.flavors.mlflow.config import MLflowServerConfig
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

LOCK = "traffic.lock"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class LocalTrafficControl:
    """Mixed into `MLflowModelServer`; see `modeldeploy.traffic.TrafficControl`."""

    uuid: Any
    dir: Path
    config: MLflowServerConfig
    _deployer: MLflowModelDeployer
    _record: dict[str, Any]

    if TYPE_CHECKING:  # provided by MLflowModelServer

        def _signal(self, sig: signal.Signals) -> None: ...

        @property
        def prediction_url(self) -> str | None: ...

    @contextmanager
    def _locked_record(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of the record under a lock, so two processes never race."""
        with (self.dir / LOCK).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = read_json(self.dir / RECORD)
            if record is None:
                raise ModelDeployError(f"model server {self.uuid} was deleted")
            yield record
            write_json(self.dir / RECORD, record)
            self._record = record
        self._signal(signal.SIGHUP)

    def add_challenger(self, config: ServiceConfig | dict[str, Any]) -> None:
        from modeldeploy.flavors.mlflow.config import MLflowServerConfig

        new = self._deployer.parse_config(config)
        assert isinstance(new, MLflowServerConfig)
        if new.port is not None and new.port != self.config.port:
            raise InvalidConfigError(
                f"a challenger shares its champion's URL (port {self.config.port}); "
                f"leave the port unset instead of {new.port}"
            )
        new = new.model_copy(update={"port": self.config.port, "host": self.config.host})
        current = read_json(self.dir / RECORD) or self._record
        _refuse_second_challenger(self.uuid, current)
        # Downloads and checks the model before anything changes (bad URI: InvalidConfigError).
        generation = int(current["generation"]) + 1
        launch = self._deployer.prepare_launch(self.dir, new, generation, current)
        with self._locked_record() as record:
            _refuse_second_challenger(self.uuid, record)
            # One generation counter for both variants keeps their model folders apart;
            # the champion's config is unchanged, so the supervisor restarts nothing for it.
            record["generation"] = generation
            record["traffic"] = {
                "challenger": {
                    "config": new.to_record(),
                    "generation": generation,
                    "launch": launch,
                },
                "weight": 0,
                "mirror_percent": 0,
                "sticky_header": None,
            }

    def set_traffic(
        self,
        challenger_percent: int,
        *,
        mirror_percent: int = 0,
        sticky_header: str | None = None,
    ) -> None:
        for name, value in (
            ("challenger_percent", challenger_percent),
            ("mirror_percent", mirror_percent),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise InvalidConfigError(
                    f"{name} must be a whole number from 0 to 100, not {value!r}"
                )
        if sticky_header is not None and not _HEADER_NAME.match(sticky_header):
            raise InvalidConfigError(
                f"sticky_header {sticky_header!r} is not an HTTP header name such as X-User-Id"
            )
        with self._locked_record() as record:
            traffic = record.get("traffic") or {}
            if not traffic.get("challenger"):
                raise ModelDeployError(
                    f"model server {self.uuid} has no challenger to send traffic to; "
                    "call add_challenger first"
                )
            traffic.update(
                weight=challenger_percent,
                mirror_percent=mirror_percent,
                sticky_header=sticky_header,
            )

    def promote_challenger(self) -> None:
        """The challenger's config becomes the server's; the router sends it everything at
        once, then a scoring server takes the public socket back and the router drains."""
        with self._locked_record() as record:
            challenger = (record.get("traffic") or {}).get("challenger")
            if not challenger:
                raise ModelDeployError(f"model server {self.uuid} has no challenger to promote")
            record["generation"] = int(record["generation"]) + 1
            record["config"] = challenger["config"]
            record["launch"] = challenger["launch"]
            record["traffic"] = None
        from modeldeploy.flavors.mlflow.config import MLflowServerConfig

        self.config = MLflowServerConfig.model_validate(
            {k: v for k, v in self._record["config"].items() if k != "flavor"}
        )

    def remove_challenger(self) -> None:
        """All traffic back to the champion; the challenger retires once nothing routes to
        it. Removing a server without a challenger does nothing."""
        with self._locked_record() as record:
            record["traffic"] = None

    def traffic_status(self) -> TrafficStatus:
        record = read_json(self.dir / RECORD) or self._record
        status = read_json(self.dir / STATUS) or {}
        traffic = record.get("traffic") or {}
        wanted = traffic.get("challenger")
        configs = {CHAMPION: record.get("config", {})}
        if wanted:
            configs[CHALLENGER] = wanted["config"]
        applied = status.get("traffic") if _supervisor_alive(self) else None
        base = (self.prediction_url or "").removesuffix("/invocations")
        if applied and applied.get("routed"):
            variants = [
                VariantStatus(
                    name=v["name"],
                    model_version=configs.get(v["name"], {}).get("model_version"),
                    model_uri=configs.get(v["name"], {}).get("model_uri"),
                    ready=bool(v["ready"]),
                    weight=int(v["weight"]),
                    last_error=v.get("last_error"),
                    url=f"http://127.0.0.1:{v['port']}/invocations" if v.get("port") else None,
                )
                for v in applied["variants"]
            ]
            return TrafficStatus(
                variants=variants,
                mirror_to=CHALLENGER if applied.get("mirror_percent") else None,
                mirror_percent=int(applied.get("mirror_percent") or 0),
                sticky_header=applied.get("sticky_header"),
                metrics_url=base + applied["metrics_path"] if applied.get("metrics_path") else None,
                predictions_url=(
                    base + applied["predictions_path"] if applied.get("predictions_path") else None
                ),
            )
        champion_ready = status.get("state") == "active" and _supervisor_alive(self)
        variants = [
            VariantStatus(
                name=CHAMPION,
                model_version=configs[CHAMPION].get("model_version"),
                model_uri=configs[CHAMPION].get("model_uri"),
                ready=champion_ready,
                weight=100,
                url=self.prediction_url,
            )
        ]
        if wanted:
            variants.append(
                VariantStatus(
                    name=CHALLENGER,
                    model_version=wanted["config"].get("model_version"),
                    model_uri=wanted["config"].get("model_uri"),
                )
            )
        return TrafficStatus(variants=variants)


def _refuse_second_challenger(uuid: Any, record: dict[str, Any]) -> None:
    existing = (record.get("traffic") or {}).get("challenger")
    if existing:
        raise ModelDeployError(
            f"model server {uuid} already has a challenger "
            f"({existing['config'].get('model_uri')}); promote or remove it first"
        )


def _supervisor_alive(server: LocalTrafficControl) -> bool:
    from modeldeploy.flavors.mlflow.records import live_daemon_pid

    return live_daemon_pid(server.dir) is not None
