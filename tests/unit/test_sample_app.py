"""The sample app (examples/hello) and its build: reproducible tarballs, and the behaviours a deploy relies on.

Every app here is the built tarball, extracted and run as a real process on a loopback port: health that
starts as 503, database probing without a driver, deliberately broken builds, and draining on SIGTERM.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
BUILD_PY = HELLO / "build.py"
VERSION = "1.2.3"
PASSWORD = "s3cr3t-Pa55word"


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hello_build", BUILD_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_mod = _load_build()


@pytest.fixture(autouse=True)
def _no_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def health(port: int) -> tuple[int, dict[str, str]]:
    status, _, body = get(port, "/health")
    return status, json.loads(body)


def build_and_extract(tmp_path: Path, version: str = VERSION, **kwargs: object) -> Path:
    tarball, _ = build_mod.build(version, tmp_path / "dist", **kwargs)
    app_dir = tmp_path / "release"
    app_dir.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(app_dir, filter="data")
    return app_dir


@dataclass
class RunningApp:
    proc: subprocess.Popen[bytes]
    port: int
    out_path: Path
    err_path: Path

    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()


@contextlib.contextmanager
def run_app(app_dir: Path, startup_delay: float = 0.0, **env: str) -> Iterator[RunningApp]:
    """Start app.py on a free loopback port, wait until it accepts connections; always stop it afterwards."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
    full_env.update(env, STARTUP_DELAY_S=str(startup_delay), PYTHONUNBUFFERED="1")
    out_path, err_path = app_dir / "stdout.txt", app_dir / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(app_dir / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=app_dir,
            env=full_env,
            stdout=out,
            stderr=err,
        )
    app = RunningApp(proc, port, out_path, err_path)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, f"app exited early: {app.output()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "app did not start listening within 10 s"
                time.sleep(0.02)
        yield app
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@contextlib.contextmanager
def fake_postgres(answer: bytes = b"N") -> Iterator[tuple[int, list[bytes]]]:
    """A listener that answers an SSLRequest like PostgreSQL would; yields its port and what each client sent."""
    received: list[bytes] = []
    stop = threading.Event()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while len(data) < 8:
                        chunk = conn.recv(8 - len(data))
                        if not chunk:
                            break
                        data += chunk
                    received.append(data)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1], received
    finally:
        stop.set()
        thread.join(timeout=5)
        srv.close()


# --- build -------------------------------------------------------------------------------------------------


def test_build_is_byte_reproducible(tmp_path: Path) -> None:
    first, sha1 = build_mod.build(VERSION, tmp_path / "a")
    first_bytes = first.read_bytes()
    second, sha2 = build_mod.build(VERSION, tmp_path / "b")
    assert first.name == f"hello-{VERSION}.tar.gz"
    assert second.read_bytes() == first_bytes
    assert sha1 == sha2 == hashlib.sha256(first_bytes).hexdigest()
    # rebuilding in place gives the same bytes too
    assert build_mod.build(VERSION, tmp_path / "a")[0].read_bytes() == first_bytes
    # a different version is a different artifact
    assert build_mod.build("1.2.4", tmp_path / "a")[1] != sha1


def test_the_committed_spec_pins_what_the_build_gives(tmp_path: Path) -> None:
    """`make demo` deploys examples/hello/rollwright.yml: its sha256 must be the 1.0.0 build's (an app.py change
    without a new pin makes the demo's preflight refuse the artifact)."""
    artifact = yaml.safe_load((HELLO / "rollwright.yml").read_text())["artifact"]
    _, digest = build_mod.build(artifact["version"], tmp_path)
    assert artifact["sha256"] == digest, "run `python examples/hello/build.py 1.0.0` and pin its sha256 in the spec"


def test_build_contents_and_metadata(tmp_path: Path) -> None:
    tarball, _ = build_mod.build(VERSION, tmp_path)
    raw = tarball.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["VERSION", "app.py", "worker.py"]
        for m in members:
            assert m.isfile()
            assert (m.mode, m.uid, m.gid, m.uname, m.gname) == (0o644, 0, 0, "", "")
            assert m.mtime == build_mod.DEFAULT_MTIME
        assert tar.extractfile("VERSION").read() == f"{VERSION}\n".encode()
        assert tar.extractfile("app.py").read() == (HELLO / "app" / "app.py").read_bytes()
        assert tar.extractfile("worker.py").read() == (HELLO / "app" / "worker.py").read_bytes()


