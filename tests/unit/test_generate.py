"""The generated project: deterministic, syntax-valid, ansible-lint production clean, safe commands."""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rollwright.cli import main
from rollwright.errors import BadInput
from rollwright.render.commands import group_commands
from rollwright.render.migrate import RELEASE_PYTHON
from rollwright.render.playbooks import STAGED
from rollwright.render.project import prepare, render, write_project
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import SpecError, load_spec
from rollwright.spec.model import CommandGroup

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples/hello/rollwright.yml"
DEPLOYCONFIG = REPO / "examples/deployconfig/deployconfig.json"
# What `playbooks/` holds: (folder, spec, target); `make playbooks` regenerates them.
COMMITTED = [("hello", HELLO, "staging"), ("deployconfig", DEPLOYCONFIG, None)]


def _generate(spec: Path, target: str | None, out: Path) -> Path:
    args = ["generate", "-f", str(spec), "-o", str(out)] + (["-t", target] if target else [])
    assert main(args) == 0
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("name", "spec", "target"), COMMITTED)
def test_generation_is_byte_identical(tmp_path: Path, name: str, spec: Path, target: str | None) -> None:
    first = _tree(_generate(spec, target, tmp_path / "a" / name))
    second = _tree(_generate(spec, target, tmp_path / "b" / name))
    again = _tree(_generate(spec, target, tmp_path / "a" / name))
    assert first == second == again


@pytest.mark.parametrize(("name", "spec", "target"), COMMITTED)
def test_committed_playbooks_are_not_stale(name: str, spec: Path, target: str | None) -> None:
    committed = REPO / "playbooks" / name
    fresh = render(prepare(load_spec(spec), target))  # rendered in memory
    assert _tree(committed) == fresh, f"playbooks/{name} is stale: run `make playbooks`"


@pytest.mark.parametrize(("name", "spec", "target"), COMMITTED)
def test_generated_project_passes_syntax_check_and_lint(tmp_path: Path, tool_env: dict[str, str], name: str,
                                                        spec: Path, target: str | None) -> None:
    out = _generate(spec, target, tmp_path / name)
    playbooks = ["site.yml", "rollback.yml", "status.yml", "undrain.yml", "migrations.yml", "backups.yml", "lock.yml",
                 "preflight.yml", "finish.yml", "app.yml", "audit.yml"]
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", *playbooks], cwd=out,
                            env=tool_env, capture_output=True, text=True, timeout=300)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    assert_lints_production(out, tool_env)


def assert_lints_production(out: Path, tool_env: dict[str, str], *files: str) -> None:
    """ansible-lint's verdict, not only its exit code: it exits 0 when a lower profile than the one
    required passes ("Profile 'production' was required, but 'shared' profile passed")."""
    lint = subprocess.run(["ansible-lint", "--offline", "--nocolor", "--profile", "production", *files], cwd=out,
                          env=tool_env, capture_output=True, text=True, timeout=600)
    said = lint.stdout + lint.stderr
    verdict = next((line for line in said.splitlines() if "Profile 'production' was required" in line), "")
    assert lint.returncode == 0 and verdict.startswith("Passed: 0 failure(s), 0 warning(s)"), said
    assert verdict.endswith("Profile 'production' was required, and it passed."), said


def test_file_name_stays_one_quoted_argument() -> None:
    """`x; rm -rf /` (a name no file system allows, so built directly) is one argument in the command."""
    for quoted in ("{file}", "'{file}'", '"{file}"'):
        group = CommandGroup(name="g", file_patterns=["*"], deploy_command=f"psql $DATABASE_URL -f {quoted}")
        (command,) = group_commands(group, ["x; rm -rf /"], "svc")
        assert shlex.split(command.command) == ["psql", "$DATABASE_URL", "-f", "x; rm -rf /"]
        assert command.command == "psql $DATABASE_URL -f 'x; rm -rf /'"


