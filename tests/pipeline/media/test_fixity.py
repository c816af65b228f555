import hashlib
import io

import pytest

from pipeline.media import probe_video
from pipeline.media.fixity import HashingReader, file_sha256, video_digest
from tests.clips import make_clip


@pytest.mark.parametrize("name", ["a.mp4", "a.mkv", "a.mov"])
def test_the_probe_hashes_the_whole_file_it_decodes(tmp_path, name):
    """MP4/MOV read their index at the end first: the hash still covers every byte once, in order."""
    path = make_clip(tmp_path / name, frames=12, size=(32, 24), audio_streams=1)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert probe_video(path).sha256 == expected
    with open(path, "rb") as f:
        assert probe_video(f).sha256 == expected
        assert file_sha256(f) == expected


def test_unread_bytes_are_hashed_at_the_end():
    data = bytes(range(256)) * 1000
    reader = HashingReader(io.BytesIO(data))
    reader.seek(100_000)
    reader.read(50)  # a jump ahead is not hashed now
    reader.seek(0)
    reader.read(10)
    assert reader.sha256() == hashlib.sha256(data).hexdigest()
    assert reader.tell() == 10


def test_video_digest_is_the_same_in_another_container(tmp_path):
    mp4 = make_clip(tmp_path / "a.mp4", frames=6, size=(32, 24))
    assert video_digest(mp4) != video_digest(make_clip(tmp_path / "b.mp4", frames=7, size=(32, 24)))
    assert video_digest(mp4) == video_digest(mp4)
