"""The job's configuration: one pydantic tree (`JobSpec`) that YAML files and CLI flags map onto.

Invalid values fail here, before any work starts, with the dotted name of the field. One module on
purpose, though past 400 lines: the tree reads top to bottom, and most of it is the fields'
descriptions, which are the CLI's help and the configuration reference (docs/reference/config.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import PssrError

Codec = Literal["h264", "hevc", "av1", "ffv1", "prores"]

# Container chosen by codec when `container` is "auto": MP4 for distribution codecs,
# Matroska for FFV1 (the archival pairing), QuickTime for ProRes.
DEFAULT_CONTAINER: dict[str, str] = {
    "h264": "mp4",
    "hevc": "mp4",
    "av1": "mp4",
    "ffv1": "mkv",
    "prores": "mov",
}


M = TypeVar("M", bound=BaseModel)


class ConfigError(PssrError, ValueError):
    """A configuration value is invalid; the message names the field."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelsSpec(StrictModel):
    strong: str = Field("tiny", description="Registry name of the strong (temporal) model.")
    light: str = Field("tiny", description="Registry name of the light (per-frame) model.")
    weights_dir: str | None = Field(
        None, description="Folder with weight files for sizes that ship none; sha256 is still checked."
    )
    strong_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Use your own strong weights: the sha256 of the registered file name in weights_dir.",
    )
    light_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Use your own light weights: the sha256 of the registered file name in weights_dir.",
    )

    @model_validator(mode="after")
    def _own_weights_need_a_folder(self) -> ModelsSpec:
        if (self.strong_sha256 or self.light_sha256) and not self.weights_dir:
            raise ValueError("strong_sha256/light_sha256 name files in weights_dir, which is not set")
        return self


class SegmentSpec(StrictModel):
    max_core_frames: int = Field(48, ge=1, le=100_000, description="Most frames a segment writes.")
    context_frames: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Extra frames decoded each side of a segment, inside its scene; "
        "default: the strong model's temporal receptive radius R (seamless stitching).",
    )
    scene_threshold: float = Field(
        27.0, gt=0, le=255, description="Content-detector cut threshold (mean HSV change, 0-255)."
    )
    min_scene_frames: int = Field(8, ge=1, description="Shortest scene the detector will cut.")
    detect_scenes: bool = Field(True, description="Cut segments at scene changes.")
    range_frames: int = Field(
        750,
        ge=2,
        le=1_000_000,
        description="Frames a planning range holds at least: a video of two ranges or more is indexed by "
        "demuxing and its ranges (each from a keyframe) are scanned in parallel, a Ray task each; the plan is "
        "the serial scan's (docs/architecture.md#sharded-planning).",
    )


class EncodeSpec(StrictModel):
    codec: Codec = Field("h264", description="Output video codec.")
    crf: int = Field(18, ge=0, le=63, description="Constant rate factor (h264/hevc 0-51, av1 0-63).")
    preset: str = Field("medium", description="Encoder preset (x264/x265 names; SVT-AV1 0-13).")
    pix_fmt: str | None = Field(
        None,
        description="Output pixel format, e.g. yuv420p10le for 10-bit HEVC/AV1, gbrp10le for 10-bit FFV1; "
        "default per codec (h264, hevc, av1: yuv420p; ffv1: bgr0; prores: yuv422p10le).",
    )
    container: Literal["auto", "mp4", "mkv", "mov"] = Field(
        "auto", description="Output container; auto picks by codec."
    )
    gop: int = Field(48, ge=1, description="Longest GOP inside a chunk (each chunk starts a closed GOP).")
    hardware: Literal["never", "auto", "nvenc"] = Field(
        "never",
        description="NVIDIA hardware encoding of h264/hevc (h264_nvenc, hevc_nvenc; crf becomes NVENC's cq, the "
        "preset p1-p7). never: libx264/libx265. auto: NVENC on each encode worker where it opens, else "
        "libx264/libx265; for clusters whose encode nodes are alike, since the chunks of one video must come "
        "from one encoder (a mixed video fails at the stitch). nvenc: NVENC or a failed chunk, never the "
        "software encoder. See docs/performance.md.",
    )

    @model_validator(mode="after")
    def _crf_range(self) -> EncodeSpec:
        if self.codec in ("h264", "hevc") and self.crf > 51:
            raise ValueError(f"crf {self.crf} is above 51, the maximum for {self.codec}")
        return self

    @model_validator(mode="after")
    def _nvenc_codecs(self) -> EncodeSpec:
        if self.hardware == "nvenc":
            from pipeline.media.nvenc import nvenc_refusal  # late: config loads before any media work

            refusal = nvenc_refusal(self.codec, self.pix_fmt, self.crf)
            if refusal:
                raise ValueError(f"hardware nvenc: {refusal}")
        return self

    @model_validator(mode="after")
    def _pix_fmt_supported(self) -> EncodeSpec:
        if self.pix_fmt is not None:
            from pipeline.media import ENCODERS, encoder_pix_fmts  # late: config loads before any media work

            supported = encoder_pix_fmts(self.codec)
            if self.pix_fmt not in supported:
                raise ValueError(
                    f"pix_fmt {self.pix_fmt!r} cannot be encoded by {ENCODERS[self.codec]}; it takes "
                    + ", ".join(supported)
                )
        return self

    @property
    def container_format(self) -> str:
        return DEFAULT_CONTAINER[self.codec] if self.container == "auto" else self.container


