"""The manifests' compact index: the same history as every manifest read, from the index and the
manifests of the jobs it does not fold in yet; running jobs read but never indexed."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pipeline.manifest.files import manifest_root, write_video_manifest
from pipeline.runs import index
from pipeline.runs.live import clear_live, write_live
from pipeline.runs.resume import video_history
from pipeline.storage import Storage, join_uri
from tests.pipeline.manifest.test_files import FINISHED, _video_row


def row(job: str, key: str, status: str, version: str = "v1", minutes: int = 0) -> dict:
    return {**_video_row(job, key, status), "input_version": version, "finished_at": FINISHED + dt.timedelta(minutes=minutes)}


def write(storage: Storage, root: str, *rows: dict) -> None:
    for r in rows:
        write_video_manifest(storage, root, r["job_id"], r, [])


def test_fold_keeps_the_latest_success_and_counts_failures_per_version() -> None:
    entries: dict[str, index.Entry] = {}
    index.fold(entries, [row("J3", "a", "failed", "v2", 3), row("J1", "a", "ok", "v1", 1), row("J2", "a", "failed", "v2", 2)])
    assert entries["a"].done["job_id"] == "J1" and (entries["a"].failed_version, entries["a"].failures) == ("v2", 2)
    index.fold(entries, [row("J0", "a", "ok", "v0", 0)])  # older than what is known: no change
    assert entries["a"].done["job_id"] == "J1"
    index.fold(entries, [row("J4", "a", "removed", "v1", 4), row("J5", "b", "failed", "v1", 5)])
    assert entries["a"].done is None and entries["b"].failures == 1 and entries["b"].done is None


def test_the_index_gives_the_history_every_manifest_gives(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    write(storage, root, row("J1", "a", "ok", minutes=1), row("J1", "b", "failed", minutes=1))
    write(storage, root, row("J2", "b", "failed", minutes=2))
    full = video_history(storage, root)  # no index yet: every manifest read
    index.refresh(storage, root)
    entries, folded = index.read_index(storage, root)
    assert folded == {"J1", "J2"} and set(entries) == {"a", "b"}

    # The index now stands for J1 and J2: their manifests are not read again.
    storage.delete_prefix(join_uri(manifest_root(root), "videos", "J1"))
    assert video_history(storage, root) == full
    assert full.finished["a"].job_id == "J1" and full.attempt("b", "v1") == 3

    # A running job is read, not indexed, until it has ended.
    write_live(storage, root, "J3", {"started_at": "now"})
    write(storage, root, row("J3", "b", "ok", minutes=3))
    assert video_history(storage, root).finished["b"].job_id == "J3"
    index.refresh(storage, root)
    assert index.read_index(storage, root)[1] == {"J1", "J2"}
    clear_live(storage, root, "J3")
    index.refresh(storage, root)
    entries, folded = index.read_index(storage, root)
    assert folded == {"J1", "J2", "J3"} and entries["b"].done["job_id"] == "J3"
    assert video_history(storage, root).finished["b"].job_id == "J3"


def test_an_unreadable_index_means_reading_every_manifest(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    storage, root = Storage(), str(tmp_path / "out")
    write(storage, root, row("J1", "a", "ok"))
    storage.write_bytes(index.index_uri(root), b"not parquet")
    with caplog.at_level(logging.WARNING, logger="pipeline.runs.index"):
        history = video_history(storage, root)
    assert history.finished["a"].job_id == "J1" and "cannot be read" in caplog.text


def test_list_folders(storage_root: tuple[Storage, str]) -> None:
    storage, root = storage_root
    assert storage.list_folders(root) == []
    for key in ("b/x.bin", "a/y/z.bin", "top.bin"):
        storage.write_bytes(join_uri(root, key), b"1")
    assert storage.list_folders(root) == ["a", "b"]
    assert storage.list_folders(join_uri(root, "a")) == ["y"]
