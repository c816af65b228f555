"""Storage failures as StorageError, and retries of what botocore's own retry loop cannot see."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from boto3.exceptions import Boto3Error, RetriesExceededError, S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError, HTTPClientError, IncompleteReadError

from pipeline.errors import PssrError

T = TypeVar("T")

# Errors a GetObject body raises while it streams in, after botocore's retry loop returned:
# a reset or stall (HTTPClientError subclasses), a short body, or a CRC mismatch.
BODY_ERRORS: tuple[type[Exception], ...] = (HTTPClientError, IncompleteReadError, FlexibleChecksumError)
# Attempts and backoff of `with_retries`, for what botocore cannot retry itself.
RETRY_ATTEMPTS = 4
_RETRY_BACKOFF_S = 0.1  # first backoff cap; doubles per attempt up to _RETRY_BACKOFF_MAX_S
_RETRY_BACKOFF_MAX_S = 2.0

_S3_CAUSES = {
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such key",
    "404": "not found (no such key, or no such bucket)",
    "NotFound": "no such key",
    "AccessDenied": "access denied",
    "403": "access denied",
    "Forbidden": "access denied",
    "PreconditionFailed": "object changed since it was opened (ETag mismatch)",
    "412": "object changed since it was opened (ETag mismatch)",
}


class StorageError(PssrError):
    """A storage operation failed; the message names the URI and the cause."""


def check_version(uri: str, found: str, listed: str | None) -> None:
    """StorageError when an object is no longer the version its listing gave (None: no check)."""
    if listed is not None and found != listed:
        raise StorageError(f"{uri}: changed since it was listed (now version {found}, listed {listed})")


def client_error_message(uri: str, exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "unknown"))
    cause = _S3_CAUSES.get(code) or f"{code}: {error.get('Message', exc)}"
    retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    # Say when botocore already retried, so a persistent fault does not read as a one-off.
    return f"{uri}: {cause}" + (f" (after {retries + 1} attempts)" if retries else "")


@contextmanager
def s3_errors(uri: str) -> Iterator[None]:
    # ClientError/BotoCoreError/boto3 messages carry codes, endpoints and keys, never secrets.
    try:
        yield
    except ClientError as exc:
        raise StorageError(client_error_message(uri, exc)) from exc
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError):
            raise StorageError(client_error_message(uri, cause)) from exc
        raise StorageError(f"{uri}: upload failed: {exc}") from exc
    except RetriesExceededError as exc:  # s3transfer gave up re-reading a download's body
        raise StorageError(f"{uri}: download failed after retries: {exc.last_exception}") from exc
    except (BotoCoreError, Boto3Error) as exc:
        raise StorageError(f"{uri}: {exc}") from exc


@contextmanager
def local_errors(uri: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise StorageError(f"{uri}: no such file or folder ({exc.filename})") from exc
    except PermissionError as exc:
        raise StorageError(f"{uri}: access denied ({exc.filename})") from exc
    except OSError as exc:
        raise StorageError(f"{uri}: {exc.strerror or exc}") from exc


def with_retries(uri: str, what: str, attempt: Callable[[], T], retry_on: tuple[type[Exception], ...]) -> T:
    """`attempt()`, run again after a jittered backoff while it fails with `retry_on`.

    For failures botocore's retry loop cannot see: a response body that breaks after the
    call returned, or errors inside a successful response. `attempt` must map its own
    request errors (already retried by botocore) to StorageError, so they are not retried
    a second time here.
    """
    for n in range(1, RETRY_ATTEMPTS):
        try:
            return attempt()
        except retry_on:
            # Full jitter, as botocore does, so many workers do not retry in step.
            time.sleep(random.uniform(0, min(_RETRY_BACKOFF_S * 2 ** (n - 1), _RETRY_BACKOFF_MAX_S)))
    try:
        return attempt()
    except retry_on as exc:
        raise StorageError(f"{uri}: {what} failed {RETRY_ATTEMPTS} times; last error: {exc}") from exc


def verify_stored(uri: str, head: dict[str, Any], size: int, crc: str | None) -> None:
    """Fail when the stored object (its HEAD) is not what was sent. S3 rejects a CRC mismatch itself;
    this catches stores that accept one (moto and some S3-compatible servers do)."""
    stored = head.get("ChecksumCRC32")
    if head["ContentLength"] != size or (crc and stored and "-" not in stored and stored != crc):
        raise StorageError(
            f"{uri}: the stored object does not match what was written "
            f"(size {head['ContentLength']} vs {size}, CRC32 {stored} vs {crc}); it is corrupt, write it again"
        )
