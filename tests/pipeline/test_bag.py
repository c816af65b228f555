"""`pssr bag` (pipeline/bag.py): a job's outputs as a BagIt bag, read back by the Library of
Congress's validator (bagit-python); a file changed since its job fails the bagging, named."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import bagit
import pytest

from pipeline.bag import ChangedFile, make_bag
from pipeline.media.fixity import checksum_line
from pipeline.storage import Storage

REPO = Path(__file__).resolve().parents[2]


def job_outputs(out: Path, job: str, files: dict[str, bytes]) -> None:
    """Outputs under `out` and the job's checksum lists of them, as a job writes them."""
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    fixity = out / "_pssr" / "fixity"
    fixity.mkdir(parents=True, exist_ok=True)
    for algorithm in ("md5", "sha256"):
        lines = [checksum_line(hashlib.new(algorithm, data).hexdigest(), name) for name, data in files.items()]
        (fixity / f"{job}.{algorithm}").write_text("".join(lines))


def test_a_bag_of_the_latest_jobs_outputs_is_valid_and_holds_them_by_their_paths(tmp_path: Path):
    out = tmp_path / "out"
    job_outputs(out, "20260101T000000Z-aaaaaa", {"old_x2.mp4": b"earlier job"})
    files = {"films/a_x2.mkv": b"master" * 1000, "films/a_x2.access.mp4": b"copy", "c d_x2.mp4": b"space"}
    job_outputs(out, "20260102T000000Z-bbbbbb", files)

    made = make_bag(Storage(), str(out), str(tmp_path / "bag"))

    assert (made.job_id, made.files, made.bytes) == ("20260102T000000Z-bbbbbb", 3, sum(map(len, files.values())))
    bag = bagit.Bag(str(tmp_path / "bag"))
    bag.validate()  # every payload file against both manifests, the tag manifests, the Payload-Oxum
    assert sorted(bag.payload_files()) == sorted(f"data/{name}" for name in files)
    assert bag.info["External-Identifier"] == made.job_id
    for name, data in files.items():
        assert (tmp_path / "bag" / "data" / name).read_bytes() == data
    # The validator reads what it is given: a payload byte changed afterwards fails it.
    (tmp_path / "bag" / "data" / "films" / "a_x2.access.mp4").write_bytes(b"copY")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(tmp_path / "bag")).validate()


def test_a_percent_sign_in_a_path_is_percent_encoded_in_the_manifests(tmp_path: Path):
    # RFC 8493 (BagIt 1.0) encodes %, CR and LF; bagit-python 1.9 decodes only CR and LF, so it is not the judge here.
    job_outputs(tmp_path / "out", "J1", {"100% a_x2.mp4": b"percent"})
    make_bag(Storage(), str(tmp_path / "out"), str(tmp_path / "bag"))
    digest = hashlib.sha256(b"percent").hexdigest()
    assert (tmp_path / "bag" / "manifest-sha256.txt").read_text() == f"{digest}  data/100%25 a_x2.mp4\n"
    assert (tmp_path / "bag" / "data" / "100% a_x2.mp4").read_bytes() == b"percent"


def test_an_output_changed_since_its_job_is_named_and_no_bag_is_declared(tmp_path: Path):
    out = tmp_path / "out"
    job_outputs(out, "J1", {"a_x2.mp4": b"as written", "b_x2.mp4": b"fine"})
    (out / "a_x2.mp4").write_bytes(b"bit rot!!!")

    with pytest.raises(ChangedFile, match=r"a_x2\.mp4: its md5 is .* changed since the job wrote it"):
        make_bag(Storage(), str(out), str(tmp_path / "bag"))
    assert not (tmp_path / "bag" / "bagit.txt").exists()  # nothing claims to be a bag

    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "bag", str(out), str(tmp_path / "bag2"), "--job", "J1"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and "a_x2.mp4: its md5 is" in done.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "bag", str(out), str(tmp_path / "full")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "is not empty" in done.stderr
