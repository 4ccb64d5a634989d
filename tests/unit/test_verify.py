"""The generated testinfra suite (what it checks, from the spec) and how `rollwright verify` reads its report."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rollwright.render.project import prepare, render
from rollwright.run.verify import _read_report, print_verification
from rollwright.spec.loader import SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples/hello/rollwright.yml"


def _verify_files(tmp_path: Path) -> dict[str, str]:
    files = render(prepare(load_spec(HELLO), "staging"))
    return {path: data.decode() for path, data in files.items() if path.startswith("verify/")}


def _constants(source: str) -> dict[str, object]:
    """The module's literal constants; an app file's `testinfra_hosts` reads the environment, so it is
    evaluated with ROLLWRIGHT_VERIFY_HOSTS unset, as a plain `pytest verify` would."""
    tree = ast.parse(source)
    found = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body  # type: ignore[attr-defined]
             if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant | ast.List)
             and node.targets[0].id != "testinfra_hosts"}  # type: ignore[attr-defined]
    hosts = next(node for node in tree.body if isinstance(node, ast.Assign)
                 and node.targets[0].id == "testinfra_hosts")  # type: ignore[attr-defined]
    found["testinfra_hosts"] = eval(compile(ast.Expression(hosts.value), "verify", "eval"),
                                    {"os": type("os", (), {"environ": {}})})
    return found


def test_the_suite_checks_each_group_with_the_spec_values(tmp_path: Path) -> None:
    files = _verify_files(tmp_path)
    assert sorted(files) == ["verify/conftest.py", "verify/pytest.ini", "verify/test_app.py", "verify/test_db.py",
                             "verify/test_lb.py"]
    app = _constants(files["verify/test_app.py"])
    assert app["testinfra_hosts"] == ["ansible://app"]
    assert (app["SERVICE"], app["USER"], app["ROOT"], app["VERSION"], app["PORT"]) == (
        "hello", "hello", "/srv/hello", "1.0.0", 8080)
    assert app["HEALTH_URL"] == "http://127.0.0.1:8080/health" and app["HEALTH_STATUS"] == 200
    assert app["RUNS_IN_CURRENT"] is True  # no absolute working_dir: the process's folder names its release
    tests = [n.name for n in ast.parse(files["verify/test_app.py"]).body
             if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert tests == ["test_current_is_the_deployed_release", "test_release_folder_owner_and_mode",
                     "test_unit_is_enabled_and_running", "test_the_running_process_runs_the_deployed_release",
                     "test_env_file_is_private_to_the_service_user",
                     "test_service_listens_on_its_port", "test_health_endpoint_answers_from_the_host"]
    lb = _constants(files["verify/test_lb.py"])
    assert (lb["testinfra_hosts"], lb["BACKEND"]) == (["ansible://lb"], "app")
    db = _constants(files["verify/test_db.py"])
    assert db["DATABASE"] == "app" and db["TABLE"] == "rollwright_schema_history"
    assert db["MIGRATIONS"] == sorted(p.name for p in (REPO / "examples/hello/migrations").glob("V*.sql"))
    for source in files.values():
        if source.startswith('"""'):
            compile(source, "generated", "exec")


def test_one_remote_call_gathers_the_facts_and_each_check_fails_on_its_own(tmp_path: Path) -> None:
    """The app file's gather script runs here (python3, as on a host); every check passes on good facts
    and fails, in its own words, when its one fact is wrong."""
    source = _verify_files(tmp_path)["verify/test_app.py"]
    suite: dict[str, object] = {}
    exec(compile(source, "test_app", "exec"), suite)  # the generated file, rendered above
    (tmp_path / "srv/releases/1.0.0").mkdir(parents=True)
    (tmp_path / "srv/releases/1.0.0/REVISION").write_text("1.0.0\n")
    (tmp_path / "srv/current").symlink_to(tmp_path / "srv/releases/1.0.0")
    gathered = subprocess.run([sys.executable, "-c", str(suite["GATHER"]), "hello", str(tmp_path / "srv"), "1.0.0",
                               str(tmp_path / "none.env"), "http://127.0.0.1:9/health"],
                              capture_output=True, text=True, check=True)
    facts = json.loads(gathered.stdout)
    assert facts["current_is_link"] and facts["revision"] == "1.0.0" and facts["release"]["dir"]
    assert facts["env_file"] is None and facts["health"]["error"]
    suite["ROOT"] = "/srv/hello"
    good = {"unit": {"UnitFileState": "enabled", "ActiveState": "active", "MainPID": "42"},
            "current_is_link": True, "current_target": "/srv/hello/releases/1.0.0", "revision": "1.0.0",
            "cwd": "/srv/hello/releases/1.0.0", "ports": [22, 8080],
            "release": {"dir": True, "file": False, "mode": "0o755", "user": "root", "group": "root"},
            "env_file": {"dir": False, "file": True, "mode": "0o600", "user": "hello", "group": "hello"},
            "health": {"status": 200, "body": '{"version": "1.0.0"}', "error": ""}}
    broken = {
        "test_unit_is_enabled_and_running": ("unit", {"UnitFileState": "enabled", "ActiveState": "failed"},
                                             "hello.service is not running"),
        "test_current_is_the_deployed_release": ("revision", "0.9.0", "REVISION says '0.9.0'"),
        "test_the_running_process_runs_the_deployed_release": ("cwd", "/srv/hello/releases/0.9.0",
                                                               "the process runs in /srv/hello/releases/0.9.0"),
        "test_release_folder_owner_and_mode": ("release", {**good["release"], "mode": "0o777"}, "owner, group, mode"),
        "test_env_file_is_private_to_the_service_user": ("env_file", None, "hello.env is missing"),
        "test_service_listens_on_its_port": ("ports", [22], "nothing listens on port 8080"),
        "test_health_endpoint_answers_from_the_host": ("health", {**good["health"], "status": 503}, "answered 503"),
    }
    for name, (key, value, said) in broken.items():
        check = suite[name]
        check(good)  # type: ignore[operator]
        with pytest.raises(AssertionError, match=re.escape(said)):
            check({**good, key: value})  # type: ignore[operator]