def test_hostile_file_names_run_as_plain_arguments(tmp_path: Path, tool_env: dict[str, str]) -> None:
    """Really run the generated group play: shell and Jinja syntax in file names stay inert data."""
    (tmp_path / "migrations").mkdir()
    names = ["x; touch pwned", "$(touch pwned)", "`touch pwned`", "{{ lookup('pipe', 'touch pwned') }}", "it's.sql"]
    for name in names:
        (tmp_path / "migrations" / name).write_text("")
    (tmp_path / "deploy.json").write_text(
        '{"groups": [{"name": "record", "order": 1, "file_patterns": ["migrations/*"],'
        ' "deploy_command": "printf \'%s\\\\n\' {file} >> seen.txt"}]}')
    out = _generate(tmp_path / "deploy.json", None, tmp_path / "out")
    run = subprocess.run(["ansible-playbook", "site.yml"], cwd=out, env=tool_env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = (out / "files" / "seen.txt").read_text().splitlines()  # the commands run in the project's files/
    assert seen == sorted(f"migrations/{name}" for name in names)
    assert not list(tmp_path.rglob("pwned"))


def test_plan_runs_groups_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(DEPLOYCONFIG), "--json"]) == 0
    import json

    steps = json.loads(capsys.readouterr().out)["steps"]
    groups = [s for s in steps if s["phase"] == "group"]
    assert [g["title"].split()[1] for g in groups] == ["migrations", "typescript_build"]
    assert groups[0]["commands"] == [
        "pre_deploy: psql --version",
        "deploy: psql $DATABASE_URL -f migrations/001_greeting.sql",
        "deploy: psql $DATABASE_URL -f migrations/002_seed.sql",
        "post_deploy: echo 'Migrations applied'",
    ]
    assert groups[1]["commands"] == ["build: npm run build", "test: npm test"]


def test_plan_shows_batches_from_the_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(HELLO), "-t", "production"]) == 0
    out = capsys.readouterr().out
    assert "Batch 1:" in out and "@ app1\n" in out
    assert "Batch 2:" in out and "@ app2, app3\n" in out
    assert "Batch 3:" in out and "@ app4\n" in out


def test_unknown_target_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(HELLO), "-t", "moon"]) == 2
    assert "no target 'moon'" in capsys.readouterr().err


