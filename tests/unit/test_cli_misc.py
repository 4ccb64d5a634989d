"""Batches arithmetic, `init` stack detection, `--help` and `schema` on the command line."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

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


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and action, as its argv path and its parser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append(((*path, name), child))
                found += _commands(child, (*path, name))
    return found


def test_every_command_has_a_summary_and_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(build_parser())
    assert {"init", "validate", "schema", "plan", "generate", "lab"} <= {path[0] for path, _ in commands}
    assert len(commands) > 40
    for path, _ in commands:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        usage, summary = out.split("\n\n")[:2]
        assert usage.startswith(f"usage: rollwright {' '.join(path)}"), path
        assert summary.strip() and not summary.startswith(("positional", "options")), (path, out)
        examples = out.split("examples:\n", 1)[1].splitlines()
        assert examples and all(line.startswith("  rollwright ") or line.startswith("  sudo rollwright ")
                                for line in examples), (path, examples)


def test_no_arguments_prints_the_command_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: rollwright" in out and "deploy" in out and "rollback" in out and "--version" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"rollwright \d+\.\d+\.\d+\S* \(ansible-core 2\.19\.\d+, ansible-runner \S+\)\n",
                        capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["deploy", "--dry"], ["plan", "--js"], ["history", "--lim", "3"],
                                  ["target", "add", "x", "--inv", "y"]])
def test_an_abbreviated_option_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [(["deplyo"], "unknown command 'deplyo'; did you mean 'deploy'?"),
                                            (["lock", "stauts"], "unknown action 'stauts'; did you mean 'status'?"),
                                            (["target", "ad", "x"], "unknown action 'ad'; did you mean 'add'?"),
                                            (["histroy"], "unknown command 'histroy'; did you mean 'history'?")])
def test_a_mistyped_command_gets_a_suggestion(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert said in capsys.readouterr().err


def test_a_command_far_from_any_gets_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["xyzzy"])
    err = capsys.readouterr().err
    assert "did you mean" not in err and "choose from init, validate" in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["plan", "--no-such-flag"])
    assert done.value.code == 2


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["rollout"]
    assert main(["schema", "--deployment-config"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["health_check"]
