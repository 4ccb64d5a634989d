"""The ordered steps a deploy would run, per group and per host batch, without touching anything."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from rollwright.render.batches import split_batches
from rollwright.render.commands import GroupCommand
from rollwright.render.policy import pending_rule
from rollwright.render.project import ROLES_DIR, release_runner
from rollwright.spec.model import Canary, CommandGroup, Hold, Metrics, Spec


@dataclass(frozen=True)
class Step:
    """One step of the plan: what runs, where, and (for groups) the exact commands."""

    phase: str
    title: str
    hosts: list[str]
    commands: list[str] = field(default_factory=list)


@dataclass
class Pending:
    """What the new release would apply, as the target answered `plan --migrations`: migration names, those known
    to lock a busy table (tool sql), and the tool's own words; `known` is False when the tool's output cannot be
    read (tool command)."""

    names: list[str] = field(default_factory=list)
    locking: list[dict[str, Any]] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    command: str = ""
    known: bool = True


def locking_files(migrations: dict[str, bytes]) -> dict[str, list[str]]:
    """File -> statements known to lock a busy table, judged by the embedded module's own patterns."""
    module = _sql_module()
    found = {name: module.Migration(name, data.decode("utf-8", "replace")).locking()
             for name, data in migrations.items()}
    return {name: statements for name, statements in found.items() if statements}


def hosts_of(pattern: str, inventory: dict[str, list[str]]) -> list[str]:
    """Hosts an Ansible host pattern of group/host names (joined by ':') selects, in order."""
    if pattern == "localhost":
        return ["localhost"]
    selected: list[str] = []
    for part in pattern.split(":"):
        selected += inventory.get(part, [part] if part in inventory.get("all", []) else [])
    return list(dict.fromkeys(selected))


def destructive_files(migrations: dict[str, bytes]) -> dict[str, list[str]]:
    """File -> destructive statements, judged by the very code the deploy runs (the embedded module)."""
    if not migrations:
        return {}
    module = _sql_module()
    found = {name: module.Migration(name, data.decode("utf-8", "replace")).destructive()
             for name, data in migrations.items()}
    return {name: statements for name, statements in found.items() if statements}


def _sql_module() -> Any:
    """The embedded sql_migrations module: the very code the deploy runs judges the files."""
    path = ROLES_DIR / "migrate" / "library" / "sql_migrations.py"
    loader = importlib.util.spec_from_file_location("rollwright_sql_migrations", path)
    assert loader and loader.loader, path
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def build_plan(spec: Spec, groups: list[tuple[CommandGroup, list[GroupCommand]]],
               inventory: dict[str, list[str]], migrations: dict[str, bytes] | None = None,
               pending: Pending | None = None) -> list[Step]:
    """Steps in run order; mirrors the plays of the generated site.yml. With `pending` (what the target said the
    new release would apply) the migrate step lists it."""
    app_hosts = hosts_of(spec.rollout.hosts, inventory)
    db_hosts = hosts_of(spec.database.hosts, inventory)[:1] if spec.database else []
    problems = []
    checks = ["required env vars: " + (", ".join(spec.all_required_env) or "none")]
    if spec.artifact:
        checks.append(f"artifact {spec.artifact.path or spec.artifact.url} sha256 {spec.artifact.sha256[:12]}…")
    steps = [Step("preflight", "Check on the control node: " + "; ".join(checks), ["localhost"])]
    if spec.artifact:
        if not app_hosts:
            problems.append(f"inventory has no hosts in group '{spec.rollout.hosts}'")
        steps.append(Step("preflight", "Check every host answers", app_hosts))
    for group, commands in groups:
        hosts = hosts_of(group.hosts, inventory)
        steps.append(Step("group", f"Group {group.name} (order {group.order})", hosts,
                          [f"{c.step}: {c.command}" for c in commands]))
    rule = pending_rule(spec)
    if rule:
        steps.append(Step("policy", f"Strategy {spec.rollout.strategy}: {rule.summary}; checked before any change",
                          db_hosts))
    if spec.database and spec.database.backup and spec.database.backup.enabled:
        backup = spec.database.backup
        tracked = spec.database.migrations is not None and spec.database.migrations.tool == "sql"
        when = " when migrations are pending" if tracked else ""
        steps.append(Step("backup", f"pg_dump -Fc {spec.database.name} into {backup.dir}{when}, verify "
                          f"({backup.verify}), keep {backup.keep}", db_hosts))
    if spec.artifact:
        unit = ", unit and env file" if spec.service else ""
        build = spec.release.build if spec.release else []
        steps.append(Step("stage", f"Stage {spec.artifact.version} on all app hosts at once (upload, verify "
                          f"sha256, unpack, link shared{unit})" + (", then build inside it once, as "
                          f"{release_runner(spec)['user']}" if build else ""), app_hosts, list(build)))
    if spec.database and spec.database.migrations:
        acknowledged = spec.database.migrations.acknowledge_destructive
        flagged = [f"DESTRUCTIVE ({', '.join(statements)}): {name} — "
                   + ("acknowledged in the spec" if name in acknowledged else
                      "blocks the deploy if pending, unless acknowledged (--acknowledge-destructive)")
                   for name, statements in destructive_files(migrations or {}).items()]
        steps.append(Step("migrate", f"Apply migrations once ({spec.database.migrations.tool}), each statement "
                          f"waiting at most {spec.database.migrations.lock_timeout_s} s for a lock "
                          f"({spec.database.migrations.lock_retries} more tries)",
                          db_hosts if spec.database.migrations.tool == "sql" else app_hosts[:1],
                          flagged + _pending_lines(migrations or {}, pending)))
    if spec.artifact and spec.rollout.strategy == "blue_green":
        steps += _colour_steps(spec, inventory)
        colours = (spec.rollout.colours.blue, spec.rollout.colours.green)
        problems += [f"inventory has no hosts in group '{colour}' (a blue/green colour)" for colour in colours
                     if not hosts_of(colour, inventory)]
        problems += [f"group '{colour}' has hosts outside '{spec.rollout.hosts}'" for colour in colours
                     if set(hosts_of(colour, inventory)) - set(app_hosts)]
    elif spec.artifact:
        steps += _rollout_steps(spec, app_hosts)
    if spec.artifact:
        steps += hold_step(spec, inventory)
    if spec.health and spec.health.url:
        steps.append(Step("health", f"Site health: {spec.health.url} answers {spec.health.status}", ["localhost"]))
    steps += [Step("smoke", f"Smoke check: {check.label} (up to {check.attempts}x); a failure rolls every host "
                            "back", ["localhost"]) for check in spec.smoke]
    if problems:
        steps.append(Step("problem", "; ".join(problems), []))
    return steps


