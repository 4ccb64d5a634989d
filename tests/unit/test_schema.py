"""The published JSON Schemas as editors use them, checked by the real check-jsonschema CLI, offline: every example
passes, and each broken spec fails at its field while rollwright's own loader refuses it too (the two agree)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_spec_sections import FULL

from rollwright.spec.loader import SpecError, load_spec
from rollwright.spec.schema import deployment_config_schema, spec_schema
from rollwright.spec.starter import Stack, starter_spec

REPO = Path(__file__).resolve().parents[2]
CHECK = Path(sys.executable).with_name("check-jsonschema")
# Any fetch fails at once (nothing listens on port 9): the schema is a local file and must need nothing else.
OFFLINE = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}
SHA = "a" * 64
DROP = object()  # a key the case removes

BASE: dict[str, Any] = {
    "app": "shop",
    "artifact": {"path": "dist/shop.tgz", "version": "1.0.0", "sha256": SHA},
    "release": {"root": "/srv/shop", "shared": ["log"]},
    "service": {"exec": "bin/shop", "user": "shop", "env": {"MODE": "web"}},
    "health": {"path": "/health", "port": 8080},
    "rollout": {"strategy": "rolling", "batches": [1, "50%"], "load_balancer": {"backend": "shop"}},
    "database": {"name": "shop", "backup": {"dir": "/var/backups/shop"}, "migrations": {"tool": "sql"}},
    "groups": [{"name": "assets", "build_command": "npm run build"}],
    "targets": {"staging": {"inventory": "inventories/staging"},
                "production": {"inventory": "inventories/production", "after": "staging",
                               "freeze": [{"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z"}]}},
    "smoke": [{"url": "https://shop.example.com/"}],
    "execution_environment": {"base_image": "registry.example.com/ee/base:1.0", "package_manager_path": "/usr/bin/dnf"},
}

# name, changes to BASE (dotted keys), the field check-jsonschema names ($-path), a piece of its message
BROKEN: list[tuple[str, dict[str, Any], str, str]] = [
    ("service without health", {"health": DROP}, "$", "'health' is a required property"),
    ("health without path for a service", {"health": {"url": "https://shop.example.com/up"}}, "$.health",
     "'path' is a required property"),
    ("health with neither path+port nor url", {"health": {"path": "/health"}}, "$.health",
     "'port' is a required property"),
    ("service without artifact", {"artifact": DROP}, "$", "'artifact' is a required property"),
    ("artifact without release", {"release": DROP}, "$", "'release' is a required property"),
    ("smoke without artifact", {"artifact": DROP, "service": DROP, "release": DROP}, "$",
     "'artifact' is a required property"),
    ("unknown top-level key", {"healht": {"path": "/x"}}, "$", "'healht' was unexpected"),
    ("unknown nested key", {"health.timeout": 5}, "$.health", "'timeout' was unexpected"),
    ("unknown target key", {"targets.staging.webhok": "https://hooks.example.com"}, "$.targets.staging",
     "'webhok' was unexpected"),
    ("port as a word", {"health.port": "http"}, "$.health.port", "is not of type 'integer', 'null'"),
    ("port out of range", {"health.port": 70000}, "$.health.port", "is greater than the maximum of 65535"),
    ("keep as a string", {"release.keep": "five"}, "$.release.keep", "is not of type 'integer'"),
    ("bad strategy", {"rollout.strategy": "blue-green"}, "$.rollout.strategy", "is not one of"),
    ("bad restart", {"service.restart": "sometimes"}, "$.service.restart", "is not one of"),
    ("bad backup verify", {"database.backup.verify": "yes"}, "$.database.backup.verify", "is not one of"),
    ("batch of 0 hosts", {"rollout.batches": [0]}, "$.rollout.batches[0]", "is less than the minimum of 1"),
    ("batch over 100%", {"rollout.batches": [1, "150%"]}, "$.rollout.batches[1]", "does not match"),
    ("batch as true", {"rollout.batches": [True]}, "$.rollout.batches[0]", "is not of type"),
    ("empty batches", {"rollout.batches": []}, "$.rollout.batches", "should be non-empty"),
    ("canary without load balancer", {"rollout": {"strategy": "canary"}}, "$.rollout",
     "'load_balancer' is a required property"),
    ("canary settings on rolling", {"rollout.canary": {"window_s": 30}}, "$.rollout.strategy",
     "'canary' was expected"),
    ("metrics on rolling", {"rollout.metrics": {"source": "haproxy"}}, "$.rollout.strategy", "'canary' was expected"),
    ("prometheus source without its settings", {"rollout.strategy": "canary", "rollout.metrics": {
        "source": "prometheus"}}, "$.rollout.metrics", "'prometheus' is a required property"),
    ("prometheus url with credentials", {"rollout.strategy": "canary", "rollout.metrics": {
        "source": "prometheus", "prometheus": {"url": "http://ops:pw@prom:9090", "error_ratio": 'e{v="$version"}',
                                               "latency_p95": 'l{v="$version"}'}}},
     "$.rollout.metrics.prometheus.url", "does not match"),
    ("prometheus query without the version", {"rollout.strategy": "canary", "rollout.metrics": {
        "source": "prometheus", "prometheus": {"url": "http://prom:9090", "error_ratio": "sum(rate(e[5m]))",
                                               "latency_p95": 'l{v="$version"}'}}},
     "$.rollout.metrics.prometheus.error_ratio", "does not match"),
    ("blue_green settings without strategy", {"rollout": {"blue_green": {}, "load_balancer": {"backend": "b"}}},
     "$.rollout", "'strategy' is a required property"),
    ("haproxy without backend", {"rollout.load_balancer": {"hosts": "lb"}}, "$.rollout.load_balancer",
     "'backend' is a required property"),
    ("command without undrain", {"rollout.load_balancer": {"kind": "command", "drain": "./out.sh"}},
     "$.rollout.load_balancer", "'undrain' is a required property"),
    ("command with a backend", {"rollout.load_balancer": {"kind": "command", "drain": "a", "undrain": "b",
                                                          "backend": "shop"}}, "$.rollout.load_balancer.backend",
     "is not of type 'null'"),
    ("haproxy with a drain command", {"rollout.load_balancer.drain": "./out.sh"}, "$.rollout.load_balancer.drain",
     "is not of type 'null'"),
    ("none with commands", {"rollout.load_balancer": {"kind": "none", "undrain": "b"}},
     "$.rollout.load_balancer.undrain", "is not of type 'null'"),
    ("bad load balancer kind", {"rollout.load_balancer.kind": "nginx"}, "$.rollout.load_balancer.kind",
     "is not one of"),
    ("canary behind commands", {"rollout": {"strategy": "canary", "load_balancer": {
        "kind": "command", "drain": "a", "undrain": "b"}}}, "$.rollout.load_balancer.kind", "'haproxy' was expected"),
    ("hold without load balancer", {"rollout": {"hold": {"duration_s": 10}}}, "$.rollout",
     "'load_balancer' is a required property"),
    ("hold behind commands", {"rollout": {"hold": {}, "load_balancer": {
        "kind": "command", "drain": "a", "undrain": "b"}}}, "$.rollout.load_balancer.kind", "'haproxy' was expected"),
    ("hold too short", {"rollout.hold": {"duration_s": 1}}, "$.rollout.hold.duration_s",
     "is less than the minimum of 5"),
    ("hold cpu over 100%", {"rollout.hold": {"max_cpu_percent": 101}}, "$.rollout.hold.max_cpu_percent",
     "is greater than the maximum of 100"),
    ("artifact with path and url", {"artifact.url": "https://a.example.com/shop.tgz"}, "$.artifact.url",
     "is not of type 'null'"),
    ("artifact with neither path nor url", {"artifact.path": DROP}, "$.artifact", "'url' is a required property"),
    ("bad sha256", {"artifact.sha256": "ABC"}, "$.artifact.sha256", "does not match"),
    ("ssh signature without allowed_signers", {"artifact.signature": {"method": "ssh"}}, "$.artifact.signature",
     "'allowed_signers' is a required property"),
    ("gpg signature with a namespace", {"artifact.signature": {"method": "gpg", "keyring": "k.gpg", "namespace": "x"}},
     "$.artifact.signature.namespace", "is not of type 'null'"),
    ("gpg signer not a fingerprint", {"artifact.signature": {"method": "gpg", "keyring": "k.gpg", "signers": ["bob"]}},
     "$.artifact.signature.signers[0]", "does not match"),
    ("signed url artifact", {"artifact.path": DROP, "artifact.url": "https://a.example.com/shop.tgz",
                             "artifact.signature": {"method": "ssh", "allowed_signers": "a"}}, "$.artifact.url",
     "is not of type 'null'"),
    ("signature climbing out", {"artifact.signature": {"method": "ssh", "allowed_signers": "../a"}},
     "$.artifact.signature.allowed_signers", "does not match"),
    ("bad app name", {"app": "Shop"}, "$.app", "does not match"),
    ("release root /srv", {"release.root": "/srv"}, "$.release.root", "does not match"),
    ("release root in /etc", {"release.root": "/etc/shop"}, "$.release.root", "does not match"),
    ("relative release root", {"release.root": "srv/shop"}, "$.release.root", "does not match"),
    ("backup dir climbing out", {"database.backup.dir": "/srv/shop/../../etc"}, "$.database.backup.dir",
     "does not match"),
    ("shared REVISION", {"release.shared": ["REVISION"]}, "$.release.shared[0]", "should not be valid"),
    ("shared twice", {"release.shared": ["log", "log"]}, "$.release.shared", "non-unique elements"),
    ("absolute migrations path", {"database.migrations.path": "/opt/migrations"}, "$.database.migrations.path",
     "does not match"),
    ("command tool without command", {"database.migrations.tool": "command"}, "$.database.migrations",
     "'command' is a required property"),
    ("bad migrations table", {"database.migrations.table": "History"}, "$.database.migrations.table",
     "does not match"),
    ("env template", {"service.env.TOKEN": "{{ lookup('pipe', 'id') }}"}, "$.service.env.TOKEN", "does not match"),
    ("env value null", {"service.env.TOKEN": None}, "$.service.env.TOKEN", "is not of type"),
    ("bad env name", {"service.env.1BAD": "x"}, "$.service.env", "does not match any of the regexes"),
    ("bad target name", {"targets.Prod": {"inventory": "inventories/prod"}}, "$.targets",
     "does not match any of the regexes"),
    ("target without inventory", {"targets.qa": {}}, "$.targets.qa", "'inventory' is a required property"),
    ("forks 0", {"targets.staging.forks": 0}, "$.targets.staging.forks", "is less than the minimum of 1"),
    ("webhook not a URL", {"targets.staging.webhook": "hooks.example.com"}, "$.targets.staging.webhook",
     "does not match"),
    ("become_user not a name", {"targets.staging.become_user": "Root"}, "$.targets.staging.become_user",
     "does not match"),
    ("freeze start not a date", {"targets.production.freeze": [{"start": "tomorrow", "end": "2026-12-27T00:00:00Z"}]},
     "$.targets.production.freeze[0].start", "is not a 'date-time'"),
    ("{file} in build_command", {"groups": [{"name": "a", "build_command": "make {file}"}]},
     "$.groups[0].build_command", "does not match"),
    ("{file} in post_deploy", {"groups": [{"name": "a", "post_deploy": ["rm {file}"]}]},
     "$.groups[0].post_deploy[0]", "does not match"),
    ("{file} without file_patterns", {"groups": [{"name": "a", "deploy_command": "run {file}"}]},
     "$.groups[0]", "'file_patterns' is a required property"),
    ("smoke with url and command", {"smoke": [{"url": "https://a.example.com", "command": "true"}]},
     "$.smoke[0].command", "is not of type 'null'"),
    ("smoke contains for a command", {"smoke": [{"command": "true", "contains": "ok"}]}, "$.smoke[0]",
     "'url' is a required property"),
    ("empty hook command", {"hooks": {"before_deploy": [""]}}, "$.hooks.before_deploy[0]", "should be non-empty"),
    ("build without artifact", {"artifact": DROP, "service": DROP, "smoke": DROP, "release.build": ["make"]}, "$",
     "'artifact' is a required property"),
    ("host hook without artifact", {"artifact": DROP, "service": DROP, "smoke": DROP,
                                    "hooks": {"after_switch": ["./purge"]}}, "$", "'artifact' is a required property"),
    ("canary without a service", {"service": DROP, "health": {"url": "https://shop.example.com/up"},
                                  "rollout.strategy": "canary"}, "$.rollout.strategy", "should not be valid"),
    ("health path without a service", {"service": DROP}, "$.health.path", "is not of type 'null'"),
    ("empty build command", {"release.build": [""]}, "$.release.build[0]", "should be non-empty"),
    ("rollout set to null", {"rollout": None}, "$.rollout", "is not of type 'object'"),
    ("base image without a registry", {"execution_environment.base_image": "centos:stream10"},
     "$.execution_environment.base_image", "does not match"),
    ("bad package manager", {"execution_environment.package_manager_path": "/usr/bin/yum"},
     "$.execution_environment.package_manager_path", "is not one of"),
]

# Broken deployment configs (JSON), checked against deployment_config_schema().
BROKEN_CONFIGS: list[tuple[str, Any, str, str]] = [
    ("empty document", {}, "$", "should be non-empty"),
    ("unknown key", {"groups": [], "app_name": "x"}, "$", "'app_name' was unexpected"),
    ("group without name", {"groups": [{"order": 1}]}, "$.groups[0]", "'name' is a required property"),
    ("order as text", {"groups": [{"name": "a", "order": "first"}]}, "$.groups[0].order", "is not of type"),
    ("expected_status out of range", {"health_check": {"url": "https://a.example.com", "expected_status": 700}},
     "$.health_check.expected_status", "is greater than the maximum of 599"),
    ("health_check without url", {"health_check": {"timeout_seconds": 5}}, "$.health_check",
     "'url' is a required property"),
]


def _changed(changes: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = spec
        for part in parents:
            node = node[part]
        if value is DROP:
            del node[key]
        else:
            node[key] = value
    return spec


def _check(schema: dict[str, Any], folder: Path, files: list[Path]) -> dict[str, list[tuple[str, str]]]:
    """check-jsonschema's verdict on each file: (path, message) of every error, [] for a file that passes."""
    schema_file = folder / "schema.json"
    schema_file.write_text(json.dumps(schema))
    done = subprocess.run([str(CHECK), "--schemafile", str(schema_file), "--output-format", "json", "--color",
                           "never", *map(str, files)], capture_output=True, text=True, env=OFFLINE, timeout=300,
                          check=False)
    report = json.loads(done.stdout)
    assert report.get("parse_errors", []) == [], report["parse_errors"]
    assert done.returncode == (0 if report["status"] == "ok" else 1), done.stderr
    found: dict[str, list[tuple[str, str]]] = {str(file): [] for file in files}
    for error in report["errors"]:
        found[error["filename"]].append((error["path"], error["message"]))
    return found


