"""The `pssr` command line: the group, and its commands from their modules (run.py: run, sync,
plan; models.py: models, train; outputs.py: verify, bag, status, report; bench.py: `pssr bench ...`).
The commands import their work late: Ray's and torch's imports are slow, and `pssr --help`
needs neither.
"""

from __future__ import annotations

import click

from jobs.cli.bench import bench
from jobs.cli.models import models, train
from jobs.cli.outputs import bag, report, status, verify
from jobs.cli.run import plan, run, sync
from jobs.run.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PSSR"})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log records on stderr as text or as JSON objects; each carries the running job's id.",
)
def cli(verbose: bool, log_format: str) -> None:
    """PS-SR: upscale long videos with a two-tier super-resolution model on Ray.

    Inputs and outputs are local paths or s3://bucket/prefix/ addresses.
    """
    configure_logging(verbose, log_format)


for command in (run, sync, plan, models, train, verify, bag, status, report, bench):  # the reference's order
    cli.add_command(command)


def main() -> None:
    cli(prog_name="pssr")


if __name__ == "__main__":
    main()
