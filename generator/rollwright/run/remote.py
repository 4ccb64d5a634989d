"""Commands on the app hosts over plain SSH, outside Ansible: `logs` streams a journal, which no Ansible task can
do, and `exec` passes a command's output through as it comes.

Each connection is built from the target's generated project as Ansible would build it: the host's
ansible_host, ansible_port, ansible_user, private key and ansible_ssh_common_args/extra_args from the inventory
(group_vars and host_vars too), the ssh_args of the project's ansible.cfg, and its become setting (then the
remote command runs under `sudo -n`). Host key checking stays as Ansible has it (on); BatchMode means no prompt
ever waits. The ControlMaster/ControlPersist options are left out: a streaming connection is one ssh process
that ends with the command, leaving no master behind. The remote command is one string for the remote shell,
every piece of it `shlex.quote`d: an argument is data, whatever it holds.
"""

from __future__ import annotations

import configparser
import os
import re
import selectors
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rollwright.errors import BadInput
from rollwright.run.engine import Interrupts
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import LoadedSpec
from rollwright.targetenv import check_vault_password, vault_password

CONNECT_TIMEOUT_S = 10  # Ansible's default `timeout`
STOP_WAIT_S = 5.0  # how long a stopped ssh may take to end before it is killed
SSH_FAILED = 255  # ssh's own exit code when it could not connect (or the connection broke)
TEMPLATE_MARKS = ("{{", "{%", "{#")
MULTIPLEXING = ("controlmaster", "controlpersist", "controlpath")
ALIASES = {  # what Ansible reads for each setting, first found wins
    "address": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "ssh_args": ("ansible_ssh_args",),
    "common_args": ("ansible_ssh_common_args",),
    "extra_args": ("ansible_ssh_extra_args",),
    "become": ("ansible_become",),
    "become_method": ("ansible_become_method",),
    "connection": ("ansible_connection",),
}
Line = Callable[[str, str, bool], None]  # (host, line, from stderr)


@dataclass(frozen=True)
class Connection:
    """How to reach one host with ssh, as Ansible would."""

    host: str  # the inventory name: what every output line is prefixed with
    address: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    options: tuple[str, ...] = ()  # ssh options: ansible.cfg ssh_args, then the inventory's common and extra args
    become: bool = False

    def ssh(self, remote: list[str], *, tty: bool = False) -> list[str]:
        """The ssh argv that runs `remote` (an argv) on the host, as root through `sudo -n` when the target
        becomes. `tty` asks for a terminal (an interactive session)."""
        argv = ["ssh", "-tt" if tty else "-T", *self.options, "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "PasswordAuthentication=no",
                "-o", "KbdInteractiveAuthentication=no", "-o", "LogLevel=ERROR"]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        if self.key_file:
            argv += ["-i", self.key_file]
        return [*argv, "--", self.address, remote_command(remote, become=self.become)]


def remote_command(argv: list[str], *, become: bool) -> str:
    """One string for the remote shell that runs exactly `argv`: every piece quoted, nothing evaluated."""
    return shlex.join(["sudo", "-n", "--", *argv] if become else argv)


def ansible_cfg_ssh(project: Path) -> tuple[list[str], bool]:
    """(ssh_args less the multiplexing options, become) from a generated project's ansible.cfg."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(project / "ansible.cfg", encoding="utf-8")
    ssh_args = without_multiplexing(shlex.split(config.get("ssh_connection", "ssh_args", fallback="")))
    return ssh_args, config.getboolean("privilege_escalation", "become", fallback=False)


def without_multiplexing(args: list[str]) -> list[str]:
    """ssh options less ControlMaster/ControlPersist/ControlPath (`-o X=Y` or `-oX=Y`)."""
    kept: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        value = args[i + 1] if arg == "-o" and i + 1 < len(args) else arg.removeprefix("-o")
        if arg.startswith("-o") and re.split(r"[=\s]", value.strip(), maxsplit=1)[0].lower() in MULTIPLEXING:
            skip = arg == "-o"
            continue
        kept.append(arg)
    return kept


def connections(project: Path, hosts: list[str]) -> list[Connection]:
    """A connection to each of these hosts of the project's inventory. A connection variable that is a template
    is refused (it would have to be evaluated)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret
    from ansible.vars.manager import VariableManager

    inventory = project / "inventory"
    check_vault_password(inventory)
    loader = DataLoader()
    password = vault_password()
    if password is not None:
        loader.set_vault_secrets([("default", VaultSecret(password))])
    manager = InventoryManager(loader=loader, sources=[str(inventory)])
    variables = VariableManager(loader=loader, inventory=manager)
    ssh_args, become = ansible_cfg_ssh(project)
    return [connection_of(host.name, variables.get_vars(host=host, include_hostvars=False), ssh_args, become)
            for host in manager.get_hosts(hosts)]


