"""Real ``roundtable serve`` processes on loopback ports, started once per session.

Tests isolate themselves by creating fresh actors (``unique``), not fresh
servers, so the suite stays fast. Commands run through the real CLI entry
point against each hub's configuration file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 1000}{next(_counter)}"


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}; last value: {last!r}")


class HubProcess:
    def __init__(self, name: str, base_dir: Path, **settings):
        self.name = name
        self.port = free_port()
        self.domain = f"localhost:{self.port}"
        self.base_url = f"http://{self.domain}"
        self.data = base_dir / name
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = self.data / "roundtable.toml"
        values = {
            "domain": self.domain,
            "listen": f"127.0.0.1:{self.port}",
            "data": str(self.data),
            "dev": True,
            "job_poll_s": 0.05,
            "job_lease_s": 2.0,
            "retry_schedule_s": [0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
            "retry_jitter": 0.0,
            "http_timeout_s": 5.0,
            "per_host_concurrency": 4,
            "log_level": "INFO",
        }
        values.update(settings)
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
        self.proc: subprocess.Popen | None = None
        self.log = self.data / "serve.log"

    # -- the server process --
    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
        env["ROUNDTABLE_CONFIG"] = str(self.config)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._healthy, timeout=30, message=f"{self.name} to start")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # -- commands --
    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run ``roundtable ARGS`` in-process against this hub's configuration."""
        from hub.cli import main

        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(["--config", str(self.config), *args])
        finally:
            sys.stdin = old_stdin
        if check and rc != 0:
            raise AssertionError(f"roundtable {' '.join(args)} failed ({rc}): {err.getvalue()}")
        return out.getvalue() if check else (rc, out.getvalue(), err.getvalue())

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args, "--json"))

    def handle(self, username: str) -> str:
        return f"@{username}@{self.domain}"

    def actor_uri(self, username: str) -> str:
        return f"{self.base_url}/users/{username}"

    def timeline(self, username: str) -> list[dict]:
        return self.cli_json("timeline", username)

    def sql(self, query: str) -> list[tuple]:
        import sqlite3

        con = sqlite3.connect(self.data / "roundtable.db", timeout=30)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


@pytest.fixture(scope="session")
def hubs(tmp_path_factory):
    for key in [k for k in os.environ if k.startswith("ROUNDTABLE_")]:
        os.environ.pop(key)
    base = tmp_path_factory.mktemp("e2e")
    a, b = HubProcess("a", base), HubProcess("b", base)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def get_json(url: str, *, accept: str = "application/activity+json") -> tuple[int, dict | None]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
            if "json" not in resp.headers.get("Content-Type", ""):
                return resp.status, body.decode()
            return resp.status, json.loads(body or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, None
