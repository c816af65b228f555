"""The docs document what the code defines: the two commands first, the generated references up to date, every
manifest column (and no other), links that lead somewhere, and an example job file that loads.

The command lines in the docs are parsed by the programs' own click commands in tests/infra/test_manifests.py;
examples/query_manifests.py runs on a real job's output in tests/jobs/test_examples.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs.cli.reference import REFERENCES
from pipeline.config import load_job_spec
from pipeline.manifest.video import VIDEO_SCHEMA
from pipeline.segment import SEGMENT_SCHEMA

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
MANIFEST_DOC = (ROOT / "docs" / "manifest.md").read_text()
DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *DOC_PAGES]


def test_the_two_commands_come_first():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


@pytest.mark.parametrize("relative", sorted(REFERENCES))
def test_the_generated_references_match_the_code(relative: str):
    committed = (ROOT / relative).read_text() if (ROOT / relative).exists() else ""
    assert committed == REFERENCES[relative](), f"{relative} is out of date: run `make docs`"


def documented_columns(section: str) -> list[str]:
    """The column names in the first cell of each row of the table under `## <section>` in docs/manifest.md."""
    body = MANIFEST_DOC.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1] for line in body.splitlines() if line.startswith("| `")]
    return [name for cell in cells for name in re.findall(r"`(\w+)`", cell)]


@pytest.mark.parametrize(("section", "schema"), [("Segment rows", SEGMENT_SCHEMA), ("Video rows", VIDEO_SCHEMA)])
def test_the_manifest_tables_list_exactly_the_schema(section: str, schema):
    documented = documented_columns(section)
    missing = [f.name for f in schema if f.name not in documented]
    unknown = sorted(set(documented) - set(schema.names))
    assert not missing, f"docs/manifest.md, {section}: document {missing}"
    assert not unknown, f"docs/manifest.md, {section}: {unknown} are not columns of the schema"
    assert len(documented) == len(set(documented)), f"docs/manifest.md, {section}: a column is listed twice"


def test_every_metric_is_defined():
    definitions = MANIFEST_DOC.split("\n## Metric definitions\n", 1)[1].split("\n## Segment rows\n", 1)[0]
    for metric in ("tfs", "flicker", "lr_psnr", "detail_gain", "light_delta", "psnr", "ssim", "ewarp"):
        assert f"`{metric}` =" in definitions, metric


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_lead_somewhere(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: no heading #{anchor} in {path or 'it'}"


def test_the_links_checker_catches_a_wrong_anchor(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Running on a schedule\n\n## 2. Plan (Ray task per video)\n")
    assert anchors(page) == {"running-on-a-schedule", "2-plan-ray-task-per-video"}


def test_every_page_is_reachable_from_the_readme():
    assert "](CONTRIBUTING.md)" in README and "](LICENSE)" in README
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in re.findall(r"\]\((docs/[^)\s]+)\)", README)}
    for page in DOC_PAGES:
        if page.parent.name == "models":  # model cards: linked from docs/training.md
            continue
        assert page in linked or page.parent in linked, f"README links no way to {page.relative_to(ROOT)}"


def test_the_example_job_file_loads():
    spec = load_job_spec(ROOT / "examples" / "job.yaml", {"input": "s3://archive/tapes/", "output": "s3://archive/m/"})
    # What its comments promise: x2 10-bit ProRes masters, deinterlaced, GPU pools with stated num_gpus.
    assert (spec.scale, spec.deinterlace, spec.encode.codec, spec.encode.pix_fmt) == (
        2,
        "auto",
        "prores",
        "yuv422p10le",
    )
    assert spec.encode.container_format == "mov"
    assert spec.strong_pool.num_gpus == 1 and spec.light_pool.num_gpus == 0.5