def connection_of(name: str, hostvars: dict[str, Any], ssh_args: list[str], become: bool) -> Connection:
    """One host's connection from its variables (the inventory's, with group_vars and host_vars)."""
    found: dict[str, Any] = {}
    for setting, keys in ALIASES.items():
        value = next((hostvars[k] for k in keys if hostvars.get(k) not in (None, "")), None)
        if isinstance(value, str) and any(mark in value for mark in TEMPLATE_MARKS):
            raise BadInput(f"host {name}: {keys[0]} is a template ({value!r}); logs and exec connect without "
                           "Ansible and never evaluate one: set it to a plain value")
        found[setting] = value
    if str(found["connection"] or "ssh") not in ("ssh", "smart"):
        raise BadInput(f"host {name}: ansible_connection is {found['connection']!r}; logs and exec need ssh")
    becomes = _boolean(found["become"], become)
    if becomes and str(found["become_method"] or "sudo") != "sudo":
        raise BadInput(f"host {name}: ansible_become_method is {found['become_method']!r}; logs and exec become "
                       "root with `sudo -n` only")
    port = found["port"]
    if port is not None and not (str(port).isdigit() and 1 <= int(port) <= 65535):
        raise BadInput(f"host {name}: ansible_port {port!r} is not a port number")
    options = [*(without_multiplexing(shlex.split(str(found["ssh_args"]))) if found["ssh_args"] else ssh_args),
               *shlex.split(str(found["common_args"] or "")), *shlex.split(str(found["extra_args"] or ""))]
    return Connection(host=name, address=str(found["address"] or name), port=int(port) if port is not None else None,
                      user=str(found["user"]) if found["user"] else None,
                      key_file=os.path.expanduser(str(found["key"])) if found["key"] else None,
                      options=tuple(options), become=becomes)


