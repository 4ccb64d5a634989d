"""Batches arithmetic, `init` stack detection, `--help` and `schema` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollwright.cli import build_parser, main
from rollwright.render.batches import batch_sizes, split_batches
from rollwright.spec.loader import load_spec


@pytest.mark.parametrize(("total", "serial", "sizes"), [
    (3, [1, "50%", "100%"], [1, 1, 1]),
    (4, [1, "50%", "100%"], [1, 2, 1]),
    (12, [1, "50%", "100%"], [1, 6, 5]),
    (6, ["50%"], [3, 3]),
    (5, [2], [2, 2, 1]),
    (1, ["10%"], [1]),
    (10, ["29%"], [2, 2, 2, 2, 2]),
    (0, [1], []),
])
def test_batch_sizes_follow_ansible(total: int, serial: list[int | str], sizes: list[int]) -> None:
    assert batch_sizes(total, serial) == sizes


def test_split_batches_keeps_inventory_order() -> None:
    assert split_batches(["a", "b", "c", "d"], [1, "50%"]) == [["a"], ["b", "c"], ["d"]]


@pytest.mark.parametrize(("files", "stack", "tool"), [
    ({"pyproject.toml": "", "manage.py": ""}, "django", "django"),
    ({"requirements.txt": "", "alembic.ini": ""}, "python+alembic", "alembic"),
    ({"pom.xml": ""}, "java+flyway", "flyway"),
    ({"build.gradle": ""}, "java+flyway", "flyway"),
    ({"package.json": "{}"}, "node", None),
    ({"migrations/V1__init.sql": ""}, "sql", "sql"),
    ({}, "generic", None),
])
def test_init_detects_the_stack_and_writes_a_valid_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         files: dict[str, str], stack: str, tool: str | None) -> None:
    project = tmp_path / "my-app"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    project.mkdir(exist_ok=True)
    assert main(["init", str(project)]) == 0
    assert f"stack: {stack}" in capsys.readouterr().out
    spec = load_spec(project / "rollwright.yml").spec
    assert spec.app == "my-app"
    migrations = spec.database.migrations if spec.database else None
    assert (migrations.tool if migrations else None) == tool


def test_init_does_not_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rollwright.yml").write_text("mine")
    assert main(["init", str(tmp_path)]) == 2
    assert (tmp_path / "rollwright.yml").read_text() == "mine"


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"init", "validate", "schema", "plan", "generate", "lab"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert "usage: rollwright" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["plan", "--no-such-flag"])
    assert done.value.code == 2


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["rollout"]
