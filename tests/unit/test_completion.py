"""Shell completion through argcomplete's own protocol, as bash and zsh drive it: the installed `rollwright` run
with _ARGCOMPLETE, COMP_LINE and COMP_POINT set writes its completions to _ARGCOMPLETE_STDOUT_FILENAME and exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
SPEC = """\
app: shop
targets:
  staging: {inventory: inventories/staging}
  production: {inventory: inventories/production, production: true}
"""


def complete(line: str, folder: Path) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """What `line<TAB>` offers (the cursor at the end), and the process that said it."""
    answer = folder / ".completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}
    proc = subprocess.run([str(VENV_BIN / "rollwright")], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    words = answer.read_text().split("\n") if answer.exists() else []
    return sorted(word.strip() for word in words if word.strip()), proc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "rollwright.yml").write_text(SPEC)
    return tmp_path


def test_commands_and_actions_complete(folder: Path) -> None:
    assert complete("rollwright dep", folder)[0] == ["deploy"]
    assert complete("rollwright lock ", folder)[0] == ["acquire", "release", "status"]
    assert "--no-health-check" in complete("rollwright deploy --no", folder)[0]


def test_targets_complete_from_the_spec_here_or_the_one_typed(folder: Path, tmp_path_factory: pytest.TempPathFactory
                                                              ) -> None:
    assert complete("rollwright deploy -t ", folder)[0] == ["production", "staging"]
    assert complete("rollwright lock status --target pro", folder)[0] == ["production"]
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert complete(f"rollwright plan -f {folder / 'rollwright.yml'} -t st", elsewhere)[0] == ["staging"]
    (elsewhere / "rollwright.yml").write_text("app: solo\n")
    assert complete("rollwright deploy -t ", elsewhere)[0] == ["local"]  # no targets: the built-in one


@pytest.mark.parametrize("spec", [None, "app: [unclosed\n", "app: x\ntargets: 7\n", "\x00\xff"])
def test_a_missing_or_broken_spec_offers_no_target_and_says_nothing(tmp_path: Path, spec: str | None) -> None:
    if spec is not None:
        (tmp_path / "rollwright.yml").write_text(spec, encoding="latin-1")
    words, proc = complete("rollwright deploy -t ", tmp_path)
    assert words == [] and proc.stdout == "" and proc.stderr == ""


def test_global_activation_finds_the_marker() -> None:
    """activate-global-python-argcomplete completes only scripts whose module carries PYTHON_ARGCOMPLETE_OK."""
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "argcomplete._check_console_script",
                           str(VENV_BIN / "rollwright")], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
