"""What a running job is doing, for `pssr status` while it runs: one small JSON object per job,
`<output>/_pssr/running/<job_id>.json`, rewritten by the job every progress period (its frames,
rate, ETA and unfinished videos) and deleted when the job ends. Manifests say what is finished;
this says what is under way. A job killed without its cleanup leaves its object behind: its
`updated_at` then stops moving, and `pssr status` says how long ago it last did.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pipeline.storage import PIPELINE_AREA, Storage, StorageError, join_uri

RUNNING = "running"


def live_uri(output: str, job_id: str) -> str:
    return join_uri(output, PIPELINE_AREA, RUNNING, f"{job_id}.json")


def write_live(storage: Storage, output: str, job_id: str, document: dict[str, Any]) -> None:
    """Replace the job's object with `document` and the time now (`updated_at`, UTC)."""
    stamped = {"job_id": job_id, **document, "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    storage.write_bytes(live_uri(output, job_id), json.dumps(stamped).encode())


def clear_live(storage: Storage, output: str, job_id: str) -> None:
    storage.delete(live_uri(output, job_id))


def read_live(storage: Storage, output: str) -> list[dict[str, Any]]:
    """The running jobs' objects under `output`, oldest update first; unreadable ones are left out
    (one being rewritten, or deleted between listing and reading)."""
    found = []
    for uri in storage.list_uris(join_uri(output, PIPELINE_AREA, RUNNING)):
        if not uri.endswith(".json"):
            continue
        try:
            found.append(json.loads(storage.read_bytes(uri)))
        except (OSError, StorageError, ValueError):
            continue
    return sorted(found, key=lambda d: d.get("updated_at", ""))
