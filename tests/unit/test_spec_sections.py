"""Every spec section parses into the model, and the deployment-config JSON loads unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from rollwright.spec.loader import load_spec
from rollwright.spec.reference import update
from rollwright.spec.schema import spec_schema

REPO = Path(__file__).resolve().parents[2]
FULL = """\
app: shop
artifact: {url: "https://artifacts.example/shop-2.0.0.tgz", version: 2.0.0-rc.1, sha256: "%s"}
release: {root: /srv/shop, keep: 3, shared: [log, uploads]}
service:
  name: shop-web
  exec: bin/shop --port 9000
  user: shop
  group: www
  env: {DATABASE_URL: "{{ vault_database_url }}", WORKERS: 4, DEBUG: false}
  working_dir: /srv/shop/current
  restart: always
  stop_timeout_s: 45
health: {path: /up, port: 9000, status: 204, timeout_s: 90, interval_s: 2}
rollout:
  strategy: canary
  hosts: web
  batches: [1, "25%%", "100%%"]
  max_fail_percentage: 10
  load_balancer: {hosts: edge, backend: shop_be, socket: /run/haproxy/api.sock, drain_timeout_s: 20}
database:
  engine: postgresql
  hosts: pg
  name: shop
  url_env: SHOP_DB
  backup: {dir: /var/backups/shop, keep: 14, verify: restore}
  migrations: {tool: alembic, path: alembic, table: schema_history, allow_out_of_order: true,
               acknowledge_destructive: [V7__drop_legacy.sql]}
groups:
  - {name: assets, order: 2, build_command: "npm run build"}
  - {name: functions, order: 1, hosts: web, file_patterns: ["fn/*.py"], deploy_command: "deploy {file}"}
targets:
  staging: {inventory: inventories/staging, webhook: "http://127.0.0.1:9/hook"}
  production:
    inventory: inventories/production
    after: staging
    production: true
    read_only: false
    become: true
    become_user: admin
    forks: 50
    freeze: [{start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z, reason: holidays}]
required_env: [SHOP_DB, SHOP_DB]
hooks:
  before_deploy: ["./notify start"]
  after_stage: ["echo staged"]
  after_deploy: ["./notify done"]
  on_failure: ["./notify failed"]
""" % ("b" * 64)


def test_every_section_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "rollwright.yml"
    path.write_text(FULL)
    spec = load_spec(path).spec
    assert spec.artifact and spec.artifact.url and spec.artifact.version == "2.0.0-rc.1"
    assert spec.release and spec.release.keep == 3 and spec.release.shared == ["log", "uploads"]
    assert spec.service and spec.service.name == "shop-web" and spec.service.env["WORKERS"] == 4
    assert spec.service_name == "shop-web"
    assert spec.health and spec.health.status == 204 and spec.health.interval_s == 2
    assert spec.rollout.strategy == "canary" and spec.rollout.batches == [1, "25%", "100%"]
    assert spec.rollout.load_balancer and spec.rollout.load_balancer.backend == "shop_be"
    assert spec.database and spec.database.backup and spec.database.backup.verify == "restore"
    assert spec.database.migrations and spec.database.migrations.acknowledge_destructive == ["V7__drop_legacy.sql"]
    assert [g.name for g in spec.ordered_groups] == ["functions", "assets"]
    production = spec.targets["production"]
    assert production.after == "staging" and production.become_user == "admin" and production.forks == 50
    assert production.freeze[0].start == datetime(2026, 12, 24, tzinfo=UTC)
    assert spec.targets["staging"].webhook == "http://127.0.0.1:9/hook"
    assert spec.all_required_env == ["SHOP_DB"]
    assert spec.hooks.on_failure == ["./notify failed"]


def test_deployment_config_json_loads_unchanged() -> None:
    path = REPO / "examples/deployconfig/deployconfig.json"
    raw = json.loads(path.read_text())
    spec = load_spec(path).spec
    assert spec.app == "deployconfig"
    assert [g.name for g in spec.ordered_groups] == ["migrations", "typescript_build"]
    for raw_group, group in zip(raw["groups"], spec.ordered_groups, strict=True):
        assert group.model_dump(include=set(raw_group)) == raw_group
    assert spec.health and spec.health.url == raw["health_check"]["url"]
    assert spec.health.status == 200 and spec.health.timeout_s == 30
    assert spec.all_required_env == ["DATABASE_URL", "NODE_ENV"]


def test_json_errors_point_into_the_json(tmp_path: Path) -> None:
    from rollwright.spec.loader import SpecError

    path = tmp_path / "deploy.json"
    path.write_text('{"groups": [\n  {"name": "a", "order": "first"}\n]}\n')
    try:
        load_spec(path)
    except SpecError as exc:
        assert exc.issues[0].line == 2 and exc.issues[0].field == "groups[0].order"
    else:
        raise AssertionError("a bad order must be refused")


def test_schema_describes_every_section() -> None:
    schema = spec_schema()
    assert schema["title"] == "rollwright deploy spec"
    assert set(schema["properties"]) >= {"app", "artifact", "release", "service", "health", "rollout",
                                         "database", "groups", "targets", "required_env", "hooks"}
    assert schema["required"] == ["app"]
    json.dumps(schema)


def test_the_readme_spec_reference_is_the_schema() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert update(readme) == readme, "the README's spec reference is stale: run `make docs`"
    assert "|  | `canary.window_s` | integer | `60` | ≥ 5; ≤ 3600 |" in readme  # a nested field, with its limits