def test_missing_inventory_names_the_spec_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text("app: a\ntargets:\n  staging:\n    inventory: nowhere\n")
    assert main(["generate", "-f", str(spec), "-t", "staging", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4:16: targets.staging.inventory" in err
    assert not (tmp_path / "out").exists()


def test_generate_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    files = render(prepare(load_spec(HELLO), "staging"))
    with pytest.raises(BadInput, match="not generated by rollwright"):
        write_project(files, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_regenerating_removes_stale_files(tmp_path: Path) -> None:
    out = _generate(HELLO, "staging", tmp_path / "p")
    (out / "roles" / "stale.yml").write_text("old")
    _generate(HELLO, "staging", out)
    assert not (out / "roles" / "stale.yml").exists()


def _hello_copy(tmp_path: Path, old: str, new: str) -> Path:
    """The hello spec with one change, written beside tmp_path, its inventories still found."""
    spec = tmp_path / "rollwright.yml"
    text = HELLO.read_text().replace("../../inventories", str(REPO / "inventories"))
    text = text.replace("path: dist/", f"path: {HELLO.parent / 'dist'}/")
    shutil.copytree(HELLO.parent / "migrations", tmp_path / "migrations", dirs_exist_ok=True)  # inside its folder
    assert old in text
    spec.write_text(text.replace(old, new, 1))
    return spec


CANARY = """rollout:
  strategy: canary
  canary: {steps: [1, "50%", "100%"], window_s: 20, max_error_rate: 0.05, max_latency_ms: 500}
  max_fail_percentage: 0
"""


def test_a_canary_judges_every_step_and_lints(tmp_path: Path, tool_env: dict[str, str]) -> None:
    spec = _hello_copy(tmp_path, 'rollout:\n  strategy: rolling\n  batches: [1, "50%", "100%"]\n'
                       '  max_fail_percentage: 0\n', CANARY)
    out = _generate(spec, "staging", tmp_path / "out")
    site = yaml.load((out / "site.yml").read_text(), Loader=_UnsafeLoader)
    rollout = next(play for play in site if play["name"].startswith("Roll out in batches"))
    assert rollout["serial"] == [1, "50%", "100%"]
    guard, verdict = rollout["tasks"][-2:]
    assert guard["ansible.builtin.include_role"]["name"] == "canary_guard"
    assert guard["when"] == "inventory_hostname == ansible_play_batch[0]"
    assert "passed" in verdict["when"] and verdict["ansible.builtin.fail"]
    values = yaml.safe_load((out / "group_vars/all/rollwright.yml").read_text())
    assert values["rollwright_canary"] == {"window_s": 20, "min_requests": 20, "max_error_rate": 0.05,
                                           "max_error_ratio": 2.0, "max_latency_ratio": 2.0, "max_latency_ms": 500,
                                           "max_p95_ms": 0}
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", "site.yml", "rollback.yml"], cwd=out,
                            env=tool_env, capture_output=True, text=True, timeout=300)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr  # its lint: test_every_strategy_lints_production


ROLLING = 'rollout:\n  strategy: rolling\n  batches: [1, "50%", "100%"]\n  max_fail_percentage: 0\n'
BLUE_GREEN = "rollout:\n  strategy: blue_green\n  blue_green: {blue: blue, green: green}\n"


def test_blue_green_updates_the_idle_colour_then_switches_and_lints(tmp_path: Path, tool_env: dict[str, str],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = _hello_copy(tmp_path, ROLLING, BLUE_GREEN)
    assert main(["plan", "-f", str(spec), "-t", "staging"]) == 1  # the plan shows a problem
    plan = capsys.readouterr().out
    assert "[switch] Move the traffic to it in one step on lb (backend app)" in plan
    assert "[problem] inventory has no hosts in group 'blue' (a blue/green colour)" in plan  # staging has none
    out = _generate(spec, "staging", tmp_path / "out")
    site = yaml.load((out / "site.yml").read_text(), Loader=_UnsafeLoader)
    names = [play["name"] for play in site]
    colours = names.index("Blue/green: find the live and the idle colour")
    assert colours < names.index("Stage the release on the idle colour's hosts (no traffic impact)")
    rollout = next(play for play in site if play["name"].startswith("Roll out in batches"))
    assert rollout["hosts"] == "rollwright_idle" and rollout["serial"] == ["100%"]
    update = rollout["tasks"][-1]["block"]
    assert update[0]["name"] == "Drain this host in the load balancer"
    assert "Put this host back in the load balancer" not in [t["name"] for t in update]  # only the switch does
    switch = site[names.index("Blue/green: switch the traffic to the idle colour in one step")]
    assert switch["hosts"] == "lb" and "rollwright_no_switch" in switch["tasks"][0]["when"]
    back = yaml.load((out / "rollback.yml").read_text(), Loader=_UnsafeLoader)
    assert [play["name"] for play in back][-1] == switch["name"]  # rollback switches back
    for playbook in ("status.yml", "current.yml"):  # the account of the fleet: both colours, not the idle one only
        plays = yaml.load((out / playbook).read_text(), Loader=_UnsafeLoader)
        assert next(play for play in plays if play["name"] == "Report what every app host runs")["hosts"] == "app"
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", "site.yml", "rollback.yml", "status.yml"], cwd=out,
                            env=tool_env, capture_output=True, text=True, timeout=300)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr  # its lint: test_every_strategy_lints_production


PROMETHEUS = CANARY + """  metrics:
    source: prometheus
    prometheus:
      url: http://127.0.0.1:9090
      error_ratio: 'sum(rate(errors_total{version="$version"}[$window])) / sum(rate(all{version="$version"}[$window]))'
      latency_p95: 'histogram_quantile(0.95, sum by (le) (rate(seconds_bucket{version="$version"}[$window])))'
  hold: {duration_s: 30, max_p95_ms: 400, max_cpu_percent: 95}
"""


@pytest.mark.parametrize("rollout", [CANARY, PROMETHEUS, BLUE_GREEN + "  hold: {duration_s: 20}\n",
                                     ROLLING.replace("rolling", "direct")],
                         ids=["canary", "canary_prometheus_hold", "blue_green_hold", "direct"])
def test_every_strategy_lints_production(tmp_path: Path, tool_env: dict[str, str], rollout: str) -> None:
    """The hello project with each other strategy (rolling: the committed one), every playbook of it; a hold
    after the switch, and one judged by Prometheus with host triggers."""
    out = _generate(_hello_copy(tmp_path, ROLLING, rollout), "staging", tmp_path / "out")
    assert_lints_production(out, tool_env)


@pytest.mark.parametrize(("rollout", "flags", "reason"), [
    (ROLLING.replace("rolling", "direct"), [], "on production target 'production' that needs --direct"),
    (BLUE_GREEN, ["--direct"], "--direct with strategy blue_green"),
    ("rollout:\n  strategy: canary\n", [], "strategy 'canary' needs 'load_balancer'"),
])
def test_the_strategy_policy_refuses_in_plan_and_deploy(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       rollout: str, flags: list[str], reason: str) -> None:
    text = HELLO.read_text()
    if "canary" in rollout:  # no load balancer at all
        text = text[:text.index("rollout:")] + rollout + text[text.index("database:"):]
        spec = tmp_path / "rollwright.yml"
        spec.write_text(text.replace("../../inventories", str(REPO / "inventories")))
        shutil.copytree(HELLO.parent / "migrations", tmp_path / "migrations")
    else:
        spec = _hello_copy(tmp_path, ROLLING, rollout)
    for command in ("plan", "deploy"):
        assert main([command, "-f", str(spec), "-t", "production", *flags]) == 2
        assert reason in capsys.readouterr().err
    assert not (tmp_path / ".rollwright").exists()  # nothing generated, no host contacted


def test_a_direct_hotfix_plans_every_host_at_once_and_the_pending_migration_rule(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = _hello_copy(tmp_path, ROLLING, ROLLING.replace("rolling", "direct"))
    assert main(["plan", "-f", str(spec), "-t", "production", "--direct"]) == 0
    out = capsys.readouterr().out
    assert "[policy] Strategy direct: refused if any migration is pending" in out
    assert "[rollout] Every host at once (direct)" in out and "Batch 2" not in out


def test_service_working_dir_reaches_the_unit(tmp_path: Path) -> None:
    spec = _hello_copy(tmp_path, "  user: hello\n", "  user: hello\n  working_dir: web\n")
    out = _generate(spec, "staging", tmp_path / "out")
    assert "working_dir: web" in (out / "group_vars/all/rollwright.yml").read_text()
    assert "service_working_dir: '{{ rollwright_service.working_dir }}'" in (out / "site.yml").read_text()


def test_migration_files_are_copied_and_bad_names_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _hello_copy(tmp_path, "path: migrations}", "path: sql}")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "V1__init.sql").write_bytes(b"create table a (id int);\r\n")
    out = _generate(spec, "staging", tmp_path / "out")
    assert (out / "migrations" / "V1__init.sql").read_bytes() == b"create table a (id int);\r\n"  # byte for byte
    (tmp_path / "sql" / "001_seed.sql").write_text("insert into a values (1);\n")
    assert main(["generate", "-f", str(spec), "-t", "staging", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "database.migrations.path: 001_seed.sql in" in err and "not migration names" in err


def test_plan_flags_destructive_migrations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _hello_copy(tmp_path, "path: migrations}", "path: sql}")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "V1__init.sql").write_text("create table a (id int, b text);\n")
    (tmp_path / "sql" / "V2__drop.sql").write_text("-- cleanup\nalter table a drop column b;\n")
    assert main(["plan", "-f", str(spec), "-t", "staging"]) == 0
    out = capsys.readouterr().out
    assert "DESTRUCTIVE (DROP COLUMN): V2__drop.sql" in out and "V1__init.sql" not in out


class _UnsafeLoader(yaml.SafeLoader):
    """Reads `!unsafe` scalars as plain strings."""


_UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def test_a_tool_migrates_from_the_new_release_and_lints(tmp_path: Path, tool_env: dict[str, str]) -> None:
    """alembic runs once on the first app host, in the release being deployed, as the service user with
    its env; migrations.yml runs the tool's status command from the deployed release."""
    spec = _hello_copy(tmp_path, "{tool: sql, path: migrations}", "{tool: alembic}")
    out = _generate(spec, "staging", tmp_path / "out")
    site = yaml.load((out / "site.yml").read_text(), Loader=_UnsafeLoader)
    migrate = next(play for play in site if play["name"].startswith("Migrate the database"))
    assert migrate["hosts"] == "app[0]"
    role_vars = migrate["tasks"][0]["vars"]
    assert role_vars["migrate_chdir"] == "{{ rollwright_release.root }}/releases/{{ rollwright_version }}"
    assert role_vars["migrate_user"] == "{{ rollwright_service.user }}"
    assert role_vars["migrate_commands"]["apply"] == f"{RELEASE_PYTHON} -m alembic upgrade head"  # no bare python
    assert role_vars["migrate_lock_timeout_s"] == "{{ rollwright_migrations.lock_timeout_s }}"
    plays = yaml.load((out / "migrations.yml").read_text(), Loader=_UnsafeLoader)
    stage, run = plays
    assert stage["hosts"] == run["hosts"] == "app[0]"  # the spec's release staged where the tool runs, if asked
    assert stage["tasks"][0]["when"] == STAGED
    assert stage["tasks"][0]["block"][-1]["ansible.builtin.import_role"]["name"] == "release"
    tool_vars = run["tasks"][0]["vars"]
    assert tool_vars["migrate_commands"]["status"] == f"{RELEASE_PYTHON} -m alembic current --verbose"
    assert tool_vars["migrate_chdir"] == ("{{ rollwright_release.root }}/{{ 'releases/' ~ rollwright_version if "
                                          f"{STAGED} else 'current' }}}}")  # history: the deployed release
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", "site.yml", "migrations.yml"], cwd=out,
                            env=tool_env, capture_output=True, text=True, timeout=300)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    assert_lints_production(out, tool_env, "site.yml", "migrations.yml")


SELF_CONTAINED = """app: moved
artifact: {{path: dist/moved-1.0.tar.gz, version: "1.0", sha256: "{sha}"}}
release: {{root: /srv/moved}}
service: {{exec: bin/moved, user: moved}}
health: {{path: /health, port: 8080}}
groups:
  - name: publish
    file_patterns: ["src/*.txt"]
    pre_deploy: ["./bin/stamp.sh {out}/stamped.txt"]
    deploy_command: "cat {{file}} >> {out}/published.txt"
"""


def test_a_moved_project_carries_its_artifact_and_the_files_its_commands_use(
        tmp_path: Path, tool_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """Generated, moved to another depth with the spec's folder gone: preflight checks the artifact's copy,
    and the command groups run the script and read the matched files from the project (built-in local target:
    the lock and audit log stay inside the project too)."""
    source, out = tmp_path / "source", tmp_path / "out"
    (source / "dist").mkdir(parents=True)
    (source / "dist" / "moved-1.0.tar.gz").write_bytes(b"not really a tarball")
    sha = hashlib.sha256(b"not really a tarball").hexdigest()
    (source / "src").mkdir()
    (source / "src" / "a.txt").write_text("alpha\n")
    (source / "bin").mkdir()
    (source / "bin" / "stamp.sh").write_text("#!/bin/sh\necho stamped > \"$1\"\n")
    (source / "rollwright.yml").write_text(SELF_CONTAINED.format(sha=sha, out=out))
    project = _generate(source / "rollwright.yml", None, tmp_path / "generated")
    assert (project / "artifact" / "moved-1.0.tar.gz").read_bytes() == b"not really a tarball"
    moved = tmp_path / "far" / "away" / "project"
    moved.parent.mkdir(parents=True)
    project.rename(moved)
    shutil.rmtree(source)
    out.mkdir()
    for playbook in (["preflight.yml"], ["site.yml", "--tags", "groups"]):
        proc = subprocess.run(["ansible-playbook", *playbook], cwd=moved, env=tool_env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "stamped.txt").read_text() == "stamped\n"
    assert (out / "published.txt").read_text() == "alpha\n"
    values = (moved / "group_vars" / "all" / "rollwright.yml").read_text()
    assert "../" not in values and "'{{ playbook_dir }}/.rollwright/lock'" in values, values
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "rollwright.yml").write_text(SELF_CONTAINED.format(sha=sha, out=out))
    assert main(["generate", "-f", str(tmp_path / "later" / "rollwright.yml"), "-o", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err  # not built yet: named, with its line, and nothing written
    assert re.search(r"later/rollwright\.yml:2:\d+: artifact\.path: artifact \S+/later/dist/moved-1\.0\.tar\.gz "
                     "does not exist", err), err
    assert not (tmp_path / "none").exists()


def test_only_a_run_that_ships_the_release_needs_the_artifact(tmp_path: Path) -> None:
    """A rollback, status or lock release still works when the artifact is gone (dist/ cleaned); a deploy,
    drift or check is refused with the field named, before any host is asked."""
    spec = _hello_copy(tmp_path, f"path: {HELLO.parent / 'dist'}/", "path: dist/")  # nothing built beside it
    workspace = prepare_workspace(load_spec(spec), "staging")
    assert (workspace.project / "rollback.yml").is_file() and not (workspace.project / "artifact").exists()
    with pytest.raises(SpecError, match=r"artifact \S+/dist/hello-1\.0\.0\.tar\.gz does not exist"):
        prepare_workspace(load_spec(spec), "staging", ships_artifact=True)