# name -> (the broken document, its file's name: JSON is YAML too, so the broken specs are written as JSON)
DOCUMENTS = {**{name: (_changed(changes), "rollwright.yml") for name, changes, _, _ in BROKEN},
             **{name: (data, "deployconfig.json") for name, data, _, _ in BROKEN_CONFIGS}}


def _write(folder: Path, names: list[str]) -> list[Path]:
    files = []
    for number, name in enumerate(names):
        data, file_name = DOCUMENTS[name]
        files.append(folder / str(number) / file_name)
        files[-1].parent.mkdir(parents=True)
        files[-1].write_text(json.dumps(data, indent=1))
    return files


@pytest.fixture(scope="module")
def broken_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    """One check-jsonschema run per schema over all its broken files, keyed by case name."""
    verdicts = {}
    for schema, cases in ((spec_schema(), BROKEN), (deployment_config_schema(), BROKEN_CONFIGS)):
        folder = tmp_path_factory.mktemp("broken")
        names = [name for name, *_ in cases]
        files = _write(folder, names)
        found = _check(schema, folder, files)
        verdicts.update({name: found[str(file)] for name, file in zip(names, files, strict=True)})
    return verdicts


def test_the_examples_pass(tmp_path: Path) -> None:
    """Every example spec, the full-sections spec, `init`'s starters, a static site (no service) and a spec of
    explicit nulls (unset, for the loader too) pass check-jsonschema with the spec schema; the deployment-config
    example with its own."""
    specs = sorted(path for path in {*REPO.glob("examples/**/*.yml"), *REPO.glob("examples/**/*.yaml")}
                   if not any(part.startswith(".") for part in path.relative_to(REPO).parts))  # not run state
    # (a test that runs a command on an example writes its generated project under examples/*/.rollwright/)
    assert specs, "no example specs found"
    extra = {"full.yml": FULL,
             "nulls.yml": "app: shop\nartifact:\nrelease:\nservice:\nhealth:\ndatabase:\n  name: shop\n  backup:\n"
                          "rollout:\n  load_balancer:\n  canary:\ntargets:\n  staging:\n    inventory: inv\n"
                          "    after:\n    webhook:\n",
             "site.yml": f"app: site\nartifact: {{path: dist/site.tgz, version: 1.0.0, sha256: {SHA}}}\n"
                         "release: {root: /srv/site, owner: root, build: [make]}\nhooks: {after_switch: [./purge]}\n"
                         "health: {url: 'https://site.example.com/'}\n"}
    for stack in (Stack("django", "django", "", None), Stack("node", "sql", "migrations", "npm ci && npm run build"),
                  Stack("generic", None, "migrations", None)):
        extra[f"starter-{stack.name}.yml"] = starter_spec("shop", stack)
    for name, text in extra.items():
        (tmp_path / name).write_text(text)
        specs.append(tmp_path / name)
    for spec in specs:
        load_spec(spec)  # rollwright accepts it
    assert _check(spec_schema(), tmp_path, specs) == {str(spec): [] for spec in specs}
    config = REPO / "examples/deployconfig/deployconfig.json"
    load_spec(config)
    assert _check(deployment_config_schema(), tmp_path, [config]) == {str(config): []}


