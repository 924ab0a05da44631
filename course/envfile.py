"""Print a conda/mamba environment file: Python plus exactly the pins of a uv lock file.

    python -m course.envfile > environment.yml                                  # Airflow's uv.lock
    python -m course.envfile --project orchestrators > environment-orchestrators.yml
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HEADER = """\
# conda/mamba users: `mamba env create -f {file} && conda activate {name}`.
# Generated from {lock} by `make lock`; do not edit by hand.
name: {name}
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""
# What each uv project becomes for conda: the environment's name and its file.
ENVIRONMENTS = {
    ".": ("airflow-course", "environment.yml"),
    "orchestrators": ("airflow-course-orchestrators", "environment-orchestrators.yml"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.envfile", description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".", choices=sorted(ENVIRONMENTS),
                        help="the folder of the uv project (default: the course's Airflow project)")
    args = parser.parse_args(argv)
    name, file = ENVIRONMENTS[args.project]
    exported = subprocess.run(
        [os.environ.get("UV", "uv"), "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate",
         "--no-emit-project", "--format", "requirements-txt", "--project", args.project],
        check=True, capture_output=True, text=True).stdout
    pins = [line.strip() for line in exported.splitlines()
            if line.strip() and not line.startswith(("#", "-"))]
    lock = "uv.lock" if args.project == "." else f"{args.project}/uv.lock"
    sys.stdout.write(HEADER.format(file=file, name=name, lock=lock)
                     + "".join(f'    - "{pin}"\n' for pin in pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
