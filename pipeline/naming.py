"""Where things go: output keys derived deterministically from input keys, and staging keys."""

from __future__ import annotations

import hashlib
import posixpath

from pipeline.storage import PIPELINE_AREA, join_uri, relative_key

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mxf",
    ".ts",
    ".m2ts",
    ".mts",
    ".mpg",
    ".mpeg",
    ".vob",
    ".dv",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
    ".y4m",
    ".nut",
)


def output_key(input_key: str, scale: int, container: str) -> str:
    """`films/a.mov` -> `films/a_x4.mp4`: same relative path, scale suffix, container extension."""
    stem, _ = posixpath.splitext(input_key)
    return f"{stem}_x{scale}.{container}"


def access_uri(output_uri: str, container: str) -> str:
    """`films/a_x4.mkv` -> `films/a_x4.access.mp4`: the access copy beside a preservation master (and
    in staging, each chunk's beside its chunk)."""
    stem, _ = posixpath.splitext(output_uri)
    return f"{stem}.access.{container}"


def reference_uri(reference: str, input_root: str, input_uri: str) -> str:
    """The HR reference of an input (benchmark mode): `reference` itself when the input root is
    the video file, else the input's relative key below the `reference` folder or prefix."""
    if join_uri(input_root) == join_uri(input_uri):
        return join_uri(reference)
    return join_uri(reference, relative_key(input_root, input_uri))


def staging_prefix(output_root: str, config_hash: str, video_id: str, input_version: str) -> str:
    """Chunks of one version of one video under one configuration: a changed input or config
    never reuses them."""
    version = hashlib.sha1(input_version.encode()).hexdigest()[:12]
    return join_uri(output_root, PIPELINE_AREA, "staging", config_hash, f"{video_id}-{version}")


def chunk_uri(staging: str, segment_index: int, container: str) -> str:
    return join_uri(staging, f"chunk_{segment_index:06d}.{container}")


def fixity_uri(output_root: str, job_id: str, algorithm: str) -> str:
    """The job's checksum list (`md5` or `sha256`) of the outputs it wrote."""
    return join_uri(output_root, PIPELINE_AREA, "fixity", f"{job_id}.{algorithm}")