class LimitsSpec(StrictModel):
    max_width: int | None = Field(
        None,
        ge=1,
        description="Fail videos wider than this many pixels (stored size, before display rotation), "
        "from the file header before decoding; default: no limit.",
    )
    max_height: int | None = Field(
        None,
        ge=1,
        description="Fail videos taller than this many pixels (stored size), from the file header "
        "before decoding; default: no limit.",
    )
    max_duration_s: float | None = Field(
        None,
        gt=0,
        description="Fail videos longer than this many seconds, from the file header before "
        "decoding; default: no limit.",
    )


# Ray's own resources: a pool sets them through num_cpus/num_gpus (and Ray refuses them in `resources`).
_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


class PoolSpec(StrictModel):
    size: int = Field(1, ge=1, le=4096, description="Actors in the pool.")
    batch_size: int = Field(1, ge=1, le=1024, description="Segments per batch handed to an actor.")
    num_gpus: float | None = Field(
        None,
        ge=0,
        le=64,
        description="GPUs per actor (fractions allowed); default: 0.5 if the cluster has GPUs (a strong and a "
        "light actor share one GPU), else 0.",
    )
    num_cpus: float = Field(0.5, gt=0, le=256, description="CPUs reserved per actor.")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="Torch intra-op threads per actor; default: on a CPU the node's cores shared among the pool's "
        "actors, at least num_cpus rounded up; on a GPU num_cpus rounded up (docs/performance.md#cpu).",
    )
    frames_per_pass: int = Field(8, ge=1, le=1024, description="Frames per model call; bounds activation memory.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Arithmetic of the model's forward pass: fp32, or bf16/fp16 under torch autocast (convolutions "
        "and matrix products in 16 bits, meant for a GPU's tensor cores; they run on CPU too; their speed is not "
        "measured here). Outputs differ from fp32 by under 2/255 on average (docs/performance.md); bf16 needs an "
        "Ampere or newer GPU, checked at actor start.",
    )
    compile: bool = Field(
        False,
        description="torch.compile the model at actor start, for a faster steady state (not measured here), but the "
        "first segment of each new shape (segment length, frame size, tile) waits for a compilation (tens of "
        "seconds).",
    )
    tile: int | None = Field(
        None,
        ge=16,
        le=65536,
        description="Process frames in overlapping tiles of at most this many pixels a side, margins included, "
        "in the model's input pixels (LR for strong_pool, HR for light_pool); the output is the whole-frame "
        "output (up to float rounding). Default: whole frames, and after a GPU out-of-memory error the actor "
        "halves the tile and retries, keeping the tile that worked.",
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per actor (e.g. {strong_node: 1}): the pool runs only on nodes that "
        "offer them (`ray start --resources`); default: none.",
    )

    @field_validator("resources")
    @classmethod
    def _custom_resources(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if not name.strip():
                raise ValueError("a resource name must not be empty")
            if name in _BUILTIN_RESOURCES:
                raise ValueError(f"{name!r} is a built-in Ray resource: set it with num_cpus/num_gpus, not resources")
            # Ray keeps resource amounts in units of 1/10000.
            if not 0 < amount <= 1e6 or abs(amount * 10_000 - round(amount * 10_000)) > 1e-6:
                raise ValueError(f"{name}: {amount} must be above 0, at most 1e6, in steps of 0.0001")
        return value


class StorageSpec(StrictModel):
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto, other regions); default: AWS.")
    region: str | None = Field(None, description="S3 region; default: boto3's standard chain.")
    sse: Literal["AES256", "aws:kms"] | None = Field(
        None, description="Server-side encryption of every object written (SSE-S3 or SSE-KMS)."
    )
    sse_kms_key_id: str | None = Field(None, description="KMS key id for sse: aws:kms.")
    storage_class: str | None = Field(
        None,
        description="S3 storage class of every object written, staging included (e.g. STANDARD_IA; "
        "mind minimum-duration billing); GLACIER classes are refused.",
    )
    checksums: bool = Field(
        True, description="CRC32 checksums on writes and whole-object reads; off for stores that reject them."
    )

    @model_validator(mode="after")
    def _consistent(self) -> StorageSpec:
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ValueError("sse_kms_key_id needs sse: aws:kms")
        if self.storage_class in ("GLACIER", "DEEP_ARCHIVE"):
            raise ValueError(f"storage_class {self.storage_class}: the job reads back what it writes; use GLACIER_IR")
        return self