def _pending_lines(migrations: dict[str, bytes], pending: Pending | None) -> list[str]:
    """What would be applied and which of it locks a busy table: the pending files when the target was asked,
    else every local file that would lock one if pending."""
    if pending is None:
        return [f"LOCKS A BUSY TABLE ({', '.join(statements)}): {name} — if pending, readers of that table wait "
                "behind it (up to lock_timeout_s)" for name, statements in locking_files(migrations).items()]
    if not pending.known:
        return [f"the new release's plan ({pending.command}) says:", *(f"  {line}" for line in pending.output)]
    lines = [f"would apply: {name}" for name in pending.names] or ["nothing to apply"]
    return lines + [f"LOCKS A BUSY TABLE ({', '.join(item['statements'])}): {item['script']} — readers of that "
                    "table wait behind it (up to lock_timeout_s)" for item in pending.locking]


def _colour_steps(spec: Spec, inventory: dict[str, list[str]]) -> list[Step]:
    """Blue/green: the idle colour (which one, the load balancer's state file says at deploy time)."""
    colours, lb = spec.rollout.colours, spec.rollout.load_balancer
    assert lb is not None
    blue, green = hosts_of(colours.blue, inventory), hosts_of(colours.green, inventory)
    both = f"{colours.blue} ({', '.join(blue) or 'no hosts'}) or {colours.green} ({', '.join(green) or 'no hosts'})"
    return [
        Step("rollout", f"The idle colour, {both}, whichever takes no traffic: switch current, restart, health "
             "gate, all at once", blue + green),
        Step("switch", f"Move the traffic to it in one step on {lb.hosts} (backend {lb.backend}); the other colour "
             "keeps running in maintenance, for `rollwright rollback` (skipped with --no-switch: `rollwright "
             "promote` later)", hosts_of(lb.hosts, inventory)),
    ]


