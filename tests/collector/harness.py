"""Real collectors and a real PostgreSQL for the tests: processes on loopback.

`Collector` runs `python -m sensor.collector run` with its own config and
SQLite file (or a PostgreSQL URL); it can be killed with SIGKILL and started
again on the same port and database. `PostgresServer` runs Debian's
PostgreSQL from a temporary data directory as an unprivileged user.
"""

from __future__ import annotations

import base64
import glob
import gzip
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, token: str | None = None, body: Any = None,
         raw: bytes | None = None, headers: dict[str, str] | None = None,
         context: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON answer) for one request; never raises on HTTP errors."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def self_signed(directory: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throw-away certificate and key for `address` (openssl), for HTTPS tests."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={address}", "-addext", f"subjectAltName=IP:{address}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def basic_auth_file(directory: Path, user: str = "prometheus",
                    password: str = "s3cret:with-colon") -> Path:
    path = directory / "metrics.auth"
    path.write_text(f"{user}:{password}\n")
    path.chmod(0o600)
    return path


def fetch(url: str, context: Any = None, auth: tuple[str, str] | None = None
          ) -> tuple[int, str]:
    """(status, body) of a GET, with basic authentication when given; never raises on
    HTTP errors."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """A Prometheus exposition as (sample name, sorted labels) → value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Collector:
    def __init__(self, directory: Path, database: str | None = None,
                 max_body_bytes: int = 1 << 20, extra: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.metrics_port = free_port()
        self.database = database or f"sqlite:///{directory / 'collector.db'}"
        self.config = directory / "collector.yaml"
        self.config.write_text(
            f"listen: 127.0.0.1:{self.port}\ndatabase: {self.database}\n"
            f"admin_token_file: {directory / 'admin.token'}\n"
            f"max_body_bytes: {max_body_bytes}\ntimezone: Asia/Ho_Chi_Minh\n"
            f"metrics: {{listen: '127.0.0.1:{self.metrics_port}'}}\n{extra}")
        self.process: subprocess.Popen | None = None
        self.log = directory / "collector.log"
        self.scheme = "https" if "tls:" in extra else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sensor.collector", "-c", str(self.config),
                               *args], capture_output=True, text=True, check=check, cwd=ROOT)

    def start(self, context: Any = None, env: dict[str, str] | None = None,
              run_args: tuple[str, ...] = ()) -> Collector:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sensor.collector", "-c", str(self.config), "run",
                 *run_args],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log.read_text()[-2000:]}")
            try:
                if self.get("/api/v1/healthz", context=context)[0] == 200:
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("collector did not answer in 20 s")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, as a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    @property
    def admin_token(self) -> str:
        return (self.directory / "admin.token").read_text().strip()

    def sensor_token(self, sensor_id: str, unit: str = "Sở Tài chính") -> str:
        return self.cli("tokens", "add", sensor_id, "--unit", unit).stdout.strip()

    def get(self, path: str, token: str | None = None, context: Any = None) -> tuple[int, Any]:
        return http("GET", self.url + path, token, context=context)

    def post(self, path: str, token: str | None, body: Any = None, **kwargs: Any
             ) -> tuple[int, Any]:
        return http("POST", self.url + path, token, body, **kwargs)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=10) as answer:
            return answer.read().decode()

    def hosts(self) -> dict[str, tuple[int, int, str]]:
        """ip → (hits, distinct indicators, status), as an admin reads them."""
        status, doc = self.get("/api/v1/hosts?limit=100000", self.admin_token)
        assert status == 200, doc
        return {h["ip"]: (h["hits"], h["indicators"], h["status"]) for h in doc["hosts"]}


def post_gzip(collector: Collector, token: str, body: Any) -> tuple[int, Any]:
    return collector.post("/api/v1/events", token, raw=gzip.compress(json.dumps(body).encode()),
                          headers={"Content-Encoding": "gzip"})


class PostgresServer:
    """Debian's PostgreSQL in a temporary data directory, owned by an unprivileged user
    when the tests run as root (the server refuses to run as root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise PostgresAbsent("PostgreSQL server binaries not found under "
                                 "/usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.directory = Path(tempfile.mkdtemp(prefix="madoc-pg-"))
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _has_user("postgres") else "nobody"
            account = pwd.getpwnam(self.user)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self.data = self.directory / "data"
        self._run("initdb", "-D", str(self.data), "-U", "madoc", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"),
                  "-w", "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=200", "start")
        self._count = 0

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.directory)

    def new_database(self) -> str:
        import psycopg

        self._count += 1
        name = f"madoc_test_{self._count}"
        with psycopg.connect(f"postgresql://madoc@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"postgresql://madoc@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresAbsent(RuntimeError):
    """No PostgreSQL server installed here (a server that fails to start is not this)."""


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
