"""Malformed specs: each gives a precise file:line:column error naming the field, exit 2, no traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rollwright.cli import main

VALID = """\
app: hello
artifact:
  path: dist/hello.tar.gz
  version: "1.0.0"
  sha256: "{sha}"
release:
  root: /srv/hello
service:
  exec: bin/hello
  user: hello
health:
  path: /health
  port: 8080
""".format(sha="a" * 64)

# (case id, spec text, expected line, text the message must contain)
CASES = [
    ("unknown-top-key", VALID + "servce: {}\n", 14, "servce: unknown key 'servce' (did you mean 'service'?)"),
    ("unknown-nested-key", VALID.replace("  user: hello", "  usr: hello\n  user: hello"), 10,
     "service.usr: unknown key 'usr' (did you mean 'user'?)"),
    ("app-uppercase", VALID.replace("app: hello", "app: Hello"), 1, "app: expected a lowercase name"),
    ("app-missing", VALID.replace("app: hello\n", ""), 1, "required field missing: app"),
    ("version-float", VALID.replace('version: "1.0.0"', "version: 1.4"), 4, 'quote it: "1.4"'),
    ("sha-short", VALID.replace("a" * 64, "abc"), 5, "artifact.sha256: expected a sha256"),
    ("sha-uppercase", VALID.replace("a" * 64, "A" * 64), 5, "artifact.sha256"),
    ("artifact-both-sources", VALID.replace("  path: dist/hello.tar.gz", "  path: a.tgz\n  url: https://x/a.tgz"), 3,
     "set exactly one of 'path'"),
    ("artifact-url-scheme", VALID.replace("  path: dist/hello.tar.gz", "  url: ftp://x/a.tgz"), 3,
     "artifact.url: expected an http:// or https:// URL"),
    ("release-relative-root", VALID.replace("root: /srv/hello", "root: srv/hello"), 7, "release.root: expected an absolute path"),
    ("release-keep-one", VALID.replace("  root: /srv/hello", "  root: /srv/hello\n  keep: 1"), 8,
     "release.keep: expected a number >= 2"),
    ("release-shared-absolute", VALID.replace("  root: /srv/hello", "  root: /srv/hello\n  shared: [/log]"), 8,
     "release.shared[0]: expected a path relative to the release root"),
    ("service-restart-bad", VALID.replace("  user: hello", "  user: hello\n  restart: sometimes"), 11,
     "service.restart: expected one of 'always'"),
    ("service-env-bad-name", VALID.replace("  user: hello", "  user: hello\n  env: {1BAD: x}"), 11,
     "service.env"),
    ("service-exec-empty", VALID.replace("exec: bin/hello", 'exec: ""'), 9, "service.exec: expected a non-empty value"),
    ("health-port-high", VALID.replace("port: 8080", "port: 70000"), 13, "health.port: expected a number <= 65535"),
    ("health-port-string", VALID.replace("port: 8080", "port: http"), 13, "health.port: expected a whole number"),
    ("health-path-relative", VALID.replace("path: /health", "path: health"), 12, "health.path"),
    ("health-no-port", VALID.replace("  port: 8080\n", ""), 12, "set 'path' and 'port'"),
    ("health-timeout-zero", VALID + "  timeout_s: 0\n", 14, "health.timeout_s: expected a number >= 1"),
    ("rollout-strategy", VALID + "rollout:\n  strategy: yolo\n", 15, "rollout.strategy: expected one of 'rolling'"),
    ("rollout-batch-word", VALID + "rollout:\n  batches: [1, fifty]\n", 15, "rollout.batches[1]"),
    ("rollout-batch-zero", VALID + "rollout:\n  batches: [0]\n", 15, "rollout.batches[0]: a batch needs at least 1 host"),
    ("rollout-batch-pct-over", VALID + "rollout:\n  batches: [\"150%\"]\n", 15, "percentage from 1% to 100%"),
    ("rollout-batches-empty", VALID + "rollout:\n  batches: []\n", 15, "rollout.batches"),
    ("rollout-max-fail", VALID + "rollout:\n  max_fail_percentage: 101\n", 15, "rollout.max_fail_percentage"),
    ("lb-kind", VALID + "rollout:\n  load_balancer: {kind: nginx, backend: app}\n", 15, "rollout.load_balancer.kind"),
    ("lb-no-backend", VALID + "rollout:\n  load_balancer: {hosts: lb}\n", 15,
     "rollout.load_balancer: required field missing: backend"),
    ("db-engine", VALID + "database: {engine: mysql, name: app}\n", 14, "database.engine: expected one of 'postgresql'"),
    ("db-backup-dir-relative", VALID + "database:\n  name: app\n  backup: {dir: backups}\n", 16,
     "database.backup.dir: expected an absolute path"),
    ("migrations-tool", VALID + "database:\n  name: app\n  migrations: {tool: liquibase}\n", 16,
     "database.migrations.tool"),
    ("migrations-command-missing", VALID + "database:\n  name: app\n  migrations: {tool: command}\n", 16,
     "tool 'command' needs 'command'"),
    ("group-name-bad", VALID + "groups:\n  - {name: Build Step}\n", 15, "groups[0].name"),
    ("group-file-in-pre", VALID + "groups:\n  - {name: g, pre_deploy: ['cat {file}']}\n", 15,
     "'{file}' can only be used in 'deploy_command'"),
    ("group-file-no-patterns", VALID + "groups:\n  - {name: g, deploy_command: 'cat {file}'}\n", 15,
     "'file_patterns' is empty"),
    ("group-unknown-key", VALID + "groups:\n  - {name: g, deploy_cmd: x}\n", 15,
     "groups[0].deploy_cmd: unknown key 'deploy_cmd' (did you mean 'deploy_command'?)"),
    ("groups-duplicate", VALID + "groups:\n  - {name: g}\n  - {name: g}\n", 1, "group names must be unique"),
    ("target-after-unknown", VALID + "targets:\n  prod: {inventory: inv, after: stagin}\n", 1,
     "target 'prod' comes after 'stagin'"),
    ("target-forks", VALID + "targets:\n  prod: {inventory: inv, forks: 0}\n", 15, "targets.prod.forks"),
    ("freeze-order", VALID + "targets:\n  prod:\n    inventory: inv\n    freeze:\n      - {start: 2026-12-24T00:00:00Z,"
     " end: 2026-12-20T00:00:00Z}\n", 18, "'end' must be after 'start'"),
    ("freeze-date-bad", VALID + "targets:\n  prod:\n    inventory: inv\n    freeze:\n      - {start: soon, end: later}\n",
     18, "expected a date-time"),
    ("hooks-unknown", VALID + "hooks:\n  before_restart: [x]\n", 15, "hooks.before_restart: unknown key"),
    ("required-env-bad", VALID + "required_env: [database-url]\n", 14, "required_env[0]"),
    ("service-without-health", VALID.replace("health:\n  path: /health\n  port: 8080\n", ""), 1,
     "'service' needs 'health'"),
    ("artifact-without-service", "app: hello\nartifact: {path: a.tgz, version: '1', sha256: '" + "a" * 64 + "'}\n", 1,
     "'artifact' needs 'release'"),
    ("section-not-mapping", VALID.replace("release:\n  root: /srv/hello\n", "release: /srv/hello\n"), 6,
     "release: expected a mapping"),
    ("list-not-mapping", "- app: hello\n", 1, "expected a mapping of sections"),
    ("empty-file", "", 1, "the file is empty"),
    ("yaml-syntax", "app: hello\nrelease: {root: /srv\n", 3, "not valid YAML"),
    ("yaml-duplicate-key", "app: hello\napp: again\n", 2, "not valid YAML"),
    ("yaml-tab-indent", "app: hello\nrelease:\n\troot: /srv\n", 3, "not valid YAML"),
]


@pytest.mark.parametrize(("text", "line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_spec_names_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  text: str, line: int, expected: str) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text(text)
    before = sorted(tmp_path.iterdir())
    code = main(["validate", "-f", str(spec)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert f"{spec}:{line}:" in err, err
    assert expected in err, err
    assert sorted(tmp_path.iterdir()) == before  # a bad spec changes nothing


def test_there_are_at_least_30_malformed_cases() -> None:
    assert len(CASES) >= 30


def test_every_issue_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text(VALID.replace("port: 8080", "port: 0").replace("app: hello", "app: X") + "extra: 1\n")
    assert main(["validate", "-f", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "3 problems" in err
    assert err.index(":1:") < err.index(":13:") < err.index(":14:")  # in file order


def test_missing_spec_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", str(tmp_path / "nope.yml")]) == 2
    assert "no such spec file" in capsys.readouterr().err


def test_validate_json_output_lists_issues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    spec = tmp_path / "rollwright.yml"
    spec.write_text(textwrap.dedent(VALID) + "rollout: {strategy: yolo}\n")
    assert main(["validate", "--json", "-f", str(spec)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["issues"][0]["field"] == "rollout.strategy"
    assert report["issues"][0]["line"] == 14
