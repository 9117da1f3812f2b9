"""A throwaway PostgreSQL server on a loopback port, from the Debian package's binaries: for the
tests (tests/app/conftest.py) and the benchmarks (bench/crowd_bench.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Postgres:
    url: str
    data: Path
    bin: Path

    def fresh_database(self) -> str:
        """The URL of a new, empty database on this server (for a test's own schema)."""
        name = f"t{time.monotonic_ns()}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def psql(self, sql: str) -> str:
        return psql(self.url, sql)


def psql(url: str, sql: str) -> str:
    """One statement's result, as text, through psql on the server at `url`'s port."""
    port = re.search(r":(\d+)/", url).group(1)  # type: ignore[union-attr]
    binary = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
    command = [str(binary), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "torchdojo"]
    return subprocess.run(
        [*command, "-tAc", sql], capture_output=True, text=True, check=True
    ).stdout.strip()


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A fresh server with an empty `torchdojo` database, stopped and deleted afterwards."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: scripts/system-deps.sh test installs it")
    bin_dir = found[-1].parent
    # Not under pytest's tmp folder: that is private to root, and postgres runs as its own user.
    data = Path(tempfile.mkdtemp(prefix="torchdojo-pg-")) / "data"
    port = free_port()
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(data.parent, "postgres", "postgres")
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(data.parent / "log"),
            "-o",
            f"-p {port} -h 127.0.0.1 -k {data.parent}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "torchdojo",
        ],
        check=True,
    )
    try:
        yield Postgres(f"postgresql+psycopg://postgres@127.0.0.1:{port}/torchdojo", data, bin_dir)
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data.parent, ignore_errors=True)
