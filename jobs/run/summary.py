"""What a job did, as the CLI prints it and JSON Lines' closing `summary` object carries it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JobSummary:
    job_id: str
    output: str
    videos_ok: list[str] = field(default_factory=list)
    videos_failed: dict[str, str] = field(default_factory=dict)
    videos_skipped: list[str] = field(default_factory=list)  # done by an earlier run
    segments_reused: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    access_copies: dict[str, str] = field(default_factory=dict)  # video key -> its access copy (JobSpec.access)
    frames: int = 0
    wall_s: float = 0.0
    first_output_s: float | None = None  # from the job's start to its first chunk written; None if none was
    # From the process's start (the CLI's; else the job's) to both pools' first models loaded; None if never.
    startup_s: float | None = None

    @property
    def ok(self) -> bool:
        return not self.videos_failed
