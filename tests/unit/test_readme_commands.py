"""Every `rollwright ...` command the README and docs show parses with the real command line: a renamed command
or option fails here, not in an operator's terminal. (The quickstart itself runs in test_quickstart.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rollwright.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "lab.md"]
SHOWN = re.compile(r"(?:^|[\s`(|&;])((?:sudo )?(?:\.venv/bin/)?rollwright [^`\n|&;#<>]*)")


def _shown_commands() -> list[tuple[str, str]]:
    """(where, command) for each command in a code block or in `inline code` that starts with rollwright."""
    found = []
    for doc in DOCS:
        in_block = False
        lines = doc.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()  # join continued lines
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            line = re.sub(r"<[\w-]+>", "X", line)  # `show <id>`: a placeholder, not a redirection
            spans = [line] if in_block else re.findall(r"`([^`]+)`", line.replace("\\|", "|"))
            for span in spans:
                for command in SHOWN.findall(span.replace("|", "¦") if not in_block else span):
                    found.append((f"{doc.name}:{number}", command.strip()))
    return found


def _forms(command: str) -> list[list[str]]:
    """The arguments after `rollwright`, a placeholder form filled in: `[--to VERSION]` → `--to 1`,
    `up/status` → `up`; `status¦release` → one form per alternative."""
    words = []
    for word in shlex.split(command.removeprefix("sudo ").replace("[", " ").replace("]", " "))[1:]:
        if re.fullmatch(r"[A-Z][A-Z_]*", word):
            word = "1"
        elif re.fullmatch(r"[a-z-]+(/[a-z-]+)+", word):
            word = word.split("/")[0]
        words.append(word.split("¦"))
    first = next((i for i, alternatives in enumerate(words) if len(alternatives) > 1), None)
    if first is None:
        return [[alternatives[0] for alternatives in words]]
    return [[w[0] if i != first else choice for i, w in enumerate(words)] for choice in words[first]]


SHOWN_COMMANDS = _shown_commands()
ACTIONS = {"lab", "lock", "target", "env", "migrations", "backups", "app"}  # nouns whose actions are required


def test_the_docs_show_commands() -> None:
    assert len(SHOWN_COMMANDS) > 30


@pytest.mark.parametrize(("where", "command"), SHOWN_COMMANDS, ids=[w for w, _ in SHOWN_COMMANDS])
def test_a_shown_command_parses(where: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    forms = _forms(command)
    if forms == [[forms[0][0]]] and forms[0][0] in ACTIONS:  # prose naming a noun (`rollwright target`)
        return
    errors = []
    for argv in forms:
        try:
            build_parser().parse_args(argv)
            return
        except SystemExit as done:
            if done.code == 0:  # --help, --version
                return
            errors.append(f"{argv}: exit {done.code}: {capsys.readouterr().err}")
    pytest.fail(f"{where}: `{command}` does not parse:\n" + "\n".join(errors))
