"""`harness server`: a shared MLflow server, on a PostgreSQL it starts or on a database it is given."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import bounded

NAME = "server"
HELP = "start a shared MLflow server on PostgreSQL (loopback by default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for a team's network)")
    p.add_argument("--port", type=bounded(1, 65535), default=5000)
    p.add_argument("--backend-store-uri", help="an existing database, e.g. postgresql+psycopg://user:pw@db/mlflow "
                                               "(default: start PostgreSQL in --postgres-dir)")
    p.add_argument("--postgres-dir", default=".harness/postgres", help="where the local PostgreSQL keeps its data")
    p.add_argument("--postgres-port", type=bounded(1, 65535), default=5433)
    p.add_argument("--artifacts", default=".harness/artifacts", help="where the server stores artifacts")


def run(args: argparse.Namespace) -> int:
    from harness.tracking import server

    pg = None
    backend = args.backend_store_uri
    if backend is None:
        pg = server.Postgres(Path(args.postgres_dir).resolve(), args.postgres_port)
        print(f"PostgreSQL in {pg.folder} on 127.0.0.1:{pg.port} ...")
        backend = pg.start().uri
    try:
        print(f"mlflow server on http://{args.host}:{args.port} (backend {backend}, artifacts {args.artifacts}) ...")
        proc = server.mlflow_server(backend, Path(args.artifacts), args.host, args.port,
                                    log=Path(args.artifacts).parent / "mlflow-server.log")
        print(f"ready: point clients at it with --tracking-uri http://{args.host}:{args.port} "
              "(or MLFLOW_TRACKING_URI); Ctrl-C stops it")
        try:
            proc.wait()
        finally:
            server.stop(proc)
    finally:
        if pg is not None:
            pg.stop()
    return 0
