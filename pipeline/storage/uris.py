"""URIs the storage layer takes: local paths, `file://` URIs and `s3://bucket/key`; and what a
listing says about an object."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pipeline.storage.errors import StorageError

MiB = 1024 * 1024
PIPELINE_AREA = "_pssr"  # the pipeline's own sub-prefix under a root; never an input


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    version: str  # opaque: the ETag without quotes (S3) or "mtime_ns:size" (local)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def to_local_path(uri: str) -> str:
    """Absolute local path for a plain path or a ``file://`` URI."""
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"{uri}: file URIs on another host are not supported")
        uri = unquote(parts.path)
    return os.path.abspath(uri)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty."""
    bucket, _, key = uri[len("s3://") :].partition("/") if is_s3(uri) else ("", "", "")
    if not bucket:
        raise StorageError(f"{uri}: not an s3://bucket/key URI")
    return bucket, key


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a local path or S3 URI with single slashes."""
    base = base if is_s3(base) else to_local_path(base)
    pieces = [base.rstrip("/")] + [p.strip("/") for p in parts if p.strip("/")]
    return "/".join(pieces)


def _normalise(uri: str) -> str:
    return uri if is_s3(uri) else to_local_path(uri)


def relative_key(root_uri: str, uri: str) -> str:
    """Key of `uri` relative to the input root; the file name when the root is the file."""
    root, target = _normalise(root_uri).rstrip("/"), _normalise(uri)
    if target == root:
        return target.rsplit("/", 1)[-1]
    if not target.startswith(root + "/"):
        raise ValueError(f"{uri} is not below {root_uri}")
    return target[len(root) + 1 :]


def folder_prefix(key: str) -> str:
    """Treat a key as a folder: ``a/b`` and ``a/b/`` both list ``a/b/...``; '' lists all."""
    return key.rstrip("/") + "/" if key.strip("/") else ""


def in_pipeline_area(rel_key: str) -> bool:
    return PIPELINE_AREA in rel_key.split("/")[:-1]


def normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    return tuple("." + e.lower().lstrip(".") for e in extensions)
