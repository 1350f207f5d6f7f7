"""`make test-scale`: the multi-host tests run only when asked for (PLAYGROUND_SCALE_TESTS=1, with
tests/scale as the path), as they take the machine's PostgreSQL cluster down and up again."""

import os
import subprocess

import pytest

from .cluster import ROOT


@pytest.fixture(scope="module")
def scale_database_url() -> str:
    """The PostgreSQL cluster's URL: PLAYGROUND_SCALE_DATABASE_URL, else the one `.ci/postgres`
    starts and prints (it installs PostgreSQL on Debian if it is missing; as root)."""
    given = os.environ.get("PLAYGROUND_SCALE_DATABASE_URL")
    if given:
        return given
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "postgres")], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
