"""A lab: app hosts, one HAProxy load balancer, one PostgreSQL host, on one bridge with the control node.

`Lab` is the public API (the CLI, the pytest fixture and later tests use it). Every operation is
idempotent and repairs what a killed run left: `up` boots only what is not running, `down` removes
everything the state file or the lab's naming scheme points to.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import TypeVar

from rollwright.errors import BadInput, RollwrightError
from rollwright.lab import image, machine, network, services
from rollwright.lab.inventory import remove_inventory, write_inventory
from rollwright.lab.overlay import HOST_KEY, Overlay, prepare
from rollwright.lab.ssh import ensure_keypair, public_key_path, ssh_command, wait_booted, write_known_hosts
from rollwright.lab.state import (
    STATE_ROOT,
    HostState,
    LabFiles,
    LabState,
    all_states,
    load,
    locked,
    save,
    validate_name,
)
from rollwright.lab.system import Log, ensure_packages, remove_tree, require_root, run

DEFAULT_NAME = "lab"
DEFAULT_APP_HOSTS = 3
MAX_APP_HOSTS = 50  # keeps host names (and so interface names) short
BOOT_TIMEOUT_S = 180.0
_BACKEND_NAME = re.compile(r"[A-Za-z0-9_.:-]+")

T = TypeVar("T")
R = TypeVar("R")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parallel(func: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Run func on every item at once (booting or stopping hosts is mostly waiting)."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(func, items))


@dataclass(frozen=True)
class HostInfo:
    name: str
    group: str
    address: str


@dataclass(frozen=True)
class HostStatus:
    name: str
    group: str
    address: str
    running: bool
    ssh: bool
    pid: int | None
    memory_kib: int  # PSS of its processes plus its tmpfs use (see machine.Memory)


@dataclass(frozen=True)
class UpResult:
    already_up: bool
    image_seconds: float  # near 0 when the image was cached
    boot_seconds: float  # from the first namespace made to every host booted
    hosts: list[HostInfo]
    inventory: Path


class Lab:
    """A named fleet of lab hosts. Construct it freely: nothing happens until up/down/stop/start."""

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        app_hosts: int = DEFAULT_APP_HOSTS,
        *,
        subnet: str | None = None,
        inventory: Path | str | None = None,
        app_port: int = 8080,
        backend: str = "app",
        log: Log = _stderr,
        state_root: Path = STATE_ROOT,
        image_cache: Path = image.CACHE_DIR,
    ) -> None:
        self.name = validate_name(name)
        if not 1 <= app_hosts <= MAX_APP_HOSTS:
            raise BadInput(f"--app-hosts must be between 1 and {MAX_APP_HOSTS}, not {app_hosts}")
        if not 1 <= app_port <= 65535:
            raise BadInput(f"--app-port must be a TCP port, not {app_port}")
        if not _BACKEND_NAME.fullmatch(backend):
            raise BadInput(f"bad HAProxy backend name {backend!r}")
        try:
            self.subnet = IPv4Network(subnet) if subnet else None
        except ValueError as exc:
            raise BadInput(f"bad --subnet {subnet!r}: {exc}") from exc
        self.app_hosts = app_hosts
        self.app_port = app_port
        self.backend = backend
        self.log = log
        self.files = LabFiles(self.name, state_root)
        self.image_cache = image_cache
        self._inventory = Path(inventory or Path("inventories/lab/hosts.yml")).absolute()

    # ----- read-only views -------------------------------------------------------------------------

    def _state(self) -> LabState:
        state = load(self.files)
        if state is None:
            raise BadInput(f"lab {self.name!r} is not up: run `rollwright lab up --name {self.name}`")
        return state

    def _host(self, state: LabState, host: str) -> HostState:
        if host not in state.hosts:
            raise BadInput(f"lab {self.name!r} has no host {host!r} (hosts: {', '.join(state.hosts)})")
        return state.hosts[host]

    @property
    def hosts(self) -> dict[str, HostInfo]:
        """name -> (group, address) of every host of the lab that is up."""
        return {h.name: HostInfo(h.name, h.group, h.ip) for h in self._state().hosts.values()}

    @property
    def inventory_path(self) -> Path:
        """The inventory `up` wrote (or will write)."""
        state = load(self.files)
        return Path(state.inventory) if state else self._inventory

    @property
    def db_password_file(self) -> Path:
        return self.files.db_password

    def ssh_args(self, host: str) -> list[str]:
        """argv prefix that runs a command as root on host: `[*lab.ssh_args("app1"), "uptime"]`."""
        return self._ssh(self._host(self._state(), host))

    def run(
        self, host: str, command: str, *, stdin: str | None = None, check: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command as root on host over SSH (host key checked); output is captured."""
        return run([*self.ssh_args(host), command], input_text=stdin, check=check, timeout=timeout)

    def _ssh(self, host: HostState) -> list[str]:
        return ssh_command(self.files.key, self.files.known_hosts, host.ip)

    def _ssh_ok(self, host: HostState) -> bool:
        return machine.is_running(host) and run([*self._ssh(host), "true"], check=False, timeout=15).returncode == 0

    def status(self) -> list[HostStatus]:
        """Every host: address, whether its nspawn runs, whether SSH answers, its memory."""
        require_root()
        state = self._state()
        hosts = list(state.hosts.values())
        reachable = _parallel(self._ssh_ok, hosts)
        return [
            HostStatus(h.name, h.group, h.ip, machine.is_running(h), ok, h.pid, _memory_kib(h))
            for h, ok in zip(hosts, reachable, strict=True)
        ]

    # ----- changes ---------------------------------------------------------------------------------

    def up(self) -> UpResult:
        """Bring the lab up, or repair it; a no-op when it is already up with the same shape."""
        require_root()
        ensure_packages(self.log)
        network.check_namespaces()
        with locked(self.files.root):
            state = load(self.files)
            if state is not None and not self._same_shape(state):
                if any(machine.is_running(h) for h in state.hosts.values()):
                    raise BadInput(
                        f"lab {self.name!r} is up with another shape (app hosts, subnet, port or backend): "
                        f"run `rollwright lab down --name {self.name}` first"
                    )
                self._teardown(state)
                state = None
            if state is not None:
                state.inventory = str(self._inventory)
                if state.ready and all(_parallel(self._ssh_ok, state.hosts.values())):
                    return self._finish(state, already_up=True, image_seconds=0.0, boot_seconds=0.0)
            return self._build(state)

    def _same_shape(self, state: LabState) -> bool:
        apps = sum(1 for h in state.hosts.values() if h.group == "app")
        return (
            apps == self.app_hosts
            and (self.subnet is None or IPv4Network(state.subnet) == self.subnet)
            and (state.app_port, state.backend) == (self.app_port, self.backend)
        )

    def _plan(self) -> LabState:
        """Names and addresses of a new lab: lb1 at .10, db1 at .11, app1.. from .12."""
        in_use = network.networks_in_use() + [IPv4Network(s.subnet) for s in all_states(self.files.root)]
        if self.subnet is None:
            subnet = network.pick_subnet(self.name, in_use)
        elif any(self.subnet.overlaps(net) for net in in_use):
            raise BadInput(f"--subnet {self.subnet} overlaps a network already in use on this machine")
        else:
            subnet = self.subnet
        names = [("lb1", "lb"), ("db1", "db")] + [(f"app{i}", "app") for i in range(1, self.app_hosts + 1)]
        if network.FIRST_HOST_OFFSET + len(names) >= subnet.num_addresses - 1:
            raise BadInput(f"--subnet {subnet} is too small for {len(names)} hosts")
        hosts = {
            name: HostState(name=name, group=group, address=str(network.host_address(subnet, i)))
            for i, (name, group) in enumerate(names)
        }
        return LabState(
            name=self.name,
            subnet=str(subnet),
            rootfs="",
            app_port=self.app_port,
            backend=self.backend,
            inventory=str(self._inventory),
            hosts=hosts,
        )

    def _build(self, state: LabState | None) -> UpResult:
        """Create what is missing and boot every host that is not running, all at once."""
        if state is None:
            self._teardown(None)  # leftovers of a run killed before it saved any state
            state = self._plan()
        state.ready = False
        save(self.files, state)  # from here on, `down` can find everything we make
        started = time.monotonic()
        keep = [Path(s.rootfs) for s in all_states(self.files.root) if s.rootfs]
        rootfs = image.ensure_image(self.log, self.image_cache, keep=keep)
        image_seconds = time.monotonic() - started
        to_boot = [h for h in state.hosts.values() if not machine.is_running(h)]
        if len(to_boot) == len(state.hosts) or not (state.rootfs and Path(state.rootfs).is_dir()):
            state.rootfs = str(rootfs)  # hosts still running keep the image they booted from
        lab_key = ensure_keypair(self.files.key, f"rollwright-lab-{self.name}")
        if not self.files.db_password.exists():
            self.files.db_password.touch(mode=0o600)
            self.files.db_password.write_text(secrets.token_urlsafe(24) + "\n")
        subnet = IPv4Network(state.subnet)
        network.ensure_bridge(network.bridge_name(self.name), network.gateway(subnet))
        self.log(f"lab {self.name}: booting {', '.join(h.name for h in to_boot) or 'nothing'} on {subnet}")
        booting = time.monotonic()
        host_keys = {}
        booting_names = {h.name for h in to_boot}
        for host in state.hosts.values():
            if host.name in booting_names:
                host_keys[host.name] = self._boot(state, host, lab_key)
            else:  # never write into the overlay of a running host
                host_keys[host.name] = public_key_path(self.files.upper(host.name) / HOST_KEY).read_text()
        write_known_hosts(self.files.known_hosts, [(h.name, h.ip, host_keys[h.name]) for h in state.hosts.values()])
        self._wait(list(state.hosts.values()))
        self._bootstrap_database(state)
        boot_seconds = time.monotonic() - booting
        state.ready = True
        save(self.files, state)
        return self._finish(state, already_up=False, image_seconds=image_seconds, boot_seconds=boot_seconds)

    def _boot(self, state: LabState, host: HostState, lab_key: str) -> str:
        """Wire one host's namespace, write its overlay, start it; return its SSH host key."""
        link = network.host_link_name(self.name, host.name)
        rootfs = Path(state.rootfs)
        host_key = prepare(Overlay(rootfs, self.files.upper(host.name)), host, state, lab_key)
        network.attach_host(network.bridge_name(self.name), link, IPv4Interface(host.address))
        machine.boot(host, link, rootfs, self.files.upper(host.name), self.files.console_log(host.name))
        save(self.files, state)  # the pid is on disk before we wait for anything
        return host_key

    def _wait(self, hosts: list[HostState]) -> None:
        """Wait until every host has booted; name the host and show its console when one does not."""

        def one(host: HostState) -> str:
            try:
                return wait_booted(
                    self._ssh(host), host.ip, lambda: machine.is_running(host), BOOT_TIMEOUT_S, host.name
                )
            except RollwrightError as exc:
                log_path = self.files.console_log(host.name)
                tail = log_path.read_text(errors="replace").splitlines()[-15:] if log_path.exists() else []
                raise RollwrightError("\n".join([str(exc), f"last lines of {log_path}:", *tail])) from exc

        for host, system_state in zip(hosts, _parallel(one, hosts), strict=True):
            if system_state == "degraded":
                failed = run([*self._ssh(host), "systemctl", "--failed", "--plain", "--no-legend"], check=False).stdout
                self.log(f"warning: {host.name} booted degraded, failed units:\n{failed.rstrip()}")
            elif system_state != "running":
                raise RollwrightError(f"{host.name} booted into state {system_state!r}")

    def _bootstrap_database(self, state: LabState) -> None:
        """Make the `app` login role and database on db1 (idempotent; password via stdin only)."""
        password = self.files.db_password.read_text().strip()
        for host in (h for h in state.hosts.values() if h.group == "db"):
            psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-d", "postgres"]
            proc = run([*self._ssh(host), *psql], check=False, input_text=services.database_bootstrap_sql(password))
            if proc.returncode != 0:
                detail = proc.stderr.replace(password, "********").strip()
                raise RollwrightError(f"could not create the database role on {host.name}: {detail}")

    def _finish(self, state: LabState, *, already_up: bool, image_seconds: float, boot_seconds: float) -> UpResult:
        write_inventory(Path(state.inventory), state, self.files)
        save(self.files, state)
        hosts = [HostInfo(h.name, h.group, h.ip) for h in state.hosts.values()]
        return UpResult(already_up, image_seconds, boot_seconds, hosts, Path(state.inventory))

    def down(self) -> None:
        """Stop every host we started; remove namespaces, veths, bridge, overlays, state and the inventory
        (a stale inventory would send Ansible to addresses nothing routes any more). Safe to repeat."""
        require_root()
        with locked(self.files.root):
            try:
                state = load(self.files)
            except RollwrightError:
                state = None  # unreadable: clean by names below
            self._teardown(state)

    def _teardown(self, state: LabState | None) -> None:
        if state is not None:
            _parallel(machine.stop, state.hosts.values())
            remove_inventory(Path(state.inventory))
        prefix = network.host_link_name(self.name, "")
        for name in sorted(network.namespaces() | network.links()):
            if name.startswith(prefix):
                network.detach_host(name)
        network.remove_link(network.bridge_name(self.name))
        remove_tree(self.files.dir)

    def stop(self, host: str) -> None:
        """Power one host off (orderly) and unplug it: it stops answering until `start`."""
        require_root()
        with locked(self.files.root):
            state = self._state()
            target = self._host(state, host)
            machine.stop(target)
            network.detach_host(network.host_link_name(self.name, host))
            save(self.files, state)

    def start(self, host: str) -> None:
        """Boot a stopped host again with its disk (overlay) and identity as they were."""
        require_root()
        with locked(self.files.root):
            state = self._state()
            target = self._host(state, host)
            if machine.is_running(target):
                self.log(f"{host} is already running")
                return
            network.ensure_bridge(network.bridge_name(self.name), network.gateway(IPv4Network(state.subnet)))
            self._boot(state, target, public_key_path(self.files.key).read_text().strip())
            self._wait([target])
            if target.group == "db":
                self._bootstrap_database(state)


def _memory_kib(host: HostState) -> int:
    mem = machine.memory(host)
    return mem.pss + mem.tmpfs
