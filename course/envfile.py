"""Print environment.yml for conda/mamba users: Python plus exactly the pins of uv.lock."""

from __future__ import annotations

import os
import subprocess
import sys

HEADER = """\
# conda/mamba users: `mamba env create -f environment.yml && conda activate airflow-course`.
# Generated from uv.lock by `make lock`; do not edit by hand.
name: airflow-course
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def main() -> int:
    exported = subprocess.run(
        [os.environ.get("UV", "uv"), "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate",
         "--no-emit-project", "--format", "requirements-txt"],
        check=True, capture_output=True, text=True).stdout
    pins = [line.strip() for line in exported.splitlines()
            if line.strip() and not line.startswith(("#", "-"))]
    sys.stdout.write(HEADER + "".join(f'    - "{pin}"\n' for pin in pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
