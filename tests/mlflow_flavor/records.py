"""Write a local server's record by hand: a stopped server, without starting anything."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path


def write_stopped_server(home: Path, model_name: str = "iris", port: int = 5999) -> str:
    """A record as the mlflow flavor writes it, for a server that is not running."""
    server_uuid = str(uuid.uuid4())
    folder = home / "servers" / server_uuid
    folder.mkdir(parents=True)
    now = datetime.now(UTC).isoformat()
    record = {
        "uuid": server_uuid,
        "engine_version": "test",
        "created_at": now,
        "updated_at": now,
        "generation": 1,
        "config": {"flavor": "mlflow", "model_name": model_name, "model_uri": "/m", "port": port},
        "launch": {"argv": ["true"], "env": {}, "fingerprint": "x", "workers": 1},
    }
    (folder / "record.json").write_text(json.dumps(record))
    return server_uuid