def _boolean(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def pick_hosts(known: list[str], wanted: Iterable[str], kind: str = "app hosts") -> list[str]:
    """The hosts named by `--host` (repeatable, or comma lists), in inventory order; all of them when none is
    named. An unknown name is refused, naming the known ones (`kind`: what they are)."""
    names = [n.strip() for item in wanted for n in item.split(",") if n.strip()]
    unknown = [n for n in dict.fromkeys(names) if n not in known]
    if unknown:
        raise BadInput(f"unknown host {', '.join(repr(n) for n in unknown)}: the {kind} are {', '.join(known)}")
    return [h for h in known if h in names] if names else list(known)


@dataclass
class Finished:
    """How one host's command ended."""

    host: str
    exit_code: int
    stderr_tail: list[str] = field(default_factory=list)  # its last lines on stderr, for the report
    stopped: bool = False  # ended by us (Ctrl-C or SIGTERM), not by itself

    @property
    def unreachable(self) -> bool:
        return self.exit_code == SSH_FAILED and not self.stopped


class _Reader:
    """Whole lines from one pipe, decoded as they complete (a partial line waits for its end)."""

    def __init__(self, host: str, pipe: IO[bytes], is_stderr: bool) -> None:
        self.host, self.pipe, self.is_stderr = host, pipe, is_stderr
        self.pending = b""

    def feed(self, data: bytes) -> list[str]:
        *lines, self.pending = (self.pending + data).split(b"\n")
        return [line.decode("utf-8", "replace").removesuffix("\r") for line in lines]

    def rest(self) -> list[str]:
        return [self.pending.decode("utf-8", "replace")] if self.pending else []


def run_on_hosts(commands: dict[str, list[str]], on_line: Line, *, tail: int = 5) -> tuple[list[Finished], bool]:
    """Run one local argv per host (an ssh command) at once and hand over every line as it arrives; returns how
    each ended (in `commands` order) and whether Ctrl-C or SIGTERM stopped them. A stop ends every process this
    started (SIGTERM, then SIGKILL after STOP_WAIT_S). The processes run in a session of
    their own: the terminal's Ctrl-C reaches this process only, which ends them itself."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    tails: dict[str, list[str]] = {host: [] for host in commands}
    ended = False  # every process closed its output by itself
    ended_by_us: dict[str, bool] = {}
    with Interrupts() as interrupts, selectors.DefaultSelector() as selector:
        try:
            for host, argv in commands.items():
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, start_new_session=True)
                processes[host] = process
                for pipe, is_stderr in ((process.stdout, False), (process.stderr, True)):
                    assert pipe is not None
                    selector.register(pipe, selectors.EVENT_READ, _Reader(host, pipe, is_stderr))
            while selector.get_map() and not interrupts.count:
                for key, _ in selector.select(timeout=0.2):
                    reader: _Reader = key.data
                    data = os.read(reader.pipe.fileno(), 65536)
                    if not data:
                        selector.unregister(reader.pipe)
                    for line in reader.feed(data) if data else reader.rest():
                        if reader.is_stderr:
                            tails[reader.host] = [*tails[reader.host], line][-tail:]
                        on_line(reader.host, line, reader.is_stderr)
            ended = not interrupts.count
        finally:
            for host, process in processes.items():
                ended_by_us[host] = _end(process, stop=not ended)
    finished = [Finished(host, p.returncode, tails[host], ended_by_us[host]) for host, p in processes.items()]
    return finished, not ended


def _end(process: subprocess.Popen[bytes], *, stop: bool) -> bool:
    """Wait for a process (ending it first when the run was stopped) and close its pipes; True when this
    ended it."""
    ending = stop and process.poll() is None
    if ending:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    return ending


def prefixer(hosts: Iterable[str], write_out: Callable[[str], None],
             write_err: Callable[[str], None]) -> Line:
    """Each line prefixed with its host's name, the names padded to one width so the lines align."""
    width = max((len(h) for h in hosts), default=0)

    def line(host: str, text: str, is_stderr: bool) -> None:
        (write_err if is_stderr else write_out)(f"{host:<{width}} | {text}")

    return line


def describe_failure(result: Finished) -> str:
    """Why a host's command failed, in a few words, with ssh's or the command's last stderr line."""
    last = result.stderr_tail[-1] if result.stderr_tail else ""
    if result.unreachable:
        return f"cannot be reached (ssh exit {SSH_FAILED}{': ' + last if last else ''})"
    return f"exit {result.exit_code}{': ' + last if last else ''}"


def app_connections(loaded: LoadedSpec, target_name: str | None, wanted: Iterable[str], what: str, *,
                    first_only: bool = False) -> list[Connection]:
    """Connections to the target's app hosts `--host` names (all when none; the first with `first_only`). `what`
    names the command in refusals. The names are checked against the inventory before the project is generated
    or any connection is made."""
    from rollwright.inventory import inventory_groups
    from rollwright.render.plan import hosts_of
    from rollwright.render.project import inventory_path, resolve_target

    spec = loaded.spec
    if not spec.service:
        raise BadInput(f"{loaded.path}: the spec runs no service, so there is nothing for {what}")
    name, target = resolve_target(loaded, target_name)
    path = inventory_path(loaded, name, target)
    if path is None:
        raise BadInput(f"{what} needs a target with an inventory of SSH hosts; the built-in '{name}' target is "
                       "this machine")
    known = hosts_of(spec.rollout.hosts, inventory_groups(path))
    if not known:
        raise BadInput(f"target '{name}': no app hosts (inventory group or pattern {spec.rollout.hosts!r})")
    chosen = pick_hosts(known, wanted)
    found = connections(prepare_workspace(loaded, name).project, chosen[:1] if first_only else chosen)
    return sorted(found, key=lambda c: chosen.index(c.host))