class RaySpec(StrictModel):
    address: str | None = Field(
        None, description="Ray cluster to join ('auto' or host:port); default: start a local cluster in-process."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local cluster (only when starting one).")
    task_cpus: float = Field(0.5, gt=0, description="CPUs reserved by each decode, encode, plan and stitch task.")
    # Ray re-runs work lost with a worker or a node (spot instances come and go). A task's retries
    # also pay for re-creating its lost outputs (lineage reconstruction). Tasks stay bounded: a
    # decode or plan task that crashes its worker on a damaged file would otherwise loop forever.
    task_retries: int = Field(
        3,
        ge=0,
        le=100,
        description="Retries of each decode, encode, plan or stitch task whose worker or node died, or whose "
        "output was lost with its node.",
    )
    actor_restarts: int = Field(
        -1,
        ge=-1,
        le=10_000,
        description="Restarts of each pool actor whose worker or node died, over the whole job; -1: no limit "
        "(default: a long job on spot nodes can lose one actor's node many times, and a lost actor holds no "
        "state); a bound on actor_task_retries stops a segment that kills its actor every time.",
    )
    actor_task_retries: int = Field(
        -1,
        ge=-1,
        le=10_000,
        description="Retries of each batch whose pool actor died while running it (or whose output was lost "
        "with its node); -1: until the restarted actor runs it (default: until Ray notices that a node is gone, "
        "it retries against the lost actor every few seconds and counts each try, so a small bound runs out "
        "during a plain node loss); a bound (30 or more) stops a batch that kills its actor every time.",
    )
    segments_in_flight: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Backpressure: Ray Data's object-store budget, in segments' frames (decoded LR + HR core): "
        "a stage stops taking work while the frames waiting between stages fill it, so a slow pool holds the "
        "ones before it back; default: 4 x (strong_pool.size x batch_size + light_pool.size x batch_size), "
        "the light pool left out when fused.",
    )


class SyncSpec(StrictModel):
    lease_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 24 * 3600,
        description="`pssr sync`: lifetime of a per-video lease after its last renewal (a run renews its leases "
        "every third of it): how long the videos of a run that died wait before another run takes them over.",
    )
    delete_orphans: bool = Field(
        False,
        description="`pssr sync`: delete the outputs (and their checksum sidecars) whose input is gone from SRC; "
        "off: they are only reported. Each removal is recorded in the manifest (status 'removed').",
    )
    max_attempts: int = Field(
        3,
        ge=0,
        description="`pssr sync`: runs that may fail on one input version before sync gives up on it (a new "
        "version, i.e. a changed ETag or mtime, starts afresh; `pssr run` always tries); 0: no cap.",
    )