@pytest.mark.parametrize(("name", "where", "message"), [(n, p, m) for n, _, p, m in BROKEN + BROKEN_CONFIGS])
def test_a_broken_spec_fails_at_its_field(tmp_path: Path, broken_verdicts: dict[str, list[tuple[str, str]]],
                                          name: str, where: str, message: str) -> None:
    errors = broken_verdicts[name]
    assert any(path == where and message in text for path, text in errors), errors
    spec = _write(tmp_path, [name])[0]
    with pytest.raises(SpecError) as refused:
        load_spec(spec)
    fields = [issue.field for issue in refused.value.issues]
    named = where.removeprefix("$").removeprefix(".")
    assert any(f.startswith(named) or named.startswith(f) for f in fields), (fields, where)


def _properties(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of every object in the schema, with its place."""
    if isinstance(schema, dict):
        for name, prop in schema.get("properties", {}).items():
            if isinstance(prop, dict):
                yield f"{where}.{name}", prop
        for key, value in schema.items():
            if key not in ("default", "examples"):
                yield from _properties(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for value in schema:
            yield from _properties(value, where)


@pytest.mark.parametrize("schema", [spec_schema(), deployment_config_schema()], ids=["spec", "deployment-config"])
def test_every_field_is_described_for_editors(schema: dict[str, Any]) -> None:
    """Hover text for every field (the if/then rules' field conditions excepted: they are not fields of their own),
    and nothing an editor would fetch."""
    fields = [(where, prop) for where, prop in _properties(schema) if "/if" not in where and "/then" not in where
              and "/else" not in where]
    assert len(fields) > 10
    assert [where for where, prop in fields if not prop.get("description", "").strip()] == []
    refs = re.findall(r'"\$ref": "([^"]*)"', json.dumps(schema))
    assert refs and all(ref.startswith("#/$defs/") for ref in refs)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "anyOf" not in json.dumps(schema)  # optional sections are plain $refs: errors name the field