READS = """
import json, os, time

testinfra_hosts = [{hosts}]


def read(host):
    began = time.monotonic()
    time.sleep(0.3)
    with open(os.environ["READ_LOG"], "a") as log:
        log.write(json.dumps([__name__, host.backend.get_pytest_id(), began, time.monotonic()]) + "\\n")
    return host.backend.get_pytest_id()


def test_reads_its_host(facts, host):
    assert facts == host.backend.get_pytest_id()
"""


def test_the_conftest_reads_every_host_at_once_and_one_host_at_a_time(tmp_path: Path) -> None:
    """One pytest process: every file's read starts on every host when collection ends (reads of different
    hosts overlap), the reads of one host never overlap, and each file's checks get their own file's read."""
    suite = tmp_path / "verify"
    suite.mkdir()
    for path, source in _verify_files(tmp_path).items():
        if not path.startswith("verify/test_"):
            (tmp_path / path).write_text(source)
    (suite / "test_one.py").write_text(READS.format(hosts='"ssh://a", "ssh://b", "ssh://c"'))
    (suite / "test_two.py").write_text(READS.format(hosts='"ssh://a"'))  # a second file on the same host
    log = tmp_path / "reads.log"
    proc = subprocess.run([sys.executable, "-m", "pytest", "verify", "-q", "-p", "no:xdist"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False, env={
                              "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "READ_LOG": str(log)})
    assert proc.returncode == 0 and "4 passed" in proc.stdout, proc.stdout + proc.stderr
    reads = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((module, host) for module, host, *_ in reads) == [
        ("test_one", "ssh://a"), ("test_one", "ssh://b"), ("test_one", "ssh://c"), ("test_two", "ssh://a")]
    spans = {(module, host): (began, ended) for module, host, began, ended in reads}
    one = [span for (module, _), span in spans.items() if module == "test_one"]  # three hosts
    assert max(began for began, _ in one) < min(ended for _, ended in one), "the hosts were not read at once"
    first, second = sorted([spans[("test_one", "ssh://a")], spans[("test_two", "ssh://a")]])
    assert first[1] <= second[0], "two reads of one host overlapped"


def test_the_report_names_each_failing_host_and_check(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text("""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="test_app" name="test_unit_is_enabled_and_running[ansible://app1]" time="0.3"/>
<testcase classname="test_app" name="test_unit_is_enabled_and_running[ansible://app2]" time="0.3">
  <failure message="AssertionError: hello.service is not running&#10;assert False">trace</failure></testcase>
<testcase classname="test_lb" name="test_every_app_server_is_ready_in_the_backend[ansible://lb1]" time="0.2">
  <failure message="AssertionError: not ready in backend app: app2 (op state 0, admin state 0)">x</failure>
</testcase>
<testcase classname="test_db" name="test_no_failed_or_pending_migration[ansible://db1]" time="0.1">
  <skipped message="no db"/></testcase>
</testsuite></testsuites>""")
    result = _read_report(report)
    assert result.passed == 1 and not result.ok
    assert [(f.host, f.check, f.message) for f in result.failures] == [
        ("app2", "unit is enabled and running", "hello.service is not running"),
        ("lb1", "every app server is ready in the backend",
         "not ready in backend app: app2 (op state 0, admin state 0)"),
    ]
    lines: list[str] = []
    print_verification(lines.append, result)
    assert lines[0].startswith("✗ verify: 2 failed, 1 passed")
    assert lines[1].split() == ["app2", "unit", "is", "enabled", "and", "running:", "hello.service", "is", "not",
                                "running"]


def test_smoke_checks_run_after_the_rollout_and_bad_ones_are_refused(tmp_path: Path) -> None:
    text = HELLO.read_text().replace("required_env: []", "required_env: []\nsmoke:\n"
                                     "  - {url: 'http://lb1/', contains: 'version {{ x }}'}\n"
                                     "  - {command: 'curl -fsS http://lb1/health', attempts: 1}\n")
    spec = tmp_path / "rollwright.yml"
    spec.write_text(text.replace("path: dist/", f"path: {HELLO.parent}/dist/")
                    .replace("../../inventories", str(REPO / "inventories")))
    shutil.copytree(HELLO.parent / "migrations", tmp_path / "migrations")
    files = render(prepare(load_spec(spec), "staging"))
    site = files["site.yml"].decode()
    assert site.index("Roll out in batches") < site.index("Prove the release: smoke checks") < len(site)
    assert "rollwright_smoke_expect: !unsafe 'version {{ x }}'" in site  # never templated
    spec.write_text(text.replace("attempts: 1}", "attempts: 1, url: 'http://x/'}"))
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert "rollwright.yml:58:5: smoke[1]: set exactly one of 'url'" in str(error.value)  # file, line, field