def _rollout_steps(spec: Spec, app_hosts: list[str]) -> list[Step]:
    rollout, lb = spec.rollout, spec.rollout.balancer
    hooks = spec.hooks
    if lb and lb.kind == "command":
        around = f"drain with the load balancer's commands on {lb.on or 'the control node'}, "
    else:
        around = f"drain in {lb.backend} on {lb.hosts}, " if lb else ""
    around += "before_switch hooks, " if hooks.before_switch else ""
    named = {order: ", ".join(name for name, p in spec.processes.items() if p.order == order)
             for order in ("before_web", "after_web")}
    restart = "".join([f", restart {named['before_web']} (ready)" if named["before_web"] else "",
                       ", restart, health gate",
                       f", restart {named['after_web']} (ready)" if named["after_web"] else ""])
    switch = f"switch current{restart}" if spec.service else "switch current (no service to restart)"
    back = (", after_switch hooks" if hooks.after_switch else "") + (", undrain" if lb else "")
    steps, reached = [], 0
    for number, batch in enumerate(split_batches(app_hosts, rollout.steps), 1):
        reached += len(batch)
        if rollout.strategy == "canary":
            share = f"{reached}/{len(app_hosts)} hosts ({reached * 100 // max(len(app_hosts), 1)}% of the servers)"
            criteria = canary_criteria(rollout.guard, rollout.source, baseline=reached < len(app_hosts))
            steps.append(Step("canary", f"Canary step {number}, {share}: {around}{switch}{back}; then "
                              f"{criteria}", batch))
        else:
            what = "Every host at once (direct)" if rollout.strategy == "direct" else f"Batch {number}"
            steps.append(Step("rollout", f"{what}: {around}{switch}{back}", batch))
    return steps


def canary_criteria(guard: Canary, metrics: Metrics, baseline: bool = True) -> str:
    """The analysis window, its source and its abort criteria; the last step has no baseline, only absolute
    limits."""
    return (f"a {guard.window_s} s analysis of {source_text(metrics)}; abort and roll every canary host back if "
            f"{slo_limits(guard, metrics, baseline)}")


def hold_step(spec: Spec, inventory: dict[str, list[str]]) -> list[Step]:
    """The SLO hold after the rollout (blue/green: after the switch), when the spec has one."""
    hold, lb = spec.rollout.hold, spec.rollout.load_balancer
    if hold is None or lb is None:
        return []
    back = "switch the traffic back" if spec.rollout.strategy == "blue_green" else "roll every app host back"
    metrics = spec.rollout.source
    source = (source_text(metrics) if metrics.prometheus else f"{lb.hosts}'s counters (backend {lb.backend})")
    before = ("the previous version's series before the deploy" if metrics.prometheus
              else "the traffic between the deploy's start and its first switch")
    limits = slo_limits(hold, metrics, True).removeprefix("their ")
    return [Step("hold", f"SLO hold: {hold.duration_s} s of the new release's traffic on {source}, against {before}; "
                 f"{back} if the new hosts' {limits}", hosts_of(lb.hosts, inventory)[:1])]


def source_text(metrics: Metrics) -> str:
    """Where a verdict reads its numbers, as the plan says it."""
    if metrics.prometheus:
        return (f"Prometheus at {metrics.prometheus.url} (the new version's series against the previous "
                "one's)")
    return "the load balancer's counters"


def slo_limits(limits: Canary | Hold, metrics: Metrics, baseline: bool) -> str:
    """What fails an SLO verdict, as the plan says it: HAProxy gives a 5xx share and an average response time,
    Prometheus an error ratio and a p95 (each version's own series)."""
    prometheus = metrics.prometheus is not None
    errors = f"above {limits.max_error_rate:.2%}" + (f" or above {limits.max_error_ratio}x the baseline's"
                                                      if baseline else "")
    latency = [f"above {limits.max_latency_ratio}x the baseline's"] if baseline else []
    limit = limits.max_p95_ms if prometheus else limits.max_latency_ms
    latency += [f"above {limit} ms"] if limit else []
    measure = "p95 response time" if prometheus else "average response time"
    slow = f", their {measure} is {' or '.join(latency)}" if latency else ""
    if not prometheus:
        return f"their 5xx share is {errors}{slow}, or they answered fewer than {limits.min_requests} requests"
    too_few = (f", or they answered fewer than {limits.min_requests} requests"
               if metrics.prometheus and metrics.prometheus.requests else ", or Prometheus has no data for them")
    return f"their error ratio is {errors}{slow}{too_few}"


def plan_as_json(steps: list[Step]) -> list[dict[str, Any]]:
    return [asdict(step) for step in steps]


def plan_as_text(steps: list[Step]) -> str:
    lines = []
    for number, step in enumerate(steps, 1):
        hosts = ", ".join(step.hosts) or "(no hosts)"
        lines.append(f"{number:>2}. [{step.phase}] {step.title}  @ {hosts}")
        lines += [f"      $ {command}" for command in step.commands]
    return "\n".join(lines)
