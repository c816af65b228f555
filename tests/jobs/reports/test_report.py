"""`pssr report` on the outputs of real jobs: the HTML's structure, its crops against the videos
themselves, and a rendering in headless Chromium (Debian's package; no browser download)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from jobs.cli.main import cli
from jobs.reports.svg_plot import FLAG, LINE
from pipeline.manifest.files import read_latest
from pipeline.models.inference import to_tensor, to_uint8
from pipeline.models.strong import bicubic_upscale
from tests.jobs.conftest import FlaggedJob

pytestmark = [pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


class Elements(HTMLParser):
    """Every start tag as (tag, attributes, the enclosing section's data-video, the enclosing figure's attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict, str | None, dict | None]] = []
        self._video: str | None = None
        self._figure: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._video = attributes.get("data-video")
        elif tag == "figure":
            self._figure = attributes
        self.elements.append((tag, attributes, self._video, self._figure))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None

    def find(self, tag: str, video: str | None = None, **attributes: str) -> list[tuple[dict, dict | None]]:
        return [
            (attrs, figure)
            for name, attrs, in_video, figure in self.elements
            if name == tag and (video is None or in_video == video)
            and all(attrs.get(key.replace("_", "-")) == value for key, value in attributes.items())
        ]  # fmt: skip


def report(job: FlaggedJob, out: str, *args: str) -> str:
    s3 = ["--s3-endpoint-url", job.storage.s3.s3_endpoint_url] if job.storage.s3.s3_endpoint_url else []
    result = CliRunner().invoke(cli, ["report", job.output, "--out", out, *s3, *args])
    assert result.exit_code == 0, result.output
    return job.storage.read_bytes(out).decode()


def png_pixels(data_uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    (frame,) = av.CodecContext.create("png", "r").decode(av.Packet(base64.b64decode(data_uri[len(prefix) :])))
    return frame.to_ndarray(format="rgb24")


def frames_of(path: Path | str) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def flagged_segments(job: FlaggedJob, key: str) -> list[dict]:
    _, segments = read_latest(job.storage, job.output)
    return [s for s in segments if s["video_key"] == key and s["flagged"]]


@pytest.mark.allow_error_logs  # the broken input's failure (see flagged_local_job)
def test_a_self_contained_report_with_plots_and_crops(flagged_local_job: FlaggedJob, tmp_path: Path):
    job = flagged_local_job
    html = report(job, str(tmp_path / "report.html"))
    page = Elements(html)

    # Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert not page.find("script") and not page.find("link")
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs, _ in page.find("img"))
    assert [a["data-video"] for a, _ in page.find("section") if "data-video" in a] == [
        "broken.mp4", "moving.mp4", "still.mkv",
    ]  # fmt: skip
    for key, plots in (("moving.mp4", 4), ("still.mkv", 4), ("broken.mp4", 0)):
        svgs = page.find("svg", video=key, **{"class": "plot"})
        metrics = sorted(a["data-metric"] for a, _ in svgs)
        assert metrics == (["detail_gain", "flicker", "lr_psnr", "tfs"] if plots else [])
    assert len(page.find("line", video="moving.mp4", **{"class": "threshold"})) == 2  # max_tfs, max_flicker
    assert not page.find("figure", video="still.mkv") and not page.find("figure", video="broken.mp4")

    # A crop pair per flagged segment, at its review frame: the same window of the output video's frame
    # and of the input's frame upscaled bicubic.
    flagged = flagged_segments(job, "moving.mp4")
    figures = page.find("figure", video="moving.mp4", **{"class": "crop"})
    assert [int(a["data-segment"]) for a, _ in figures] == [s["segment_index"] for s in flagged]
    # Flicker flagged (with tfs): where flicker is worst.
    assert [int(a["data-frame"]) for a, _ in figures] == [s["flicker_worst_frame"] for s in flagged]
    inputs, outputs = frames_of(job.inputs["moving.mp4"]), frames_of(Path(job.output) / "moving_x2.mp4")
    for figure, _ in figures:
        frame, x, y = int(figure["data-frame"]), int(figure["data-x"]), int(figure["data-y"])
        images = {a["class"]: png_pixels(a["src"]) for a, f in page.find("img") if f is figure}
        height, width = images["output"].shape[:2]
        assert (height, width) == (72, 128)  # the whole 128x72 output: smaller than a crop
        assert np.array_equal(images["output"], outputs[frame][y : y + height, x : x + width])
        bicubic = to_uint8(bicubic_upscale(to_tensor(inputs[frame][None], torch.device("cpu")), 2))[0]
        assert np.array_equal(images["bicubic"], bicubic[y : y + height, x : x + width])


@pytest.mark.allow_error_logs
def test_crops_are_limited_per_video(flagged_local_job: FlaggedJob, tmp_path: Path):
    html = report(flagged_local_job, str(tmp_path / "report.html"), "--max-crops", "1")
    flagged = len(flagged_segments(flagged_local_job, "moving.mp4"))
    assert len(Elements(html).find("figure", video="moving.mp4")) == 1
    assert f"{flagged - 1} more flagged segment(s) without crops (--max-crops 1)" in html


def test_a_report_of_an_s3_output_written_to_s3(flagged_s3_job: FlaggedJob, tmp_path: Path):
    job = flagged_s3_job
    out = job.output.replace("/out/", "/reports/job.html")
    page = Elements(report(job, out))
    figures = page.find("figure", video="moving.mp4", **{"class": "crop"})
    assert len(figures) == len(flagged_segments(job, "moving.mp4")) > 0
    local = tmp_path / "moving_x2.mp4"
    job.storage.download(job.output + "moving_x2.mp4", str(local))  # read back by ranged GETs for the crops
    outputs = frames_of(local)
    for figure, _ in figures:
        frame, x, y = int(figure["data-frame"]), int(figure["data-x"]), int(figure["data-y"])
        (crop,) = [png_pixels(a["src"]) for a, f in page.find("img", **{"class": "output"}) if f is figure]
        assert np.array_equal(crop, outputs[frame][y : y + crop.shape[0], x : x + crop.shape[1]])


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing and we are root (as .ci/run does)."""
    if not os.path.exists(CHROMIUM):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
            result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
            if result.returncode:
                pytest.fail(f"apt-get install chromium failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return CHROMIUM


def colour_pixels(image: np.ndarray, hex_colour: str, tolerance: int = 24) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(int) - rgb).max(axis=2) <= tolerance).sum())


@pytest.mark.allow_error_logs
def test_chromium_renders_the_plots_and_crops(flagged_local_job: FlaggedJob, chromium: str, tmp_path: Path):
    page = tmp_path / "report.html"
    report(flagged_local_job, str(page))
    browser = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout

    # A real rendering, not a blank page: many colours (the crops' gradients), the plots' line and flag
    # colours, and ink over a good part of the page.
    (image,) = frames_of(shot)
    assert image.shape == (2000, 1200, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500
    assert colour_pixels(image, LINE) > 500 and colour_pixels(image, FLAG) > 50
    assert (image.min(axis=2) < 200).mean() > 0.05
    # The DOM the browser built holds the plots as SVG and the crops as decodable PNGs of their size.
    rendered = Elements(dom)
    assert len(rendered.find("svg", **{"class": "plot"})) == 8  # 4 metrics x 2 videos
    flagged = len(flagged_segments(flagged_local_job, "moving.mp4"))
    images = rendered.find("img")
    assert len(images) == 2 * flagged > 0
    for attrs, _ in images:
        assert png_pixels(attrs["src"]).shape == (72, 128, 3)
        assert (attrs["width"], attrs["height"]) == ("256", "144")  # shown at twice their size
