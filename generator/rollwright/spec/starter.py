"""`rollwright init`: a commented starter spec, fitted to the stack found in the project folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    return f"""# rollwright deploy spec for {app} (detected stack: {stack.name}).
# Check it with `rollwright validate`, see the steps with `rollwright plan --target staging`.
app: {app}

artifact:                     # the release tarball, pinned by its sha256
  path: dist/{app}.tar.gz     # or url: https://...
  version: "0.1.0"            # CHANGE ME
  sha256: "{'0' * 64}"  # CHANGE ME: sha256sum dist/{app}.tar.gz

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

database:
  hosts: db
  name: {app.replace('-', '_')}
  backup: {{dir: /var/backups/{app}, keep: 7}}
{migrations}
{groups}
targets:
  staging:
    inventory: inventories/staging
  production:
    inventory: inventories/production
    after: staging            # only artifacts proven on staging
    production: true

required_env: []              # env vars the control node must have
"""
