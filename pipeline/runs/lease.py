"""Per-video leases under an output root, so overlapping runs never process one video at once.

A lease is a small JSON object, `<output>/_pssr/leases/<video_id>.json`, naming the run that
holds it and how long it lives after its last write. Every change is a conditional write:

* S3: create with `If-None-Match: *`, renew, take over and release with `If-Match: <ETag>` of
  the version read, so of two runs racing for one lease exactly one write succeeds.
* Local folders: the same read-compare-write under an exclusive `flock` on `leases/.lock`,
  which coordinates runs on one machine (or on a file system whose flock is shared).

Expiry is measured by the store's clock (S3: the response's Date against the lease's
LastModified; local: the file's mtime), so runners with skewed clocks still agree on it.
A holder renews its leases every third of their lifetime (`Leases.renewing`); a run that dies
leaves leases that expire, and another run then takes them over.

Releasing a lease does not delete it: it becomes a released record holding the run's outcome
(e.g. the input version it finished). A run that lists its work first and leases each video as
it reaches it learns from that record that another run finished the video after its listing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.manifest.files import video_id
from pipeline.storage import PIPELINE_AREA, Storage, StorageError, is_s3, join_uri, split_s3, to_local_path

log = logging.getLogger(__name__)

# How often a holder rewrites its leases, as a fraction of their lifetime: two renewals may
# fail (a slow store, a paused driver) before a lease runs out.
RENEW_FRACTION = 1 / 3
_RACE_ATTEMPTS = 3  # reads and writes tried when other runs keep changing one lease meanwhile
_LOST_RACE = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404")


def lease_root(output_root: str) -> str:
    return join_uri(output_root, PIPELINE_AREA, "leases")


@dataclass(frozen=True)
class Lease:
    """A lease as read from the store."""

    video_key: str
    owner: str  # the job id of the run that wrote it
    host: str
    seconds: float  # lifetime after its last write
    released: bool
    outcome: dict[str, Any] | None  # what the releasing run recorded; None while held
    age_s: float  # since its last write, by the store's clock
    version: str  # what a conditional write compares: the S3 ETag, or the write's token locally

    @property
    def live(self) -> bool:
        return not self.released and self.age_s < self.seconds

    @property
    def left_s(self) -> float:
        return max(0.0, self.seconds - self.age_s)


@dataclass(frozen=True)
class Claim:
    acquired: bool
    # The lease found: a live one of another run (not acquired), or an expired or released one
    # (taken over); None when the video had none.
    previous: Lease | None


class Leases:
    """The leases of one run (`owner`) under `output_root`, each living `seconds` after its last write."""

    def __init__(self, storage: Storage, output_root: str, owner: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"lease seconds must not be negative, got {seconds}")
        self.owner = owner
        self.seconds = seconds
        self.root = lease_root(output_root)
        self._files: _S3Files | _LocalFiles = _S3Files(storage) if is_s3(output_root) else _LocalFiles()
        self._held: dict[str, str] = {}  # video key -> version of our last write
        self._lock = threading.Lock()  # the renewal thread and the job share `_held`
        self.lost: list[str] = []  # video keys whose lease another run took over while we held it

    def uri(self, video_key: str) -> str:
        return join_uri(self.root, f"{video_id(video_key)}.json")

    @property
    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def check_store(self) -> None:
        """Fail when the store ignores conditional writes (some S3-compatible servers do): leases
        would then keep no two runs apart."""
        probe = join_uri(self.root, f"probe-{self.owner}")
        if self._files.create(probe, b"{}") is None:
            raise StorageError(f"{probe}: a fresh probe object exists already; is another run using this owner id?")
        try:
            if self._files.create(probe, b"{}") is not None:
                raise StorageError(
                    f"{probe}: the store ignored 'If-None-Match: *' (it overwrote an existing object), so leases "
                    "cannot keep overlapping runs apart; use a store with conditional writes (AWS S3, MinIO)"
                )
        finally:
            self._files.delete(probe)

    def read(self, video_key: str) -> Lease | None:
        found = self._files.read(self.uri(video_key))
        if found is None:
            return None
        data, version, age_s = found
        body = json.loads(data)
        return Lease(
            video_key=body["video_key"],
            owner=body["owner"],
            host=body["host"],
            seconds=float(body["seconds"]),
            released=bool(body["released"]),
            outcome=body["outcome"],
            age_s=age_s,
            version=version,
        )

    def acquire(self, video_key: str) -> Claim:
        """Take the video's lease unless another run holds it live."""
        uri = self.uri(video_key)
        found = None
        for _ in range(_RACE_ATTEMPTS):
            found = self.read(video_key)
            if found is not None and found.live and found.owner != self.owner:
                return Claim(acquired=False, previous=found)
            body = self._body(video_key)
            version = self._files.create(uri, body) if found is None else self._files.replace(uri, body, found.version)
            if version is not None:
                with self._lock:
                    self._held[video_key] = version
                return Claim(acquired=True, previous=found)
            # Another run wrote it between our read and our write: read again.
        return Claim(acquired=False, previous=found)

    def renew(self) -> None:
        """Rewrite every held lease, so it lives `seconds` more; a lease another run took over
        (ours had expired) is dropped and its key added to `lost`."""
        for video_key in self.held:
            with self._lock:
                version = self._held.get(video_key)
                if version is None:  # released meanwhile
                    continue
                renewed = self._files.replace(self.uri(video_key), self._body(video_key), version)
                if renewed is not None:
                    self._held[video_key] = renewed
                    continue
                del self._held[video_key]
                self.lost.append(video_key)
            log.warning("%s: lease lost: it expired and another run took it over", video_key)

    def release(self, video_key: str, outcome: dict[str, Any] | None = None) -> bool:
        """Turn our lease into a released record holding `outcome`; False when we no longer held it."""
        with self._lock:
            version = self._held.pop(video_key, None)
            if version is None:
                return False
            body = self._body(video_key, released=True, outcome=outcome)
            released = self._files.replace(self.uri(video_key), body, version)
        if released is None:
            self.lost.append(video_key)
            log.warning("%s: lease lost before release: it expired and another run took it over", video_key)
        return released is not None

    def release_all(self) -> None:
        for video_key in self.held:
            self.release(video_key)

    @contextmanager
    def renewing(self) -> Iterator[None]:
        """Renew the held leases in a background thread while the block runs."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.seconds * RENEW_FRACTION):
                try:
                    self.renew()
                except StorageError as exc:  # the next round tries again; the lease has time left
                    log.warning("lease renewal failed: %s", exc)

        thread = threading.Thread(target=loop, name="lease-renewal", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _body(self, video_key: str, released: bool = False, outcome: dict[str, Any] | None = None) -> bytes:
        body = {
            "video_key": video_key,
            "owner": self.owner,
            "host": f"{socket.gethostname()}:{os.getpid()}",
            "seconds": self.seconds,
            "released": released,
            "outcome": outcome,
            # Unique per write: the local version tag, and distinct ETags for equal-looking writes.
            "token": uuid.uuid4().hex,
        }
        return json.dumps(body).encode()


class _S3Files:
    """Conditional writes on S3: one of two racing writers gets 412 PreconditionFailed (or 409)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _put(self, uri: str, data: bytes, condition: dict[str, str]) -> str | None:
        bucket, key = split_s3(uri)
        # A lease is small and short-lived: no storage class (minimum-duration billing), but the
        # job's encryption, which a bucket policy may require of every PUT.
        sse = {"ServerSideEncryption": self.storage.s3.sse} if self.storage.s3.sse else {}
        if self.storage.s3.sse_kms_key_id:
            sse["SSEKMSKeyId"] = self.storage.s3.sse_kms_key_id
        try:
            answer = self.storage.s3.client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType="application/json", **condition, **sse
            )
        except ClientError as exc:
            if _code(exc) in _LOST_RACE:
                return None
            raise StorageError(f"{uri}: lease write failed: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{uri}: lease write failed: {exc}") from exc
        return answer["ETag"]

    def create(self, uri: str, data: bytes) -> str | None:
        return self._put(uri, data, {"IfNoneMatch": "*"})

    def replace(self, uri: str, data: bytes, version: str) -> str | None:
        return self._put(uri, data, {"IfMatch": version})

    def read(self, uri: str) -> tuple[bytes, str, float] | None:
        bucket, key = split_s3(uri)
        try:
            answer = self.storage.s3.client.get_object(Bucket=bucket, Key=key)
            data = answer["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"{uri}: lease read failed: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{uri}: lease read failed: {exc}") from exc
        date = answer["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else datetime.now(timezone.utc)
        return data, answer["ETag"], (now - answer["LastModified"]).total_seconds()

    def delete(self, uri: str) -> None:
        self.storage.delete(uri)


class _LocalFiles:
    """Read-compare-write under an exclusive flock; files are replaced whole (temp file + rename)."""

    def __init__(self) -> None:
        self.storage = Storage()

    @contextmanager
    def _locked(self, uri: str) -> Iterator[None]:
        folder = os.path.dirname(to_local_path(uri))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def _version(self, path: str) -> str | None:
        try:
            with open(path, "rb") as f:
                return json.loads(f.read()).get("token", "")
        except FileNotFoundError:
            return None

    def create(self, uri: str, data: bytes) -> str | None:
        with self._locked(uri):
            if self._version(to_local_path(uri)) is not None:
                return None
            self.storage.write_bytes(uri, data)
        return json.loads(data).get("token", "")

    def replace(self, uri: str, data: bytes, version: str) -> str | None:
        with self._locked(uri):
            if self._version(to_local_path(uri)) != version:
                return None
            self.storage.write_bytes(uri, data)
        return json.loads(data)["token"]

    def read(self, uri: str) -> tuple[bytes, str, float] | None:
        path = to_local_path(uri)
        try:
            with open(path, "rb") as f:
                data = f.read()
                mtime = os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return None
        return data, json.loads(data)["token"], time.time() - mtime

    def delete(self, uri: str) -> None:
        with self._locked(uri):
            self.storage.delete(uri)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'unknown')}: {error.get('Message', exc)}"
