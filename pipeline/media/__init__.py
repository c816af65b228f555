"""Media I/O on PyAV: probe, scene cuts, segment decode, chunk encode, stitch by stream copy.

Every reader takes a local path or a seekable binary file object (an S3 body); writers
take local paths. Failures raise MediaError with a cause but not the file name.
"""

from .colour import Colour
from .concat import StitchStats, stitch_chunks
from .decode import Decoded, Source, decode_frames, open_source
from .encode import DEFAULT_PIX_FMT, ENCODERS, bit_depth, deep_frames, encode_chunk, encoded_size, encoder_pix_fmts
from .errors import MediaError
from .probe import VideoProbe, frame_size, probe_video
from .scenes import ContentDetector, detect_cuts

__all__ = [
    "DEFAULT_PIX_FMT",
    "ENCODERS",
    "Colour",
    "ContentDetector",
    "Decoded",
    "MediaError",
    "Source",
    "StitchStats",
    "VideoProbe",
    "bit_depth",
    "decode_frames",
    "deep_frames",
    "detect_cuts",
    "encode_chunk",
    "encoded_size",
    "encoder_pix_fmts",
    "frame_size",
    "open_source",
    "probe_video",
    "stitch_chunks",
]