class ReviewSpec(StrictModel):
    """Thresholds of the review flags (`flag_*` segment columns; `pssr status --flagged`, `pssr report`).

    Defaults sit well outside what the shipped models produce (on the sample and the quality benchmark,
    docs/benchmarks.md): lr_psnr 42-52 dB (bicubic itself 42-51), tfs 0.1-0.5, light_delta under 0.001;
    and flicker outside what stable detail gives on photo pans (true HR frames, sharpening: up to 2.4e-3,
    docs/status-and-report.md). They change no output, so they are not in config_hash: a finished video
    is not redone for new ones.
    """

    min_lr_psnr: float | None = Field(
        38.0,
        ge=0,
        le=100,
        description="Flag segments whose lr_psnr (dB) is below this: the downscaled output departs from the input "
        "by more than ~3 levels RMS (content the input does not support); the project's fidelity target. "
        "null: no flag.",
    )
    max_tfs: float | None = Field(
        1.0,
        ge=0,
        description="Flag segments whose tfs is above this: temporal change the input does not explain, as large "
        "as the motion itself (flicker, boiling texture). null: no flag.",
    )
    max_flicker: float | None = Field(
        5e-3,
        ge=0,
        description="Flag segments whose flicker is above this: the detail added to bicubic changes between "
        "frames, after motion compensation, by more than ~10 levels (of 255) RMS per channel; stable detail "
        "stays under 2.4e-3 on photo pans. null: no flag.",
    )
    max_light_delta: float | None = Field(
        0.02,
        ge=0,
        le=1,
        description="Flag segments whose light_delta is above this: the light model moved the strong output by "
        "more than ~5 levels on average (~25x what it does on the sample). null: no flag.",
    )


