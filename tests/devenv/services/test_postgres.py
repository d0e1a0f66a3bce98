"""Postgres must run as a non-root user, who may not reach a virtualenv under a 0700 home directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from devenv.config import Settings
from devenv.services import postgres


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another user")
def test_binaries_out_of_the_users_reach_are_used_from_a_reachable_copy() -> None:
    user = postgres.ensure_os_user(Settings().postgres_os_user)
    assert user is not None
    private = Path(tempfile.mkdtemp(prefix="devenv-test-private-"))  # 0700, like a home directory
    try:
        install = private / "pginstall"
        (install / "bin").mkdir(parents=True)
        (install / "share").mkdir()
        binary = install / "bin" / "postgres"
        binary.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 18.0'\n")
        binary.chmod(0o755)
        assert not postgres.can_reach(user, binary)

        usable = postgres.reachable_bin_dir(install / "bin", user)

        assert usable != install / "bin" and postgres.can_reach(user, usable / "postgres")
        assert (usable.parent / "share").is_dir()  # the whole installation, not just bin/
        assert postgres.reachable_bin_dir(install / "bin", user) == usable  # made once, then reused
        shutil.rmtree(usable.parent)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_the_embedded_binaries_are_always_runnable_by_the_postgres_user() -> None:
    folder = postgres.bin_dir(Settings())
    user = postgres.ensure_os_user(Settings().postgres_os_user)
    usable = postgres.reachable_bin_dir(folder, user)
    assert (usable / "postgres").is_file()
    if user is not None:
        assert postgres.can_reach(user, usable / "postgres")
