"""`rollwright init`: a commented starter spec, fitted to the stack found in the project folder."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollwright.spec.deployconfig import safe_name

SCHEMA_FILE = "rollwright.schema.json"  # written beside the spec; the modeline points editors at it
MODELINE = f"# yaml-language-server: $schema=./{SCHEMA_FILE}"


@dataclass(frozen=True)
class Stack:
    """What init found: how the app's migrations run and how it is built."""

    name: str
    migrations_tool: str | None
    migrations_path: str
    build: str | None


def detect_stack(folder: Path) -> Stack:
    """Guess the stack from well-known project files; the first match wins."""
    def has(*names: str) -> bool:
        return any((folder / name).exists() for name in names)

    python = has("pyproject.toml", "requirements.txt", "setup.py")
    if python and has("manage.py"):
        return Stack("django", "django", "", None)
    if python and has("alembic.ini", "alembic"):
        return Stack("python+alembic", "alembic", "alembic", None)
    if has("pom.xml", "build.gradle", "build.gradle.kts"):
        build = "mvn -q package" if has("pom.xml") else "./gradlew build"
        return Stack("java+flyway", "flyway", "src/main/resources/db/migration", build)
    if has("package.json"):
        return Stack("node", "sql" if has("migrations") else None, "migrations", "npm ci && npm run build")
    if list(folder.glob("migrations/*.sql")):
        return Stack("sql", "sql", "migrations", None)
    if python:
        return Stack("python", None, "migrations", None)
    return Stack("generic", None, "migrations", None)


def app_name(folder: Path) -> tuple[str, str]:
    """The app's name as the project names itself (pyproject.toml's [project] or poetry name, package.json's
    name without an npm scope), else the folder's; made a valid spec name. Returns (name, where it came from)."""
    def read(name: str, parse: Any) -> Any:
        try:
            return parse((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):  # unreadable or malformed: not a source of the name
            return None

    pyproject = read("pyproject.toml", tomllib.loads)
    if isinstance(pyproject, dict):
        project, poetry = pyproject.get("project"), pyproject.get("tool", {}).get("poetry")
        for section in (project, poetry):
            if isinstance(section, dict) and isinstance(section.get("name"), str) and section["name"].strip():
                return safe_name(section["name"]), "pyproject.toml"
    package = read("package.json", json.loads)
    if isinstance(package, dict) and isinstance(package.get("name"), str) and package["name"].strip():
        return safe_name(package["name"].rpartition("/")[2] if package["name"].startswith("@")
                         else package["name"]), "package.json"
    return safe_name(folder.resolve().name), "the folder's name"


def starter_spec(app: str, stack: Stack) -> str:
    """A valid spec with every section explained; values to replace are marked CHANGE ME."""
    migrations = (
        f"""  migrations:
    tool: {stack.migrations_tool}            # sql | alembic | flyway | django | command
    path: {stack.migrations_path or '.'}
"""
        if stack.migrations_tool
        else "  # migrations: {tool: sql, path: migrations}   # sql | alembic | flyway | django | command\n"
    )
    groups = (
        f"""groups:                       # ordered command groups, run on the control node by default
  - name: build
    order: 1
    build_command: {stack.build!r}
"""
        if stack.build
        else "groups: []                    # ordered command groups (build, assets, functions ...)\n"
    )
    return f"""{MODELINE}
# rollwright deploy spec for {app} (detected stack: {stack.name}); {SCHEMA_FILE} beside it lets
# editors check and complete it. Check it with `rollwright validate`, see the steps with `rollwright plan`.
app: {app}

artifact:                     # the release tarball, pinned by its sha256
  path: dist/{app}.tar.gz     # or url: https://...
  version: "0.1.0"            # CHANGE ME
  sha256: "{'0' * 64}"  # CHANGE ME: sha256sum dist/{app}.tar.gz
  # Or leave these three to the build, either way without editing this file:
  #   rollwright deploy --artifact dist/{app}-1.4.0.tar.gz   (sha256 computed, version from the name)
  #   artifact: {{from: dist/build.json}}   (a file the build writes: {{"path", "version", "sha256"}})

release:
  root: /srv/{app}            # releases/<version>, shared/, current
  keep: 5                     # releases kept; current and previous are never removed
  shared: [log]               # paths linked from shared/ into each release

service:                      # the systemd unit, run from <root>/current
  exec: bin/{app}             # CHANGE ME: relative programs run from the release
  user: {app}
  env: {{}}                     # written to a 0600 env file

health:                       # the gate of every batch: checked on each host
  path: /health
  port: 8080
  status: 200
  timeout_s: 60

rollout:
  strategy: rolling
  batches: [1, "50%", "100%"] # first one host, then half, then the rest
  max_fail_percentage: 0
  # load_balancer: {{hosts: lb, backend: {app}}}   # HAProxy drained through its admin socket
  # load_balancer: {{kind: command, drain: ./lb/out.sh, undrain: ./lb/in.sh}}   # any other, by your commands

database:
  hosts: db
  name: {app.replace('-', '_')}
  backup: {{dir: /var/backups/{app}, keep: 7}}
{migrations}
{groups}
# Where to deploy: add each target with its hosts (this writes its inventory, inventories/NAME/hosts.yml):
#   rollwright target add staging --host app:app1=10.0.1.11 --host lb:lb1=10.0.1.2 --host db:db1=10.0.1.3
#   rollwright target add production --after staging --production --inventory PATH   (adopts an inventory)
# Until then, commands use the built-in target `local` (this machine).
targets: {{}}

required_env: []              # env vars the control node must have
"""
