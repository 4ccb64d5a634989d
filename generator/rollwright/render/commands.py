"""Turn command groups into the exact shell commands a deploy runs, safely quoted.

Kept apart from orchestration (as Kamal keeps its command builders apart): this module only
builds strings; the playbook renderer decides where and when they run.
"""

from __future__ import annotations

import glob
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rollwright.spec.model import CommandGroup

# A placeholder, with the quotes a user may already have put around it (they are replaced too,
# so `'{file}'` does not end up double-quoted).
_PLACEHOLDER = re.compile(r"""(?P<q>['"]?)\{(?P<name>file|function_name|service_name)\}(?P=q)""")


@dataclass(frozen=True)
class GroupCommand:
    """One command of a group, ready to run: which step it belongs to and, for deploys, its file."""

    step: str
    command: str
    file: str | None = None


def matching_files(group: CommandGroup, base_dir: Path) -> list[str]:
    """Files (not folders) under `base_dir` matching any of the group's patterns, sorted, unique."""
    found: set[str] = set()
    for pattern in group.file_patterns:
        for name in glob.glob(pattern, root_dir=base_dir, recursive=True):
            if (base_dir / name).is_file():
                found.add(PurePosixPath(Path(name)).as_posix())
    return sorted(found)


def fill(command: str, values: dict[str, str]) -> str:
    """Replace placeholders with shell-quoted values: a value can never become shell syntax."""
    return _PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group("name")]), command)


def group_commands(group: CommandGroup, files: list[str], service_name: str) -> list[GroupCommand]:
    """A group's commands in run order: build, test, pre_deploy, deploy per file, post_deploy."""
    once = {"service_name": service_name, "function_name": group.name}
    commands = [GroupCommand(step, fill(cmd, once)) for step, cmd in
                (("build", group.build_command), ("test", group.test_command)) if cmd]
    commands += [GroupCommand("pre_deploy", fill(cmd, once)) for cmd in group.pre_deploy]
    if group.deploy_command:
        if group.file_patterns:
            for file in files:
                values = {**once, "file": file, "function_name": function_name(file)}
                commands.append(GroupCommand("deploy", fill(group.deploy_command, values), file))
        else:
            commands.append(GroupCommand("deploy", fill(group.deploy_command, once)))
    commands += [GroupCommand("post_deploy", fill(cmd, once)) for cmd in group.post_deploy]
    return commands


def function_name(file: str) -> str:
    """`src/handlers/get-user.ts` -> `get-user`: the file name without folders and extensions."""
    name = PurePosixPath(file).name
    return name.split(".", 1)[0] or name