def test_source_date_epoch_sets_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    tarball, _ = build_mod.build(VERSION, tmp_path)
    with tarfile.open(tarball) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1234567890}


def test_sha_file_matches(tmp_path: Path) -> None:
    tarball, digest = build_mod.build(VERSION, tmp_path)
    sha_file = tmp_path / f"hello-{VERSION}.tar.gz.sha256"
    assert sha_file.read_text() == f"{hashlib.sha256(tarball.read_bytes()).hexdigest()}  {tarball.name}\n"
    assert digest == hashlib.sha256(tarball.read_bytes()).hexdigest()


def test_broken_markers(tmp_path: Path) -> None:
    everywhere, _ = build_mod.build(VERSION, tmp_path / "all", broken=True)
    some, _ = build_mod.build(VERSION, tmp_path / "some", broken_on=["web1", " web2 "])
    with tarfile.open(everywhere) as tar:
        assert [m.name for m in tar.getmembers()] == ["BROKEN", "VERSION", "app.py", "worker.py"]
        assert tar.extractfile("BROKEN").read() == b""
    with tarfile.open(some) as tar:
        assert tar.extractfile("BROKEN").read() == b"web1\nweb2\n"
    with pytest.raises(ValueError):
        build_mod.build(VERSION, tmp_path, broken=True, broken_on=["x"])
    worker_everywhere, _ = build_mod.build(VERSION, tmp_path / "w", broken_worker=True)
    worker_on, _ = build_mod.build(VERSION, tmp_path / "w3", broken_worker=["app3"])
    with tarfile.open(worker_everywhere) as tar:
        assert tar.extractfile("BROKEN_WORKER").read() == b"" and "BROKEN" not in tar.getnames()
    with tarfile.open(worker_on) as tar:
        assert tar.extractfile("BROKEN_WORKER").read() == b"app3\n"


