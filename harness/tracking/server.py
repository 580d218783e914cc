"""A shared tracking server: `mlflow server` on a PostgreSQL backend store, artifacts proxied.

`harness server` starts both for a team or a laptop: PostgreSQL in a folder of its own
(initialised on first use; as the `postgres` user when run as root, since PostgreSQL
refuses root) and `mlflow server` in front of it, both on loopback by default. With
`--backend-store-uri` it uses an existing database instead and starts only MLflow.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

DB_NAME, DB_USER = "mlflow", "harness"


class ServerError(HarnessError):
    """PostgreSQL or the MLflow server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise ServerError(f"PostgreSQL's {name} is not installed; on Debian or Ubuntu: apt-get install postgresql")


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run its tools as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if not runuser:
        raise ServerError("running as root, and runuser is missing to start PostgreSQL as the postgres user")
    return [runuser, "-u", "postgres", "--", *cmd]


@dataclass
class Postgres:
    """A PostgreSQL cluster in `folder`, listening on 127.0.0.1:`port`."""

    folder: Path
    port: int

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def start(self) -> Postgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        fresh = not (self.folder / "PG_VERSION").exists()
        if fresh:
            self._run([_pg_bin("initdb"), "-D", str(self.folder), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        log = self.folder / "server.log"
        self._run([_pg_bin("pg_ctl"), "-D", str(self.folder), "-l", str(log), "-w", "-t", "60", "-o",
                   f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}", "start"])
        if fresh:
            psql = [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
            self._run([*psql, "-c", f"CREATE USER {DB_USER}"])
            self._run([*psql, "-c", f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}"])
        return self

    def stop(self) -> None:
        if (self.folder / "postmaster.pid").exists():
            subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.folder), "-m", "fast", "-w", "stop"]),
                           capture_output=True, text=True)

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run(_as_postgres(cmd), capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            hint = (f"; the postgres user must be able to reach {self.folder} (chmod o+x its parent folders) "
                    "or choose --postgres-dir elsewhere") if "Permission denied" in tail[0] else ""
            raise ServerError(f"{Path(cmd[0]).name} failed: {tail[0]}{hint}")


def mlflow_server(backend_uri: str, artifacts: Path, host: str = "127.0.0.1", port: int = 5000,
                  log: Path | None = None) -> subprocess.Popen:
    """Start `mlflow server` with proxied artifacts and wait until it answers /health."""
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", str(artifacts.resolve()), "--serve-artifacts",
           "--host", host, "--port", str(port), "--workers", "1"]
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    wait_until_up(url, proc, timeout=120)
    return proc


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    import requests

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"mlflow server exited with code {proc.returncode} before answering at {url}")
        try:
            if requests.get(url + "/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise ServerError(f"mlflow server did not answer at {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