class JobSpec(StrictModel):
    input: str = Field(..., min_length=1, description="Video file, local folder or s3://bucket/prefix/.")
    output: str = Field(..., min_length=1, description="Local folder or s3://bucket/prefix/.")
    reference: str | None = Field(
        None,
        min_length=1,
        description="Benchmark mode: HR reference videos at the same relative keys as the inputs (a local "
        "folder or s3:// prefix; a file when the input is a file): the manifests get psnr, ssim and ewarp of "
        "each output against its reference; default: none.",
    )
    scale: Literal[2, 3, 4] = Field(4, description="Upscaling factor.")
    deinterlace: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Deinterlace with FFmpeg's bwdif before the models, one frame per frame (rate and timing "
        "kept): auto: sources whose frames are flagged interlaced (only those frames); always: every frame of "
        "every source (interlaced material stored as progressive); never: fields are upscaled as one picture.",
    )
    deinterlace_rate: Literal["frame", "field"] = Field(
        "frame",
        description="What deinterlacing gives: frame: a frame per frame (25i -> 25p; frame count, rate and timing "
        "kept); field: a frame per field (25i -> 50p, 29.97i -> 59.94p; bwdif's send_field, every frame of a "
        "deinterlaced source), keeping all the motion the fields hold and giving the strong model twice the "
        "temporal samples, at twice the frames to upscale and store. The default keeps the source's frame rate, "
        "which a delivery to the source's own format expects (docs/formats.md#deinterlacing-and-field-rate).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    limit: int | None = Field(None, ge=1, description="Process at most this many videos.")
    models: ModelsSpec = Field(
        ModelsSpec(), description="The strong and the light model (registry names) and where their weights are."
    )
    segment: SegmentSpec = Field(
        SegmentSpec(), description="How videos are cut into segments: scene detection, length, context frames."
    )
    encode: EncodeSpec = Field(EncodeSpec(), description="The output's codec, pixel format, container and GOP.")
    access: EncodeSpec | None = Field(
        None,
        description="An access copy beside each output, from the same frames in the same run: its codec, crf, "
        "pixel format and container (e.g. codec h264 beside an ffv1 or prores master). Written as "
        "OUTPUT_xN.access.CONTAINER with its own sidecars and its own manifest row "
        "(docs/formats.md#preservation-master-and-access-copy); default: none.",
    )
    limits: LimitsSpec = Field(
        LimitsSpec(), description="Videos refused from their headers, before any frame is decoded."
    )
    strong_pool: PoolSpec = Field(
        PoolSpec(), description="The strong model's actor pool: actors, batch, CPUs and GPUs per actor, placement."
    )
    light_pool: PoolSpec = Field(
        PoolSpec(), description="The light model's actor pool: actors, batch, CPUs and GPUs per actor, placement."
    )
    fused: bool = Field(
        False,
        description="Run both models in one actor pool, strong then light in each actor (strong_pool's actors, "
        "batch, CPUs, GPUs and placement; each model its own pool's frames_per_pass, precision and tile): the HR "
        "frames skip a trip through the object store. For single machines and small GPUs; same output.",
    )
    storage: StorageSpec = Field(
        StorageSpec(), description="S3 access (endpoint, region) and how every object is written (encryption, class)."
    )
    ray: RaySpec = Field(
        RaySpec(), description="The Ray cluster, CPUs per task, retries after lost workers or nodes, backpressure."
    )
    sync: SyncSpec = Field(SyncSpec(), description="`pssr sync` only: the per-video leases of overlapping runs.")
    sidecars: bool = Field(
        True,
        description="Checksums for archives: OUTPUT_FILE.md5 and OUTPUT_FILE.sha256 beside each output, and the "
        "job's list of both under OUTPUT/_pssr/fixity/ (the forms `md5sum -c` and `sha256sum -c` read).",
    )
    review: ReviewSpec = Field(
        ReviewSpec(), description="Review-flag thresholds of the segment metrics; they change no output."
    )

    @field_validator("input", "output", "reference")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("s3://") and len(value) <= len("s3://"):
            raise ValueError("an s3:// address needs a bucket name")
        return value

    def output_affecting(self) -> dict[str, Any]:
        """The settings that change output bytes: two runs that agree on these write the same files.

        Not `reference`: it adds figures to the manifests, never changes an output (see
        jobs/run/job.py for when a finished video is measured again). Nor `review`: its thresholds
        only decide the flags written beside the metrics. Nor `segment.range_frames`: the plan is
        the same however its probe is shared out. Nor the pools' frames_per_pass, tile and
        compile: they give the same frames up to float rounding (pool precision does not)."""
        return {
            "scale": self.scale,
            "deinterlace": self.deinterlace,
            # field rate only when set, as hardware below: the hashes of jobs from before it stay.
            **({"deinterlace_rate": self.deinterlace_rate} if self.deinterlace_rate != "frame" else {}),
            "models": {"strong": self.models.strong, "light": self.models.light},
            # range_frames decides how a plan is scanned, never the plan.
            "segment": self.segment.model_dump(exclude={"range_frames"}),
            # hardware and precision only when set: the hashes of jobs from before these settings stay.
            "encode": self.encode.model_dump(exclude={"hardware"} if self.encode.hardware == "never" else None),
            # Only when set, as hardware above.
            **({"access": self.access.model_dump()} if self.access is not None else {}),
            **{
                f"{name}_precision": pool.precision
                for name, pool in (("strong", self.strong_pool), ("light", self.light_pool))
                if pool.precision != "fp32"
            },
        }

    def config_hash(self, weight_sha256: dict[str, str | None]) -> str:
        payload = {**self.output_affecting(), "weights": weight_sha256}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value


def load_spec(model: type[M], yaml_path: str | Path | None, overrides: dict[str, Any] | None, what: str) -> M:
    """Build `model` from an optional YAML file and dotted overrides (CLI flags win over the file);
    a bad value raises ConfigError naming the field."""
    tree: dict[str, Any] = {}
    if yaml_path is not None:
        try:
            loaded = yaml.safe_load(Path(yaml_path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{yaml_path}: cannot read the {what} file: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{yaml_path}: the {what} file must hold a mapping of settings")
        tree = loaded or {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, dotted, value)
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, yaml_path, what)) from None


def load_job_spec(yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> JobSpec:
    """Build a JobSpec from an optional YAML file and dotted overrides (CLI flags win over the file)."""
    return load_spec(JobSpec, yaml_path, overrides, "job")


def format_validation_error(exc: ValidationError, source: str | Path | None = None, what: str = "job") -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or f"({what})"
        lines.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    where = f" in {source}" if source else ""
    return f"invalid {what} configuration{where}:\n  " + "\n  ".join(lines)