def test_cli_line_and_json(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(BUILD_PY), VERSION, "-o", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    tarball = tmp_path / f"hello-{VERSION}.tar.gz"
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert run.stdout == f"hello {VERSION} {digest} {tarball}\n"

    run = subprocess.run(
        [sys.executable, str(BUILD_PY), VERSION, "-o", str(tmp_path), "--broken-on", "h1,h2", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["version"] == VERSION
    assert out["path"] == str(tarball)
    assert out["sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest() != digest
    assert out["broken"] == ["h1", "h2"]


@pytest.mark.parametrize("bad", ["../1.0", "1.0 beta", ".hidden", "1/2", "v1;rm"])
def test_bad_version_exits_2(tmp_path: Path, bad: str) -> None:
    run = subprocess.run(
        [sys.executable, str(BUILD_PY), bad, "-o", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert "invalid version" in run.stderr
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="invalid version"):
        build_mod.build(bad, tmp_path)


# --- the running app ---------------------------------------------------------------------------------------


def test_health_starting_then_ok(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path)
    with run_app(app_dir, startup_delay=2.0) as app:
        t0 = time.monotonic()
        status, body = health(app.port)
        assert (status, body["status"], body["version"]) == (503, "starting", VERSION)
        # only health reports starting: the app itself already answers
        assert get(app.port, "/")[0] == 200
        deadline = t0 + 8
        while (status, body) == (503, {"status": "starting", "version": VERSION}) and time.monotonic() < deadline:
            time.sleep(0.1)
            status, body = health(app.port)
        assert time.monotonic() - t0 >= 1.0, "health turned ok long before STARTUP_DELAY_S"
        assert status == 200
        assert body == {"status": "ok", "version": VERSION, "database": "not configured"}
        out = app.output()
        assert f"version {VERSION}" in out and "database configured: no" in out


def test_root_names_host_and_version(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path)
    with run_app(app_dir) as app:
        status, headers, body = get(app.port, "/")
        assert status == 200
        assert body.decode() == f"hello from {socket.gethostname()} version {VERSION}\n"
        assert headers["X-App-Version"] == VERSION
        assert get(app.port, "/nope")[0] == 404
        assert get(app.port, "/slow?ms=oops")[0] == 400
        assert get(app.port, "/slow?ms=10")[0] == 200
        # no access log: requests leave nothing in the app's output beyond the start line
        assert app.output().count("\n") == 1, app.output()


def test_version_unknown_without_file(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_bytes((HELLO / "app" / "app.py").read_bytes())
    with run_app(tmp_path) as app:
        status, headers, _ = get(app.port, "/")
        assert status == 200 and headers["X-App-Version"] == "unknown"
        assert health(app.port)[1]["version"] == "unknown"


def test_database_unreachable(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path)
    closed = free_port()  # nothing listens here any more
    with run_app(app_dir, DATABASE_URL=f"postgresql://app:{PASSWORD}@127.0.0.1:{closed}/app") as app:
        status, body = health(app.port)
        assert status == 503
        assert body["status"] == "database unreachable" and body["version"] == VERSION
        assert get(app.port, "/")[0] == 200
    out = app.output()
    assert "database configured: yes" in out and f"127.0.0.1:{closed}" in out
    assert PASSWORD not in out


def test_database_reachable_via_sslrequest(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path)
    with (
        fake_postgres(b"N") as (db_port, received),
        run_app(app_dir, DATABASE_URL=f"postgresql://app:{PASSWORD}@127.0.0.1:{db_port}/app?sslmode=disable") as app,
    ):
        t0 = time.monotonic()
        status, body = health(app.port)
        assert status == 200, body
        assert body == {"status": "ok", "version": VERSION, "database": "ok"}
        # the probe is exactly a PostgreSQL SSLRequest, and it is cached: a burst of checks probes once
        for _ in range(5):
            assert health(app.port)[0] == 200
        burst_s = time.monotonic() - t0
        assert received[0] == (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
        if burst_s < 0.9:  # all within the 1 s cache window (true unless the machine is badly overloaded)
            assert len(received) == 1, received
    out = app.output()
    assert "database configured: yes" in out
    assert PASSWORD not in out


def test_database_wrong_answer_is_unreachable(tmp_path: Path) -> None:
    """Something listens, but it is not PostgreSQL (it answers neither S nor N)."""
    app_dir = build_and_extract(tmp_path)
    with (
        fake_postgres(b"H") as (db_port, _),
        run_app(app_dir, DATABASE_URL=f"postgresql://app@127.0.0.1:{db_port}/app") as app,
    ):
        status, body = health(app.port)
        assert (status, body["status"]) == (503, "database unreachable")


def test_broken_build_fails_health_only(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path, broken=True)
    with run_app(app_dir, startup_delay=5.0) as app:
        for _ in range(2):
            status, body = health(app.port)
            assert (status, body) == (500, {"status": "broken", "version": VERSION})
        assert get(app.port, "/")[0] == 200


@pytest.mark.parametrize(("on_this_host", "expected"), [(True, 500), (False, 200)])
def test_broken_on_hosts(tmp_path: Path, on_this_host: bool, expected: int) -> None:
    me = socket.gethostname()
    hosts = ["other-host-a", me] if on_this_host else ["other-host-a", f"not-{me}"]
    app_dir = build_and_extract(tmp_path, broken_on=hosts)
    with run_app(app_dir) as app:
        status, body = health(app.port)
        assert status == expected, body
        assert body["status"] == ("broken" if on_this_host else "ok")
        assert get(app.port, "/")[0] == 200


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path)
    with run_app(app_dir) as app:
        result: dict[str, object] = {}

        def slow() -> None:
            try:
                status, _, body = get(app.port, "/slow?ms=1500", timeout=10)
                result["status"], result["body"] = status, body
            except Exception as exc:  # recorded, asserted below
                result["error"] = exc

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.3)
        app.proc.send_signal(signal.SIGTERM)

        # while the slow request is still running, the listening socket is already closed
        refused_while_draining = False
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not refused_while_draining:
            try:
                socket.create_connection(("127.0.0.1", app.port), timeout=0.5).close()
                time.sleep(0.05)
            except ConnectionResetError:  # a probe in the backlog as the listening socket closed: probe again
                continue
            except ConnectionRefusedError:
                refused_while_draining = app.proc.poll() is None and thread.is_alive()
        assert refused_while_draining, "new connections were still accepted during the drain"

        assert app.proc.wait(timeout=10) == 0
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert result.get("status") == 200, result
        assert result["body"] == b"slept 1500 ms\n"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", app.port), timeout=2).close()
        out = app.output()
        assert out.splitlines()[-1].startswith(f"hello: version {VERSION} stopped")


def test_faulty_build_fails_its_share_of_pages_with_healthy_health(tmp_path: Path) -> None:
    app_dir = build_and_extract(tmp_path, error_rate=0.25)
    with run_app(app_dir) as app:
        statuses = [get(app.port, "/")[0] for _ in range(40)]
        assert statuses.count(500) == 10 and statuses.count(200) == 30
        assert health(app.port)[0] == 200


def test_a_build_can_start_failing_only_once_past_its_health_gate(tmp_path: Path) -> None:
    """errors_after_s: the pages fail only from that long after the app started (what the SLO hold must catch)."""
    app_dir = build_and_extract(tmp_path, error_rate=0.25, errors_after_s=5)
    launched = time.monotonic()  # the app starts after this: its own clock is behind ours
    with run_app(app_dir) as app:
        assert health(app.port)[0] == 200
        healthy_at = time.monotonic()  # the app has started by now
        early = []
        while time.monotonic() - launched < 4.5 and len(early) < 20:
            early.append(get(app.port, "/")[0])
        assert early and set(early) == {200}
        time.sleep(max(healthy_at + 5.2 - time.monotonic(), 0))
        statuses = [get(app.port, "/")[0] for _ in range(40)]
        assert statuses.count(500) == 10 and statuses.count(200) == 30


def test_slow_build_answers_pages_later(tmp_path: Path) -> None:
    slow, plain = build_and_extract(tmp_path / "slow", delay_ms=300), build_and_extract(tmp_path / "plain")
    timings = []
    for app_dir in (slow, plain):
        with run_app(app_dir) as app:
            started = time.perf_counter()
            assert get(app.port, "/")[0] == 200
            timings.append(time.perf_counter() - started)
    assert timings[0] > timings[1] + 0.2


def test_fault_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        build_mod.build(VERSION, tmp_path, error_rate=1.5)
    with pytest.raises(ValueError, match="errors_after_s"):
        build_mod.build(VERSION, tmp_path, error_rate=0.2, errors_after_s=-1)


def test_sighup_reloads_the_release_current_names_in_the_same_process(tmp_path: Path) -> None:
    """The reload a spec's `reload_signal: HUP` asks for: in-flight requests finish, then the same PID serves the
    release `current` names now, on the same socket (a connection made meanwhile is answered, not refused)."""
    releases = tmp_path / "root" / "releases"
    for version in ("1.0.0", "2.0.0"):
        (tmp_path / version).mkdir()
        releases.mkdir(parents=True, exist_ok=True)
        build_and_extract(tmp_path / version, version).rename(releases / version)
    current = tmp_path / "root" / "current"
    current.symlink_to("releases/1.0.0")
    with run_app(current.resolve()) as app:
        assert health(app.port)[1]["version"] == "1.0.0"
        slow = threading.Thread(target=lambda: answers.append(get(app.port, "/slow?ms=700")[0]))
        answers: list[int] = []
        slow.start()
        time.sleep(0.2)
        current.unlink()
        current.symlink_to("releases/2.0.0")
        app.proc.send_signal(signal.SIGHUP)
        during = get(app.port, "/", timeout=10)  # made while the old code drains: waits in the backlog
        slow.join()
        assert answers == [200] and during[0] == 200
        deadline = time.monotonic() + 10
        while health(app.port)[1]["version"] != "2.0.0":
            assert time.monotonic() < deadline, app.output()
            time.sleep(0.05)
        assert app.proc.poll() is None  # the same process (Popen's pid) serves 2.0.0
        assert os.readlink(f"/proc/{app.proc.pid}/cwd") == str(releases / "2.0.0")
        assert "version 1.0.0 reloading on SIGHUP" in app.output()


def test_the_worker_reads_the_database_url_into_libpq_variables_and_its_broken_marker(tmp_path: Path) -> None:
    """The password reaches psql through PGPASSWORD, never its argv (which every user of the host can read)."""
    loader = importlib.util.spec_from_file_location("hello_worker", HELLO / "app" / "worker.py")
    assert loader and loader.loader
    worker = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(worker)
    assert worker.libpq_env(f"postgresql://app:{PASSWORD.replace('5', '%35')}@db1:5433/app") == {
        "PGHOST": "db1", "PGPORT": "5433", "PGUSER": "app", "PGPASSWORD": PASSWORD, "PGDATABASE": "app"}
    worker.HERE = tmp_path
    assert not worker.is_broken("app3")
    (tmp_path / "BROKEN_WORKER").write_text("app3\n")
    assert worker.is_broken("app3.lab") and not worker.is_broken("app1")
    (tmp_path / "BROKEN_WORKER").write_text("")
    assert worker.is_broken("app1")
