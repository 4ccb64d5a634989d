"""site.yml and rollback.yml as data: one play per deploy phase, in the order a safe deploy needs.

Order: preflight (control node, then hosts) -> command groups -> migration history check and backup
(before any change) -> stage (all app hosts at once, no traffic impact) -> migrate (after staging, so
tools like alembic run from the new release; before any switch) -> rollout (serial batches: drain,
switch, restart, health gate, undrain; a failed gate rolls the host back) -> site health -> hooks.
"""

from __future__ import annotations

from typing import Any

from rollwright.render.commands import GroupCommand
from rollwright.render.migrate import tool_commands
from rollwright.render.policy import pending_rule
from rollwright.render.yamlout import Unsafe
from rollwright.spec.model import LB_COMMAND_TIMEOUT_S, Canary, CommandGroup, Hold, Spec

V = "rollwright_"  # prefix of the rendered spec values in group_vars/all/rollwright.yml
FILES_DIR = "files"  # in the project: where the spec's commands run, beside the files they use
ENV_DIR = "/etc/rollwright"  # the service's env file, <name>.env, on every app host (roles/service)

# Names the runner reads back from ansible-runner events to follow each host through the rollout.
ROLLOUT_PLAY = "Roll out in batches"
ROLLBACK_PLAY = "Roll back the app hosts"
ROLLBACK_VERSION_TASK = "Name the release now current at the end of the env file"
ROLLBACK_TASK = "Roll back to the previous or named release"  # rollback.yml's switch: its phase starts there
APP_PLAY = "Act on the app's service in batches"  # app.yml's batched play (start, stop, restart)
APP_ACTIONS = ("start", "stop", "restart")
APP_GATE_TASK = "Start or restart the service and wait until it is healthy"
PHASES = {
    ROLLBACK_TASK: "rollback",
    "Stop the service": "stop",
    APP_GATE_TASK: "restart",
    "Drain this host in the load balancer": "drain",
    "Switch current to the new release": "switch",
    "Restart the service and wait until the new version is healthy": "restart",
    "Put this host back in the load balancer": "undrain",
    "Roll this host back to the previous release": "rollback",
}
PHASE_TASK = {phase: task for task, phase in PHASES.items()}
DIRECT_MODULE_ROLES = ("healthcheck", "lb_haproxy", "release", "service")  # their modules are called outside the roles
DECIDE_TASK = "Decide whether this host needs the new release"  # its fact says whether the host goes through PHASES
APP_DECIDE_TASK = "Decide whether this host needs the action"  # app.yml's, with the same fact
TAKE_LOCK_PLAY = "Take the deploy lock when the runner asks"  # site.yml's and rollback.yml's first play
RESCUE_FAIL_TASK = "Fail the deploy after the rescue"  # re-raises the failure the host was rescued from
BUILD_TASK = "Build inside the new release (release.build, once per release)"
BUILD_MARKER = ".rollwright-build"  # in the release: its build passed (a digest of the commands)
BEFORE_SWITCH_TASK = "Run before_switch hooks in the new release"
AFTER_SWITCH_TASK = "Run after_switch hooks in the new release"
PROCESSES_BEFORE_TASK = "Restart the processes that go before the web service and wait until they are ready"
PROCESSES_AFTER_TASK = "Restart the app's other processes and wait until they are ready"
PROCESSES_BACK_TASK = "Restart the processes on the release now current and wait until they are ready"
CLEANUP_PLAY = "Keep the newest releases (never current or previous)"
AFTER_DEPLOY_PLAY = "Run after_deploy hooks"
SMOKE_PLAY = "Prove the release: smoke checks through the load balancer"  # a failure rolls the fleet back
AFTER_ROLLOUT_PLAYS = (CLEANUP_PLAY, AFTER_DEPLOY_PLAY)  # their failure is reported, the new release stays
POLICY_TASK = "Refuse what the strategy policy forbids"
PREFLIGHT_PLAY = "Preflight"  # the plays whose checks change nothing; their failures are the runner's refusals
BEFORE_DEPLOY_HOOK = "Run before_deploy hook"  # in the control node's preflight play, but a hook, not a check
COLOURS_PLAY = "Blue/green: find the live and the idle colour"
SWITCH_PLAY = "Blue/green: switch the traffic to the idle colour in one step"
IDLE_GROUP = "rollwright_idle"  # the hosts of the idle colour, which a blue/green deploy updates
CANARY_TASK = "Canary analysis: judge this step against the baseline"
CANARY_FAIL_TASK = "Stop the rollout on a failed canary verdict"
CANARY_LIMITS = [name for name in Canary.model_fields if name != "steps"]  # the guard's settings, as rendered
HOLD_START_PLAY = "Hold: read the load balancer's counters (the baseline window starts)"
HOLD_END_PLAY = "Hold: read the load balancer's counters before the first switch (the baseline window ends)"
HOLD_SNAPSHOT_TASK = "Keep the load balancer's counters for the hold"
HOLD_PLAY = "Hold: judge the release by its traffic"
HOLD_STARTED_TASK = "Read the load balancer's counters as the hold starts"
HOLD_SAMPLE_TASK = "Sample this host's CPU and memory use over the hold"
HOLD_TASK = "SLO hold: judge the release against the traffic before the deploy"
HOLD_FAIL_TASK = "Stop the deploy on a failed hold"
HOLD_LIMITS = [name for name in Hold.model_fields if name != "duration_s"]  # the judge's limits, as rendered
HOLD_TAGS = ["hold", "health"]  # --no-health-check skips the hold too
FIRST_HOST = "ansible_play_batch[0]"  # where a canary or hold verdict is made, once per batch
SWITCH_COLOUR_TASK = "Move the traffic to the idle colour"
SWITCH_TASK = "Switch current atomically, keeping the release history"  # roles/release/tasks/switch.yml


def site_plays(spec: Spec, groups: list[tuple[CommandGroup, list[GroupCommand]]]) -> list[dict[str, Any]]:
    """Every play of site.yml, in run order: the first takes the deploy lock when the runner asks for it."""
    plays = [_take_lock_play(spec), _preflight_local(spec)]
    if spec.artifact:
        plays.append(_preflight_hosts(spec))
    hold = bool(spec.artifact and spec.rollout.hold)
    if hold:  # the baseline window starts: the traffic from here to the first switch is all the old release's
        plays.append(_hold_snapshot_play(spec, HOLD_START_PLAY))
    plays += [_group_play(index, group, commands) for index, (group, commands) in enumerate(groups, 1)]
    backup = bool(spec.database and spec.database.backup and spec.database.backup.enabled)
    if backup or _sql_migrations(spec):  # before anything changes: a refused history or a failed dump stops here
        plays.append(_backup_play(spec, backup))
    if _blue_green(spec):
        plays.append(_colours_play(spec))
    if spec.artifact:
        plays.append(_stage_play(spec))
    if spec.database and spec.database.migrations:
        plays.append(_migrate_play(spec))
    if spec.artifact:
        if hold and not _blue_green(spec):
            plays.append(_hold_snapshot_play(spec, HOLD_END_PLAY))
        plays.append(_rollout_play(spec))
        if _blue_green(spec):  # the idle colour's rollout took no traffic: the baseline window ends at the switch
            plays += [_hold_snapshot_play(spec, HOLD_END_PLAY)] if hold else []
            plays.append(_switch_play(spec, optional=True))
        if hold:
            plays.append(_hold_play(spec))
        cleanup = _play(CLEANUP_PLAY, _updated_hosts(spec), [
            _import("Remove old releases", "release", "cleanup", {
                "release_root": f"{{{{ {V}release.root }}}}", "release_keep": f"{{{{ {V}release.keep }}}}"})],
            tags=["cleanup"])
        cleanup["strategy"] = "ansible.builtin.free"  # each host on its own: no order to keep
        plays.append(cleanup)
    if spec.health and spec.health.url:
        plays.append(_site_health_play(spec))
    if spec.smoke:
        plays.append(_smoke_play(spec))
    if spec.hooks.after_deploy:
        plays.append(_hook_play(AFTER_DEPLOY_PLAY, spec.hooks.after_deploy, "hooks"))
    if spec.artifact and not _blue_green(spec):  # the runner's account of the fleet comes from this run
        plays += status_plays(spec)  # (blue/green's would find the colours again, after the run's own account)
    return plays


def rollback_plays(spec: Spec) -> list[dict[str, Any]]:
    """rollback.yml: every app host back to `previous` (or -e rollwright_rollback_version=V; with
    -e rollwright_rollback_restart=true restarted even when current already names it: recovery), then
    the status plays (what every app host serves, published for the runner, as site.yml ends)."""
    if not spec.artifact:
        return [_play("Nothing to roll back (the spec deploys no release)", "localhost",
                      [_task("Say so", "ansible.builtin.debug", {"msg": "this spec has no release to roll back"})])]
    if _blue_green(spec):
        return [_take_lock_play(spec), *switch_plays(spec)]
    # each step an embedded module called directly, as in the rollout's batches (no include or argument check)
    named = "(rollwright_rollback_version | default('')) | length > 0"
    # restarted when current moved, or on request (recovery: current ahead of what runs)
    restart = ("rollwright_back.switched_from != rollwright_back.current or "
               "(rollwright_rollback_restart | default(false) | bool)")
    tasks = [
        *_web_only(spec, _lb_tasks(spec, "maint")),
        _task(ROLLBACK_TASK, "release_switch", {
            "root": f"{{{{ {V}release.root }}}}", "version": "{{ rollwright_rollback_version | default(omit, true) }}",
            "action": f"{{{{ 'push' if {named} else 'pop' }}}}"}, register="rollwright_back"),
        *(_web_only(spec, [_task(ROLLBACK_VERSION_TASK, "service_version", {  # the process to start says so
            "name": f"{{{{ {V}service.name }}}}", "root": f"{{{{ {V}release.root }}}}",
            "version": "{{ rollwright_back.current }}"}, when=restart)]) if spec.service else []),
        *_process_tasks(spec, "before_web", PROCESSES_BEFORE_TASK, when=restart),
        *(_web_only(spec, [_gate_task("Restart the release now current and wait until it is healthy",
                                      "{{ rollwright_back.current }}", f"{{{{ {restart} }}}}")])
          if spec.service else []),
        *_process_tasks(spec, "after_web", PROCESSES_AFTER_TASK, when=restart),
        *_web_only(spec, _lb_tasks(spec, "ready")),
    ]
    play = _play(ROLLBACK_PLAY, _app_hosts(spec), tasks, tags=["rollback"])
    play["serial"] = spec.rollout.steps
    play["max_fail_percentage"] = 0
    return [_take_lock_play(spec), play, *status_plays(spec)]  # the runner's account of the fleet comes from this run


def app_plays(spec: Spec) -> list[dict[str, Any]]:
    """app.yml: the app's service started, stopped or restarted (-e rollwright_app_action=start|stop|restart)
    batch by batch like a rollout, each host out of the load balancer meanwhile. A failed health gate stops the
    run there and leaves that host drained; `stop` leaves its hosts drained; `start` acts only on hosts whose
    service is not running, not healthy or out of the load balancer. Then the status plays (what every app host
    serves, for the runner). The runner passes --tags lock,ACTION,status: only that action's tasks run."""
    if not spec.service or _blue_green(spec):
        why = ("blue/green: the idle colour takes no traffic" if spec.service else
               "this spec runs no service (an app without one is its files and `current` only)")
        return [_play("Nothing to start, stop or restart here", "localhost", [_task("Say so", "ansible.builtin.debug",
                                                                                    {"msg": why})])]
    action = "rollwright_app_action"

    def only(actions: list[str], task: dict[str, Any]) -> dict[str, Any]:
        """A task of some actions: its `when` says so in a plain run; its tags let the runner (--tags ACTION)
        leave it out, so no host is seen starting a phase it skips."""
        when = [f"{action} in {actions}"] if len(actions) < len(APP_ACTIONS) else []
        when += [f"({task['when']})"] if "when" in task else []
        return {**task, "tags": list(actions), **({"when": " and ".join(when)} if when else {})}

    every, serving = list(APP_ACTIONS), ["start", "restart"]
    # start brings a host to serving: it acts where the service is not running, not healthy or out of service
    acts = [f"{action} != 'start'", "healthcheck_report.active != 'active'", "not (healthcheck_report.healthy | bool)"]
    down = {}  # start also acts where one of the host's processes does not run
    if spec.processes:
        down["rollwright_processes_down"] = ("{{ healthcheck_report.units.values() | rejectattr('active', 'eq', "
                                             "'active') | list | length > 0 }}")
        acts.append("rollwright_processes_down | bool")
    tasks = [
        _task("Refuse an unknown action", "ansible.builtin.assert", {
            "that": [f"{action} | default('') in {every}"], "quiet": True,
            "fail_msg": f"pass -e {action}=start, stop or restart"}, run_once=True, tags=["always"]),
        only(every, _read_host_task(spec, health=True)),
    ]
    if spec.rollout.haproxy:  # another kind's state is not known here
        tasks.append(only(["start"], _lb_read_task()))
        acts.append("lb_haproxy_read.results | map(attribute='previous', default='') | reject('equalto', 'ready') "
                    "| list | length > 0")
    stop = _web_only(spec, [_task("Stop the service", "ansible.builtin.systemd_service", {
        "name": f"{{{{ {V}service.name }}}}", "state": "stopped"})])
    if spec.processes:
        stop.append(_task("Stop the app's other processes", "ansible.builtin.systemd_service", {
            "name": "{{ item }}", "state": "stopped"}, loop=HOST_UNITS))
    serve = [
        *_process_tasks(spec, "before_web", PROCESSES_BEFORE_TASK),
        # a restart (which also clears a failed state) starts a stopped unit and renews a sick one
        *_web_only(spec, [_gate_task(APP_GATE_TASK, "{{ healthcheck_report.current }}", True)]),
        *_process_tasks(spec, "after_web", PROCESSES_AFTER_TASK),
        *_web_only(spec, _lb_tasks(spec, "ready")),
    ]
    tasks += [
        only(every, _task(APP_DECIDE_TASK, "ansible.builtin.set_fact", {
            "rollwright_host_stale": f"{{{{ {' or '.join(acts)} }}}}"}, **({"vars": down} if down else {}))),
        {"name": "Take this host out, act on its service, put it back", "when": "rollwright_host_stale | bool",
         "block": [
             *[only(every, task) for task in _web_only(spec, _lb_tasks(spec, "maint"))],
             *[only(["stop"], task) for task in stop],
             *[only(serving, task) for task in serve],
         ]},
    ]
    play = _play(f"{APP_PLAY} {spec.rollout.steps}", _app_hosts(spec), tasks, tags=["app"])
    play["serial"] = spec.rollout.steps
    play["max_fail_percentage"] = 0
    return [_take_lock_play(spec), play, *status_plays(spec)]


def switch_plays(spec: Spec) -> list[dict[str, Any]]:
    """Blue/green's rollback and promote: the idle colour (the old release after a deploy, the new one after
    `deploy --no-switch`) must run a release and be healthy, then takes the traffic in one step."""
    checks = [
        _task("Read where current points", "ansible.builtin.stat", {"path": f"{{{{ {V}release.root }}}}/current"},
              register="rollwright_current"),
        _task("Refuse a host without a release", "ansible.builtin.assert", {
            "that": ["rollwright_current.stat.exists"], "quiet": True,
            "fail_msg": "{{ inventory_hostname }} has no release to serve; the traffic stays where it is"}),
        _include("Health gate: the colour to switch to is healthy", "healthcheck", vars={
            **_health_args("healthcheck_"), "healthcheck_unit": f"{{{{ {V}service.name }}}}"}),
    ]
    check = _play("Blue/green: check the idle colour before it takes the traffic", IDLE_GROUP, checks,
                  tags=["switch"])
    check["any_errors_fatal"] = True
    return [_colours_play(spec), check, _switch_play(spec, optional=False)]


def _blue_green(spec: Spec) -> bool:
    return spec.rollout.strategy == "blue_green"


def _updated_hosts(spec: Spec) -> str:
    """The hosts a deploy stages and restarts: the idle colour for blue/green, else every app host (the web
    service's and every process's)."""
    return IDLE_GROUP if _blue_green(spec) else _app_hosts(spec)


def _app_hosts(spec: Spec) -> str:
    """Every host that runs the app (the web service's and every process's; blue/green: both colours)."""
    return ":".join(spec.app_groups)


def _web_only(spec: Spec, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The web service's tasks, for the hosts that run it: on a host that only runs other processes they skip."""
    if len(spec.app_groups) == 1:
        return tasks
    return [{**task, "when": f"{WEB_HOST} and ({task['when']})" if "when" in task else WEB_HOST} for task in tasks]


def _process_task(name: str, order: str | None, **more: Any) -> dict[str, Any]:
    """Restart this host's processes of one `order` (None: all) and wait until each is ready (the readiness gate,
    one loop)."""
    which = "" if order is None else f" | selectattr('order', 'equalto', {order!r}) | list"
    return _task(name, "process_ready", {
        "units": "{{ item.units }}", **{key: f"{{{{ item.ready.{key} }}}}" for key in READY_KEYS},
        "user": "{{ item.user }}", "group": "{{ item.group }}", "env_file": "/etc/rollwright/{{ item.unit }}.env",
        "chdir": "{{ item.chdir }}"}, loop=f"{{{{ {V}host_processes{which} }}}}",
        loop_control={"label": "{{ item.name }}"}, **more)


def _process_tasks(spec: Spec, order: str, name: str, **more: Any) -> list[dict[str, Any]]:
    """`_process_task` when the spec has processes of that order."""
    return [_process_task(name, order, **more)] if any(p.order == order for p in spec.processes.values()) else []


def _colours_state(spec: Spec) -> str:
    return f"/var/lib/rollwright/colours/{spec.app}"


def _lb_first(spec: Spec) -> str:
    lb = spec.rollout.load_balancer
    assert lb is not None
    return f"hostvars[groups[{lb.hosts!r}][0]]"


def _colours_play(spec: Spec) -> dict[str, Any]:
    """The live colour is what the load balancer host's state file says (written by the switch); the other
    is idle. With no file yet (the first blue/green deploy), blue is idle and gets the release."""
    assert spec.rollout.load_balancer is not None
    blue, green = spec.rollout.colours.blue, spec.rollout.colours.green
    tasks = [
        _task("Read the live colour", "ansible.builtin.slurp", {"src": _colours_state(spec)},
              register="rollwright_colour_file", failed_when=False),
        _task("Name the live colour", "ansible.builtin.set_fact", {
            "rollwright_live_colour": "{{ (rollwright_colour_file.content | default('') | b64decode) | trim }}"}),
        _task("Name the idle colour", "ansible.builtin.set_fact", {
            "rollwright_idle_colour": f"{{{{ {green!r} if rollwright_live_colour == {blue!r} else {blue!r} }}}}"}),
        _task("Refuse an idle colour without hosts", "ansible.builtin.assert", {
            "that": ["groups[rollwright_idle_colour] | default([]) | length > 0"], "quiet": True,
            "fail_msg": "blue/green: inventory group {{ rollwright_idle_colour }} has no hosts"}),
        _task("Target the idle colour's hosts", "ansible.builtin.add_host",
              {"name": "{{ item }}", "groups": IDLE_GROUP}, loop="{{ groups[rollwright_idle_colour] }}",
              changed_when=False),
    ]
    return _play(COLOURS_PLAY, f"{spec.rollout.load_balancer.hosts}[0]", tasks, tags=["always"])


def _switch_play(spec: Spec, optional: bool) -> dict[str, Any]:
    """On every load balancer host: the idle colour takes the traffic, the live one is kept running in
    maintenance; then the state file names the new live colour. `optional`: `deploy --no-switch` skips it."""
    lb = spec.rollout.load_balancer
    assert lb is not None
    blue, green = spec.rollout.colours.blue, spec.rollout.colours.green
    idle = f"{_lb_first(spec)}.rollwright_idle_colour"
    tasks = [
        _include(SWITCH_COLOUR_TASK, "lb_haproxy", "switch", vars={
            "lb_haproxy_serve": f"{{{{ groups[{idle}] }}}}",
            "lb_haproxy_retire": f"{{{{ groups[{blue!r} if {idle} == {green!r} else {green!r}] | default([]) }}}}",
            **_refs("lb_haproxy_", "lb", ["backend", "socket", "drain_timeout_s"])}),
        _task("Keep the state folder", "ansible.builtin.file", {
            "path": "/var/lib/rollwright/colours", "state": "directory", "owner": "root", "group": "root",
            "mode": "0755"}),
        _task("Name the new live colour", "ansible.builtin.copy", {
            "content": f"{{{{ {idle} }}}}\n", "dest": _colours_state(spec), "owner": "root", "group": "root",
            "mode": "0644"}),
    ]
    if optional:
        tasks = [{"name": "Switch unless the deploy says --no-switch",
                  "when": "not (rollwright_no_switch | default(false) | bool)", "block": tasks}]
    play = _play(SWITCH_PLAY, lb.hosts, tasks, tags=["switch"])
    play["any_errors_fatal"] = True
    return play


def migrations_plays(spec: Spec) -> list[dict[str, Any]]:
    """migrations.yml: one migrations action (-e rollwright_migrations_action=status|apply|...); a tool
    other than sql runs its own command from the deployed release (`current`)."""
    if not (spec.database and spec.database.migrations):
        return [_play("No migrations in this spec", "localhost",
                      [_task("Say so", "ansible.builtin.debug", {"msg": "the spec has no database.migrations"})])]
    action = {"migrate_action": "{{ rollwright_migrations_action | default('status') }}"}
    if _sql_migrations(spec):
        hosts, role_vars = f"{_db_hosts(spec)}[0]", {
            **_sql_migrate_vars(), **action,
            "migrate_script": "{{ rollwright_migrations_script | default('') }}",
            "migrate_version": "{{ rollwright_migrations_version | default('') }}",
        }
    else:
        hosts, role_vars = _tool_migrate_vars(spec, f"{{{{ 'releases/' ~ {V}version if {STAGED} else 'current' }}}}")
        role_vars.update(action)
    task = _include("Run one migrations action", "migrate", "action", vars=role_vars)
    plays = [_play("Migrations", hosts, [task], tags=["migrate"])]
    if spec.artifact and not _sql_migrations(spec):
        plays.insert(0, _stage_for_migrations(spec, hosts))
    return plays


STAGED = "(rollwright_migrations_stage | default(false) | bool)"  # migrations.yml: run in the spec's release


def _stage_for_migrations(spec: Spec, hosts: str) -> dict[str, Any]:
    """With -e rollwright_migrations_stage=true, the spec's release is staged on the host the tool runs on, as a
    deploy stages it (no restart, no switch: no traffic moves), so the tool reads what the NEW release would
    apply."""
    # Only the release's files: a running service's unit and env file stay as the deploy left them (a restart
    # before the next deploy must not pick up the new ones), and no build or hook runs. A host the app never
    # reached gets its account first (the release's shared folders and the tool run as it).
    new_host = "rollwright_runner_account.rc != 0"
    tasks = [
        _task("Find the account the release runs as", "ansible.builtin.command", {
            "argv": ["id", "-u", "--", f"{{{{ {V}runner.user }}}}"]}, register="rollwright_runner_account",
            changed_when=False, failed_when=False, check_mode=False),
        *_install_tasks(spec, when=new_host),
        _unpack_task(spec),
    ]
    block = {"name": "Stage the spec's release when asked", "when": STAGED, "block": tasks}
    return _play("Stage the release for the migration tool (no switch, no traffic impact)", hosts, [block],
                 tags=["migrate"])


def lock_plays(spec: Spec) -> list[dict[str, Any]]:
    """lock.yml: take, release or read the target's deploy lock on its first host
    (-e deploy_lock_action=acquire|release|status deploy_lock_holder={...})."""
    return [_lock_play(spec, "The deploy lock")]


def _lock_play(spec: Spec, name: str, when: str | None = None) -> dict[str, Any]:
    task = _include("Take, release or read the deploy lock", "deploy_lock", vars={
        "deploy_lock_path": f"{{{{ {V}lock_path }}}}"}, **({"when": when} if when else {}))
    host = f"{spec.rollout.hosts}[0]" if spec.artifact else "all[0]"
    return _play(name, host, [task], tags=["lock"])


def _take_lock_play(spec: Spec) -> dict[str, Any]:
    """The first play of site.yml and rollback.yml: takes the deploy lock when the runner passes
    -e deploy_lock_action=acquire (one run fewer per deploy); a plain `ansible-playbook` run skips it. Its one
    host failing ends the whole playbook before anything else runs."""
    play = _lock_play(spec, TAKE_LOCK_PLAY, when="deploy_lock_action is defined")
    play["any_errors_fatal"] = True
    return play


ALREADY_PLAY = "Already deployed?"  # current.yml's plays


def current_plays(spec: Spec) -> list[dict[str, Any]]:
    """current.yml: is the spec's release already deployed, so that a deploy has nothing to do? Changes nothing:
    the deploy lock's holder, the pending migrations (tool sql), what the stage would change (check mode) and
    what every app host runs (the status plays). The runner decides; any doubt takes the normal path."""
    if not spec.artifact:
        return [_play("Nothing to check (the spec deploys no release)", "localhost",
                      [_task("Say so", "ansible.builtin.debug", {"msg": "this spec has no release"})])]
    plays = [_lock_play(spec, f"{ALREADY_PLAY} Read the deploy lock (changes nothing)")]  # status: the default
    if _sql_migrations(spec):
        pending = _include("Find pending migrations", "migrate", "sql", vars={**_sql_migrate_vars(),
                                                                            "migrate_action": "status"})
        report = _task("Report how many are pending", "ansible.builtin.set_stats", {"data": {
            "rollwright_pending_migrations": "{{ migrate_sql.pending | default([]) | length }}"}})
        plays.append(_play(f"{ALREADY_PLAY} Find pending migrations (changes nothing)", f"{_db_hosts(spec)}[0]",
                           [pending, report]))
    stage = _stage_play(spec)
    stage.update(name=f"{ALREADY_PLAY} What the stage would change (check mode)", check_mode=True)
    return [*plays, stage, *status_plays(spec)]


def finish_plays(spec: Spec) -> list[dict[str, Any]]:
    """finish.yml, the end of every deploy and rollback the runner makes, in one run: one audit line on every
    host it concerned (-e rollwright_audit_line=...), then the deploy lock given back when the runner passes
    -e deploy_lock_action=release. Separate from site.yml, whose second run must change nothing."""
    task = _task("Append to the audit log", "ansible.builtin.lineinfile", {
        "path": f"{{{{ {V}audit_log }}}}", "line": "{{ rollwright_audit_line }}", "insertafter": "EOF",
        "create": True, "owner": "root", "group": "root", "mode": "0640"})
    play = _play("Audit log", _audit_hosts(spec), [task], tags=["audit"])
    play["strategy"] = "ansible.builtin.free"  # each host on its own: no order to keep
    return [play, _lock_play(spec, "Give the deploy lock back", when="deploy_lock_action is defined")]


def _audit_hosts(spec: Spec) -> str:
    """The hosts a deploy concerns, which get its audit line."""
    return ":".join(dict.fromkeys(_deploy_groups(spec))) if spec.artifact else "all"


AUDIT_TAIL_TASK = "Read the newest lines of the audit log"


def audit_plays(spec: Spec) -> list[dict[str, Any]]:
    """audit.yml: the newest lines of the audit log on every host of the target (-e rollwright_audit_lines=N,
    default 50), read with `tail` (a long log is never read whole); a host without the log answers nothing.
    Every host, not only the deploy's: other commands (`exec`) write there too. Changes nothing."""
    log = f"{{{{ {V}audit_log }}}}"
    tasks = [
        _task("Find the audit log", "ansible.builtin.stat", {"path": log, "get_checksum": False},
              register="rollwright_audit_file"),
        _task(AUDIT_TAIL_TASK, "ansible.builtin.command", {
            "argv": ["tail", "-n", "{{ rollwright_audit_lines | default(50) | int }}", "--", log]},
            changed_when=False, check_mode=False, when="rollwright_audit_file.stat.exists"),
    ]
    play = _play("Read the audit log", "all", tasks, tags=["audit"])
    play["strategy"] = "ansible.builtin.free"
    return [play]


def on_failure_plays(spec: Spec) -> list[dict[str, Any]]:
    """on_failure.yml: the spec's on_failure hooks, which the runner starts after a failed or interrupted
    deploy, once the fleet is restored (-e rollwright_failure={id, status, version, target})."""
    if not spec.hooks.on_failure:
        return [_play("No on_failure hooks in this spec", "localhost",
                      [_task("Say so", "ansible.builtin.debug", {"msg": "the spec has no hooks.on_failure"})])]
    play = _hook_play("Run on_failure hooks", spec.hooks.on_failure, "hooks")
    play["environment"] = {f"ROLLWRIGHT_{key.upper()}": f"{{{{ rollwright_failure.{key} | default('') }}}}"
                           for key in ("id", "status", "version", "target")}
    return [play]


def backups_plays(spec: Spec) -> list[dict[str, Any]]:
    """backups.yml: list the dumps, or restore one (-e rollwright_backups_action=restore rollwright_backup=FILE)."""
    if not (spec.database and spec.database.backup):
        return [_play("No backups in this spec", "localhost",
                      [_task("Say so", "ansible.builtin.debug", {"msg": "the spec has no database.backup"})])]
    role_vars = {"backup_postgresql_database": f"{{{{ {V}database.name }}}}",
                 "backup_postgresql_dir": f"{{{{ {V}database.backup.dir }}}}"}
    tasks = [
        _include("List the dumps", "backup_postgresql", "list", vars=role_vars,
                 when="rollwright_backups_action | default('list') == 'list'"),
        _include("Restore a dump", "backup_postgresql", "restore",
                 vars={**role_vars, "backup_postgresql_restore_file": "{{ rollwright_backup }}"},
                 when="rollwright_backups_action | default('list') == 'restore'"),
    ]
    return [_play("Database backups", f"{_db_hosts(spec)}[0]", tasks, tags=["backup"])]


def undrain_plays(spec: Spec) -> list[dict[str, Any]]:
    """undrain.yml: put hosts back in the load balancer (the runner's repair after an interrupted rollout).

    HAProxy's own health check still decides: a host that is not healthy is set ready but stays DOWN,
    and the task fails after the drain timeout, so a broken host never takes traffic. The commands of kind
    command run only for a host whose health URL answers as its `current` release, so a broken host never goes
    back in (a cloud load balancer's own check may be slow or lax).
    """
    tasks = _lb_tasks(spec, "ready") or [
        _task("Say there is no load balancer", "ansible.builtin.debug", {"msg": "the spec has no load balancer"})]
    if spec.rollout.balancer and spec.rollout.balancer.kind == "command":
        tasks = [_read_host_task(spec), _gate_task("Check this host is healthy before it goes back",
                                               "{{ healthcheck_report.current }}", False), *tasks]
    return [_play("Put app hosts back in the load balancer", spec.rollout.hosts, tasks, tags=["undrain"])]


# What roles/healthcheck's host_report returns, as status.yml publishes it (run/status.py reads it).
HOST_REPORT_KEYS = ["current", "previous", "root", "active", "process_dir", "health_status", "healthy", "health_body"]


def status_plays(spec: Spec) -> list[dict[str, Any]]:
    """status.yml: what every app host really runs, reported through set_stats: where `current` points, the
    folder the service's main process runs in (a killed deploy can leave `current` ahead of the process),
    what the health URL answers, and the host's state in every load balancer."""
    if not spec.artifact:
        return [_play("Nothing to report (the spec deploys no release)", "localhost",
                      [_task("Say so", "ansible.builtin.debug", {"msg": "this spec has no release"})])]
    lb = spec.rollout.haproxy  # the only kind whose server states can be read; others report none
    tasks = [_read_host_task(spec, "Report what this host serves (links, process, unit, health)",
                             health=bool(spec.service))]
    if lb:
        tasks.append(_lb_read_task())
    report = {key: f"{{{{ healthcheck_report.{key} }}}}" for key in HOST_REPORT_KEYS}
    if lb:
        report["lb"] = "{{ lb_haproxy_read.results | default([]) }}"
    if _blue_green(spec):
        report["live"] = "{{ rollwright_status_live }}"
    if not spec.service:
        report["service"] = False  # run/status.py: the host is its files, nothing runs
    if spec.processes:
        report.update(processes="{{ healthcheck_report.units }}", web=f"{{{{ {WEB_HOST} }}}}")
    tasks += [
        _task("Gather this host's report", "ansible.builtin.set_fact", {"rollwright_status_report": report}),
        _task("Report this host", "ansible.builtin.set_stats", {"aggregate": True, "data": {
            "rollwright_hosts": "{{ {inventory_hostname: rollwright_status_report} }}"}}),
    ]
    if _blue_green(spec):  # live: outside the idle colour (before the first switch, blue is the idle one)
        live = f"{{{{ inventory_hostname not in groups[{_lb_first(spec)}.rollwright_idle_colour] }}}}"
        tasks.insert(-2, _task("Tell whether this host is in the live colour", "ansible.builtin.set_fact",
                               {"rollwright_status_live": live}))
    report = _play("Report what every app host runs", _app_hosts(spec), tasks, tags=["status"])
    return [_colours_play(spec), report] if _blue_green(spec) else [report]


def _play(name: str, hosts: str, tasks: list[dict[str, Any]], tags: list[str] | None = None,
          roles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    play: dict[str, Any] = {"name": name, "hosts": hosts, "gather_facts": False}
    if tags:
        play["tags"] = tags
    if roles:
        play["roles"] = roles
    if tasks:
        play["tasks"] = tasks
    return play


def _task(name: str, module: str, args: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, module: args, **extra}


def _include(name: str, role: str, tasks_from: str | None = None, vars: dict[str, Any] | None = None,
             **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"name": role}
    if tasks_from:
        args["tasks_from"] = tasks_from
    task = {"name": name, "ansible.builtin.include_role": args}
    if vars:
        task["vars"] = vars
    task.update(extra)
    return task


def _import(name: str, role: str, tasks_from: str, vars: dict[str, Any]) -> dict[str, Any]:
    """A role's entry point imported statically (no include task at run time), without the argument check task."""
    return {"name": name, "ansible.builtin.import_role": {"name": role, "tasks_from": tasks_from,
                                                          "rolespec_validate": False}, "vars": vars}


def _refs(prefix: str, section: str, keys: list[str]) -> dict[str, str]:
    """Role arguments `<prefix><key>` that read `rollwright_<section>.<key>` from group_vars."""
    return {f"{prefix}{key}": f"{{{{ {V}{section}.{key} }}}}" for key in keys}


HEALTH_KEYS = ["url", "status", "timeout_s", "interval_s"]
READY_KEYS = ["running_s", "port", "command", "timeout_s"]
HOST_UNITS = f"{{{{ {V}host_processes | map(attribute='units') | flatten }}}}"  # this host's process units
WEB_HOST = f"{V}web | bool"  # group_vars: whether this host runs the web service (not only other processes)


def _health_args(prefix: str, section: str = "health") -> dict[str, str]:
    return _refs(prefix, section, HEALTH_KEYS)


def _shell(name: str, command: Any) -> dict[str, Any]:
    """A user command, run by /bin/sh exactly as written (never templated by Ansible: `!unsafe`), in the
    project's files/ (the files it uses, copied from the spec's folder)."""
    argv = ["/bin/sh", "-c", command if command == "{{ item.command }}" else Unsafe(command)]
    return _task(name, "ansible.builtin.command", {"argv": argv, "chdir": f"{{{{ playbook_dir }}}}/{FILES_DIR}"},
                 changed_when=True)


def _hook_play(name: str, commands: list[str], tag: str) -> dict[str, Any]:
    tasks = [_shell(f"Hook {index}", command) for index, command in enumerate(commands, 1)]
    return _play(name, "localhost", tasks, tags=[tag])


def _preflight_local(spec: Spec, hooks: bool = True) -> dict[str, Any]:
    role_vars = {"preflight_required_env": f"{{{{ {V}required_env }}}}",
                 "preflight_target_env": f"{{{{ {V}target_env.keys() | list }}}}"}
    if spec.artifact and spec.artifact.path:
        role_vars["preflight_artifact_path"] = f"{{{{ {V}artifact.path }}}}"
        role_vars["preflight_artifact_sha256"] = f"{{{{ {V}artifact.sha256 }}}}"
    tasks = [_include("Check env vars and the artifact", "preflight", vars=role_vars)]
    lb = spec.rollout.balancer
    if lb and lb.kind == "command" and lb.on:
        tasks.append(_task("Check the load balancer's command hosts are in the inventory", "ansible.builtin.assert", {
            "that": [f"groups[{lb.on!r}] | default([]) | length > 0"], "quiet": True,
            "fail_msg": f"load_balancer.on: the inventory has no hosts in group {lb.on}"}))
    if hooks:
        tasks += [_shell(f"{BEFORE_DEPLOY_HOOK} {i}", cmd) for i, cmd in enumerate(spec.hooks.before_deploy, 1)]
    else:
        tasks = _all_checks(tasks)
    return _play(f"{PREFLIGHT_PLAY} on the control node (changes nothing)", "localhost", tasks, tags=["preflight"])


def _all_checks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checks in a block whose failure is rescued: it is still reported (the runner lists it), but the
    play and the playbook go on to the other checks (a play whose hosts all failed ends the playbook)."""
    return [{"name": "Run every check, reporting each failure", "block": tasks, "rescue": [
        _task("Go on with the other checks", "ansible.builtin.debug",
              {"msg": "failed: {{ ansible_failed_result.msg | default('see above') }}"})]}]


def _preflight_hosts(spec: Spec, fatal: bool = True) -> dict[str, Any]:
    hosts = ":".join(dict.fromkeys(_deploy_groups(spec)))
    tasks = [_task("Check the host answers", "ansible.builtin.ping", {}),
             _include("Check there is room for the release", "preflight", "hosts",
                      vars={"preflight_release_root": f"{{{{ {V}release.root }}}}"},
                      when=f"inventory_hostname in groups[{spec.rollout.hosts!r}] | default([])")]
    if spec.rollout.haproxy:
        tasks.append(_include("Check HAProxy's admin socket is there", "preflight", "load_balancer",
                              vars={"preflight_haproxy_socket": f"{{{{ {V}lb.socket }}}}"},
                              when=f"inventory_hostname in groups[{spec.rollout.haproxy.hosts!r}] | default([])"))
    play = _play(f"{PREFLIGHT_PLAY} on the hosts (changes nothing)", hosts, tasks if fatal else _all_checks(tasks),
                 tags=["preflight"])
    if fatal:
        play["any_errors_fatal"] = True
    return play


def preflight_plays(spec: Spec) -> list[dict[str, Any]]:
    """preflight.yml: site.yml's checks without its hooks, every host to the end, so the runner can list
    every problem at once before it takes the lock."""
    plays = [_preflight_local(spec, hooks=False), *([_preflight_hosts(spec, fatal=False)] if spec.artifact else [])]
    return plays + ([_policy_play(spec)] if pending_rule(spec) else [])


def _deploy_groups(spec: Spec) -> list[str]:
    groups = list(spec.app_groups)
    lb = spec.rollout.balancer
    if lb and (lb.kind == "haproxy" or lb.on):
        groups.append(lb.hosts if lb.kind == "haproxy" else str(lb.on))
    if spec.database:
        groups.append(spec.database.hosts)
    return groups


def _group_play(index: int, group: CommandGroup, commands: list[GroupCommand]) -> dict[str, Any]:
    tasks = []
    for step in ("build", "test", "pre_deploy"):
        tasks += [_shell(f"Run {step} command {i} of group {group.name}", c.command)
                  for i, c in enumerate((c for c in commands if c.step == step), 1)]
    deploys = [c for c in commands if c.step == "deploy"]
    if deploys and deploys[0].file is not None:
        task = _shell(f"Run the deploy command per file of group {group.name}", "{{ item.command }}")
        task["loop"] = [{"file": Unsafe(c.file or ""), "command": Unsafe(c.command)} for c in deploys]
        task["loop_control"] = {"label": "{{ item.file }}"}
        tasks.append(task)
    elif deploys:
        tasks.append(_shell(f"Run the deploy command of group {group.name}", deploys[0].command))
    tasks += [_shell(f"Run post_deploy command {i} of group {group.name}", c.command)
              for i, c in enumerate((c for c in commands if c.step == "post_deploy"), 1)]
    if not tasks:
        tasks = [_task(f"Note that group {group.name} has nothing to run", "ansible.builtin.debug",
                       {"msg": "no commands and no matching files"})]
    for task in tasks:  # `deploy --continue-on-failure`: a failing command is reported and the deploy goes on
        task["register"] = "rollwright_command"
        task["failed_when"] = ("rollwright_command.rc != 0 and "
                               "not (rollwright_continue_on_failure | default(false) | bool)")
    play = _play(f"Group {index}: {group.name} (order {group.order})", Unsafe(group.hosts), tasks,
                 tags=["groups", f"group_{group.name}"])
    play["environment"] = f"{{{{ {V}target_env }}}}"  # `rollwright env set` values of the target
    return play


def _stage_play(spec: Spec) -> dict[str, Any]:
    # static imports without their argument check (the spec was validated): 4 module calls per host, and
    # on a staged host only 2 (the upload and the unpack are skipped). The service first: it creates the
    # user that owns the shared folders the stage makes (without a service, the release's owner owns them).
    tasks = [*_install_tasks(spec), _unpack_task(spec)]
    if spec.release and spec.release.build:  # every host at once, before migrations and any switch
        tasks.append(_release_run_task(BUILD_TASK, "release.build", "build", marker=BUILD_MARKER))
    # control-node hooks, like the others: once, after every host staged (not on each host, where files/ is not)
    tasks += [{**_shell(f"Run after_stage hook {i}", cmd), "delegate_to": "localhost", "run_once": True}
              for i, cmd in enumerate(spec.hooks.after_stage, 1)]
    title = "on the idle colour's hosts" if _blue_green(spec) else "on every app host at once"
    play = _play(f"Stage the release {title} (no traffic impact)", _updated_hosts(spec), tasks, tags=["stage"])
    play["any_errors_fatal"] = True
    return play


def _install_tasks(spec: Spec, when: str = "") -> list[dict[str, Any]]:
    """The service's and the processes' accounts, units and env files, installed (no restart); with `when`, only
    where it holds."""
    service_vars = {
        **_refs("service_", "service",
               ["name", "exec", "user", "group", "env", "working_dir", "restart", "stop_timeout_s", "reload_signal"]),
        "service_root": f"{{{{ {V}release.root }}}}",
        "service_env": f"{{{{ {V}service_env }}}}",
        "service_version": f"{{{{ {V}version }}}}",
    }
    tasks = [
        *(_web_only(spec, [_import("Install the account, unit and env file (no restart yet)", "service", "install",
                                   service_vars)]) if spec.service else []),
        *([_import("Install the processes' units and env files (no restart yet)", "service", "processes", {
            "service_processes": f"{{{{ {V}host_processes }}}}", "service_root": f"{{{{ {V}release.root }}}}",
            "service_processes_env": f"{{{{ {V}target_env }}}}", "service_version": f"{{{{ {V}version }}}}"})]
          if spec.processes else []),
    ]
    return [{**task, "when": f"({task['when']}) and ({when})" if "when" in task else when} for task in tasks] \
        if when else tasks


def _unpack_task(spec: Spec) -> dict[str, Any]:
    """The release uploaded (sha256 checked before unpacking), unpacked and its shared paths linked."""
    return _import("Stage the release (upload, verify sha256, unpack, link shared)", "release", "main", {
        "release_root": f"{{{{ {V}release.root }}}}",
        "release_version": f"{{{{ {V}version }}}}",
        "release_artifact_sha256": f"{{{{ {V}artifact.sha256 }}}}",
        "release_artifact_path": f"{{{{ {V}artifact.path }}}}",
        "release_artifact_url": f"{{{{ {V}artifact.url }}}}",
        "release_shared": f"{{{{ {V}release.shared }}}}",
        "release_owner": f"{{{{ {V}release.owner }}}}", "release_group": f"{{{{ {V}release.owner }}}}",
        "release_shared_owner": f"{{{{ {V}runner.user }}}}", "release_shared_group": f"{{{{ {V}runner.group }}}}"})


def _backup_play(spec: Spec, backup: bool) -> dict[str, Any]:
    """Before any change: validate the tracked migrations' history (nothing happens if it is refused),
    then a verified dump; with tracked SQL migrations, only when some are pending."""
    role_vars = {
        "backup_postgresql_database": f"{{{{ {V}database.name }}}}",
        **_refs("backup_postgresql_", "database.backup", ["dir", "keep", "verify"]),
        "backup_postgresql_label": f"{{{{ {V}version | default('manual') }}}}",
    }
    tasks = []
    if _sql_migrations(spec):
        tasks.append(_include("Validate the migration history and find pending migrations", "migrate", "status",
                              vars=_sql_migrate_vars()))
        tasks += _policy_check(spec)
    if backup:
        dump = _include("Dump and verify the database", "backup_postgresql", vars=role_vars)
        if _sql_migrations(spec):
            dump["when"] = "migrate_sql.pending | length > 0"
        tasks.append(dump)
    title = "Back up the database (before any change)" if backup else "Check the migrations (before any change)"
    return _play(title, f"{_db_hosts(spec)}[0]", tasks, tags=["backup"])


def _policy_check(spec: Spec) -> list[dict[str, Any]]:
    """The strategy's rule on the pending migrations (registered in migrate_sql), as a refusal."""
    rule = pending_rule(spec)
    if rule is None:
        return []
    # no "; " in the message: preflight's problem list splits on it
    return [_task(POLICY_TASK, "ansible.builtin.fail", {"msg": f"policy: {rule.reason}. Refused before any change."},
                  when=rule.when)]


def _policy_play(spec: Spec) -> dict[str, Any]:
    """preflight.yml's copy of the rule, so the runner refuses before it takes the lock."""
    status = _include("Find pending migrations", "migrate", "sql", vars={**_sql_migrate_vars(),
                                                                       "migrate_action": "status"})
    return _play(f"{PREFLIGHT_PLAY}: the strategy policy on pending migrations (changes nothing)",
                 f"{_db_hosts(spec)}[0]", _all_checks([status, *_policy_check(spec)]), tags=["preflight"])


def _sql_migrations(spec: Spec) -> bool:
    return bool(spec.database and spec.database.migrations and spec.database.migrations.tool == "sql")


def _sql_migrate_vars() -> dict[str, Any]:
    return {
        "migrate_tool": "sql",
        "migrate_database": f"{{{{ {V}database.name }}}}",
        "migrate_table": f"{{{{ {V}migrations.table }}}}",
        "migrate_files": f"{{{{ {V}migrations.files }}}}",
        "migrate_allow_out_of_order": f"{{{{ {V}migrations.allow_out_of_order }}}}",
        # the spec's acknowledgements plus `deploy --acknowledge-destructive FILE`
        "migrate_acknowledge_destructive": f"{{{{ {V}migrations.acknowledge_destructive + "
                                           "(rollwright_acknowledge_destructive | default([])) }}",
        **_migrate_limits(),
    }


def _migrate_limits() -> dict[str, str]:
    """The lock and statement timeouts every migration runs under, and how often a lock is tried again."""
    return {f"migrate_{key}": f"{{{{ {V}migrations.{key} }}}}"
            for key in ("lock_timeout_s", "lock_retries", "statement_timeout_s")}


def _db_hosts(spec: Spec) -> str:
    return spec.database.hosts if spec.database else "db"


def _tool_migrate_vars(spec: Spec, release: str) -> tuple[str, dict[str, Any]]:
    """Where a non-sql tool runs and with what: the app's first host, in `release` (its code), as the
    service user with the service's env (DATABASE_URL); without an artifact, on the database host."""
    assert spec.database is not None and spec.database.migrations is not None
    role_vars: dict[str, Any] = {
        "migrate_tool": spec.database.migrations.tool,
        "migrate_commands": {action: Unsafe(command) for action, command in tool_commands(
            spec.database.migrations).items()},
        **_migrate_limits(),
    }
    if not spec.artifact:
        return f"{_db_hosts(spec)}[0]", role_vars
    role_vars.update({
        "migrate_chdir": f"{{{{ {V}release.root }}}}/{release}",
        "migrate_user": f"{{{{ {V}{'service' if spec.service else 'runner'}.user }}}}",
        # without a service there is no service env: the target's `rollwright env` values only
        "migrate_environment": f"{{{{ {V}{'service_env' if spec.service else 'target_env'} }}}}",
    })
    return f"{IDLE_GROUP if _blue_green(spec) else spec.rollout.hosts}[0]", role_vars


def _migrate_play(spec: Spec) -> dict[str, Any]:
    if _sql_migrations(spec):
        hosts, role_vars = f"{_db_hosts(spec)}[0]", _sql_migrate_vars()
    else:  # tools that live in the app's code run from its new release
        hosts, role_vars = _tool_migrate_vars(spec, f"releases/{{{{ {V}version }}}}")
    task = _include("Apply migrations once", "migrate", vars=role_vars)
    return _play("Migrate the database (once, before any code switch)", hosts, [task], tags=["migrate"])


# kind command: each command's task, in run order around a host's update
LB_COMMAND_TASKS = {"drain": PHASE_TASK["drain"], "wait": "Wait until the load balancer drained this host",
                    "undrain": PHASE_TASK["undrain"], "ready": "Wait until the load balancer serves this host again"}


def _lb_tasks(spec: Spec, state: str, version: str = "") -> list[dict[str, Any]]:
    """The host out of (`maint`) or back in (`ready`) service: in HAProxy the embedded module called directly
    (one task, no include), found through ansible.cfg's library path; else the spec's commands; with kind none
    (or no load balancer) nothing. `version`: what the commands see as ROLLWRIGHT_VERSION."""
    lb = spec.rollout.balancer
    if lb is None:
        return []
    if lb.kind == "command":
        return _lb_command_tasks(spec, ("drain", "wait") if state == "maint" else ("undrain", "ready"), version)
    title = {"maint": PHASE_TASK["drain"], "ready": PHASE_TASK["undrain"]}
    return [_task(title[state], "haproxy_server", {
        "socket": f"{{{{ {V}lb.socket }}}}", "backend": f"{{{{ {V}lb.backend }}}}",
        "server": "{{ inventory_hostname }}", "state": state, "wait_timeout": f"{{{{ {V}lb.drain_timeout_s }}}}",
    }, delegate_to="{{ item }}", loop=f"{{{{ groups[{V}lb.hosts] | default([]) }}}}")]


def _lb_command_tasks(spec: Spec, names: tuple[str, ...], version: str) -> list[dict[str, Any]]:
    """kind command: each of `names` the spec sets, run as `/bin/sh -c CMD` on the control node (in files/) or on
    each host of `on`; the host reaches it through the environment, never through the command's text."""
    lb = spec.rollout.balancer
    assert lb is not None
    port = spec.health.port if spec.health and spec.health.port else ""  # a release of files serves no port
    environment = {
        "ROLLWRIGHT_HOST": "{{ inventory_hostname }}",
        "ROLLWRIGHT_ADDRESS": "{{ hostvars[inventory_hostname].ansible_host | default(inventory_hostname) }}",
        "ROLLWRIGHT_PORT": str(port), "ROLLWRIGHT_APP": spec.app, "ROLLWRIGHT_VERSION": version,
    }
    tasks = []
    for name in names:
        command = lb.commands.get(name)
        if command is None:
            continue
        if lb.on is None:
            task = _shell(LB_COMMAND_TASKS[name], command)  # as the operator (their cloud credentials), not root
            task.update(delegate_to="localhost", become=False)
        else:  # on the hosts of `on`, one after the other (no files/ there: the command runs in the user's home)
            task = _task(LB_COMMAND_TASKS[name], "ansible.builtin.command", {
                "argv": ["/bin/sh", "-c", Unsafe(command)]}, changed_when=True, delegate_to="{{ item }}",
                loop=f"{{{{ groups[{lb.on!r}] | default([]) }}}}")
        task["environment"] = {**environment, "ROLLWRIGHT_ACTION": name}
        task["timeout"] = lb.timeout_s or LB_COMMAND_TIMEOUT_S
        tasks.append(task)
    return tasks


def _gate_task(name: str, version: str, restart: bool | str, **more: str) -> dict[str, Any]:
    """The health gate of one host (the healthcheck role's module called directly), restarting the service
    first when `restart` says so: the rollout's, rollback's and `app start|restart`'s one task for both."""
    return _task(name, "healthcheck", {
        **{key: f"{{{{ {V}health.{key} }}}}" for key in HEALTH_KEYS}, "version": version,
        "unit": f"{{{{ {V}service.name }}}}", "restart": restart, **more})


def _release_run_task(name: str, commands: str, phase: str, marker: str = "") -> dict[str, Any]:
    """The spec's commands in the new release on this host, as the app's user with the service's env file (read
    on the host, as the unit and `rollwright exec` read it); with `marker`, once per release."""
    return _task(name, "release_run", {
        "root": f"{{{{ {V}release.root }}}}", "version": f"{{{{ {V}version }}}}",
        "commands": f"{{{{ {V}{commands} }}}}",
        **_refs("", "runner", ["user", "group", "env_file"]), "marker": marker,
        "env": {"ROLLWRIGHT_VERSION": f"{{{{ {V}version }}}}", "ROLLWRIGHT_PHASE": phase,
                "ROLLWRIGHT_HOST": "{{ inventory_hostname }}"}})


def _read_host_task(spec: Spec, name: str = "Read what this host runs (current, the unit, its process)",
                    health: bool = False) -> dict[str, Any]:
    """One look at what the host runs (registers healthcheck_report: current, the unit's state and its process,
    each process's units, and with `health` one answer of its health URL). An app without a service has no
    unit: current is all there is to read."""
    return _import(name, "healthcheck", "report", {
        "healthcheck_root": f"{{{{ {V}release.root }}}}",
        "healthcheck_unit": f"{{{{ {V}service.name }}}}" if spec.service else "",
        **(_refs("healthcheck_", "health", ["url", "status"]) if health else {}),
        **({"healthcheck_units": HOST_UNITS} if spec.processes else {})})


def _lb_read_task() -> dict[str, Any]:
    """The host's server state in every load balancer, read (registers lb_haproxy_read)."""
    return _import("Read the server state in the load balancer", "lb_haproxy", "read", {
        "lb_haproxy_hosts": f"{{{{ groups[{V}lb.hosts] | default([]) }}}}",
        **_refs("lb_haproxy_", "lb", ["backend", "socket"])})


def _rollout_play(spec: Spec) -> dict[str, Any]:
    """Each batch: one look per host, then for a host that needs it drain, switch, restart with its health
    gate, undrain; each an embedded module called directly (no include or argument check in the serial
    part: every task there is paid once per batch)."""
    # blue/green: the idle colour is taken out (a no-op but on the first deploy) and stays out until the switch
    version = f"{{{{ {V}version }}}}"
    back_in = [] if _blue_green(spec) else _web_only(spec, _lb_tasks(spec, "ready", version))
    hooks = spec.hooks
    update = [
        *_web_only(spec, _lb_tasks(spec, "maint", version)),
        *([_release_run_task(BEFORE_SWITCH_TASK, "host_hooks.before_switch", "before_switch")]
          if hooks.before_switch else []),
        _task(PHASE_TASK["switch"], "release_switch", {
            "root": f"{{{{ {V}release.root }}}}", "version": version}, register="rollwright_switch"),
        *_process_tasks(spec, "before_web", PROCESSES_BEFORE_TASK),
        # --no-health-check skips the gate, not the restart
        *(_web_only(spec, [_gate_task(PHASE_TASK["restart"], version, True,
                                      wait="{{ 'health' not in ansible_skip_tags }}", **_reload(spec))])
          if spec.service else []),
        *_process_tasks(spec, "after_web", PROCESSES_AFTER_TASK),
        *([_release_run_task(AFTER_SWITCH_TASK, "host_hooks.after_switch", "after_switch")]
          if hooks.after_switch else []),
        *back_in,
    ]
    moved = ("(rollwright_switch.switched_from | default('')) != "  # only a host this run switched goes back
             "(rollwright_switch.current | default(''))")
    if spec.service:
        web = f"{V}service.name if {WEB_HOST} else ''" if len(spec.app_groups) > 1 else f"{V}service.name"
        back = [_include(PHASE_TASK["rollback"], "rollback", vars={
            "rollback_root": f"{{{{ {V}release.root }}}}",
            "rollback_service_name": f"{{{{ {web} }}}}",
            **_health_args("rollback_health_"),
        }, when=moved), *([_process_task(PROCESSES_BACK_TASK, None, when=moved)] if spec.processes else [])]
    else:  # nothing to restart: current goes back
        back = [_task(PHASE_TASK["rollback"], "release_switch", {"root": f"{{{{ {V}release.root }}}}",
                                                                 "action": "pop"}, when=moved)]
    rescue = [
        *back,
        *back_in,
        _task(RESCUE_FAIL_TASK, "ansible.builtin.fail", {
            "msg": f"release {{{{ {V}version }}}} failed on {{{{ inventory_hostname }}}}: "
                   "{{ ansible_failed_result.msg | default('unknown error') }}"}),
    ]
    tasks = [
        _read_host_task(spec),
        # a host is updated when current is another release, its process runs another one (a killed deploy
        # moved current ahead of it), its unit or env file changed, or the service is not running (stopped
        # by hand, crashed): it then goes through drain, restart and health gate
        _decide_task(spec),
        {"name": "Update this host (drain, switch, restart and health gate, undrain)",
         "when": "rollwright_host_stale | bool", "block": update, "rescue": rescue},
    ]
    if spec.rollout.strategy == "canary":
        tasks += _canary_tasks(spec)
    play = _play(f"{ROLLOUT_PLAY} {spec.rollout.steps}", _updated_hosts(spec), tasks, tags=["rollout"])
    play["serial"] = spec.rollout.steps
    play["max_fail_percentage"] = spec.rollout.max_fail_percentage
    return play


def _reload(spec: Spec) -> dict[str, str]:
    """With service.reload_signal, a running service whose unit and env file did not change is reloaded (its
    ExecReload) instead of restarted; the gate then waits for the new version as after a restart."""
    if not (spec.service and spec.service.reload_signal):
        return {}
    return {"reload": "{{ healthcheck_report.active == 'active' and not (service_restart_needed | default(false)) }}"}


def _decide_task(spec: Spec) -> dict[str, Any]:
    """Whether the host goes through the update: current is another release, the service's process runs
    another one (a killed deploy moved current ahead of it), its unit or env file changed, or it is not running
    (stopped by hand, crashed); with processes, the same of each process's units (not running from the new
    release, or their unit or env file changed)."""
    web = "rollwright_runs_another | bool or rollwright_unit_stale | bool"
    facts = {"rollwright_releases": f"{{{{ {V}release.root }}}}/releases/",
             "rollwright_new_release": f"{{{{ {V}release.root }}}}/releases/{{{{ {V}version }}}}/",
             "rollwright_process": "{{ healthcheck_report.process_dir }}/",
             "rollwright_runs_another": ("{{ rollwright_process.startswith(rollwright_releases) and "
                                         "not rollwright_process.startswith(rollwright_new_release) }}"),
             "rollwright_unit_stale": ("{{ (service_restart_needed | default(false)) or "
                                       "healthcheck_report.active != 'active' }}" if spec.service else False)}
    stale = f"healthcheck_report.current != {V}version or {web}"
    if spec.processes:
        facts.update({  # a process unit or env file changed, or one runs from another folder (or not at all)
            "rollwright_processes_changed": ("{{ service_processes_installed.results | default([]) "
                                             "| map(attribute='restart_needed', default=false) | select "
                                             "| list | length > 0 }}"),
            "rollwright_processes_behind": ("{{ healthcheck_report.units.values() | map(attribute='process_dir') "
                                            "| map('regex_replace', '$', '/') "
                                            "| reject('match', rollwright_new_release | regex_escape) "
                                            "| list | length > 0 }}"),
            "rollwright_web_stale": f"{{{{ {WEB_HOST} and ({web}) }}}}"})
        stale = (f"healthcheck_report.current != {V}version or rollwright_web_stale | bool or "
                 "rollwright_processes_changed | bool or rollwright_processes_behind | bool")
    return _task(DECIDE_TASK, "ansible.builtin.set_fact", {"rollwright_host_stale": f"{{{{ {stale} }}}}"},
                 vars=facts)


# The version the baseline runs, for a Prometheus guard: what `current` named on the play's hosts before this
# deploy switched them (each host's look at the start of its batch), other than the new version; '' when none
# (a first deploy: no baseline to compare with).
BASELINE_VERSION = (f"{{{{ ansible_play_hosts_all | map('extract', hostvars) "
                    f"| map(attribute='healthcheck_report.current', default='') | select "
                    f"| reject('equalto', {V}version) | first | default('') }}}}")


def _canary_tasks(spec: Spec) -> list[dict[str, Any]]:
    """After each step: the SLO guard, then every host of the step stops on a failed verdict, so the runner rolls
    every canary host back. The canary is every host the play has reached (serial batches follow the play's host
    order), the baseline the rest. With a Prometheus source, each side is its version's series (the module asks
    from the control node)."""
    reached = "ansible_play_hosts_all[: ansible_play_hosts_all.index(ansible_play_batch[-1]) + 1]"
    return _verdict_tasks(CANARY_TASK, None, {
        "canary_guard_canary": f"{{{{ {reached} }}}}",
        "canary_guard_baseline": f"{{{{ ansible_play_hosts_all | reject('in', {reached}) | list }}}}",
        **_refs("canary_guard_", "canary", CANARY_LIMITS), **_prometheus_vars(spec)}, "canary_guard_result",
        CANARY_FAIL_TASK, "the canary failed its SLO guard", tags=["canary"])


def _prometheus_vars(spec: Spec) -> dict[str, Any]:
    """The guard's Prometheus source, when the spec names one: its settings and the two versions compared."""
    if not spec.rollout.source.prometheus:
        return {}
    return {"canary_guard_source": "prometheus", **_refs("canary_guard_", "metrics", ["prometheus"]),
            "canary_guard_canary_version": f"{{{{ {V}version }}}}", "canary_guard_baseline_version": BASELINE_VERSION}


def _verdict_tasks(title: str, entry: str | None, role_vars: dict[str, Any], result: str, fail_title: str,
                   failed: str, when: str = "", tags: list[str] | None = None) -> list[dict[str, Any]]:
    """A canary_guard verdict on the batch's first host (one analysis, delegated to the load balancer, not one per
    host), then every host of the batch stops on a failed one: not `run_once`, whose failure ansible-core spreads
    to every host of the play. `when`: both happen only where it holds."""
    judged = f"hostvars[{FIRST_HOST}].{result}"
    also = f" and ({when})" if when else ""
    guard = _include(title, "canary_guard", entry, vars={**_guard_lb_vars(), **role_vars},
                     when=f"inventory_hostname == {FIRST_HOST}{also}", **({"tags": tags} if tags else {}))
    verdict = _task(fail_title, "ansible.builtin.fail", {
        "msg": f"{failed}: {{{{ ({judged}.reasons | default([])) | join('; ') or "
               "'the guard could not judge it (see its error)' }}"},
        when=f"not ({judged}.passed | default(false)){also}", **({"tags": tags} if tags else {}))
    return [guard, verdict]


def _guard_lb_vars(host: str = f"{{{{ groups[{V}lb.hosts][0] }}}}") -> dict[str, str]:
    """canary_guard's load balancer: its host, backend and admin socket."""
    return {"canary_guard_lb_host": host, **_refs("canary_guard_", "lb", ["backend", "socket"])}


def _hold_snapshot_play(spec: Spec, name: str) -> dict[str, Any]:
    """One point of the baseline window (the deploy's start, or right before its first switch): the load
    balancer's counters, kept on its host for the hold. One task on one host (no wall time to speak of)."""
    task = _include(HOLD_SNAPSHOT_TASK, "canary_guard", "hold", vars={
        "canary_guard_hold_action": "snapshot", **_guard_lb_vars("{{ inventory_hostname }}")})
    assert spec.rollout.haproxy is not None
    return _play(name, f"{spec.rollout.haproxy.hosts}[0]", [task], tags=HOLD_TAGS)


def _hold_play(spec: Spec) -> dict[str, Any]:
    """After the rollout (blue/green: after the switch): the release's traffic over the hold against the window
    before the deploy; every updated host fails on a breach, so the runner rolls the whole fleet back (blue/green:
    switches back). Only when this run updated a host and moved the traffic to it (not `--no-switch`). With host
    triggers, the counters are read as the hold starts, every host samples its CPU and memory for the whole hold
    (all at once), and the verdict then waits no more."""
    hold = spec.rollout.hold
    assert hold is not None
    due = ("(ansible_play_hosts_all | map('extract', hostvars) | map(attribute='rollwright_host_stale', "
           "default=false) | map('bool') | select | list | length > 0) and "
           "not (rollwright_no_switch | default(false) | bool)")
    duration = {"canary_guard_hold_duration_s": f"{{{{ {V}hold.duration_s }}}}"}
    sampled = [
        _include(HOLD_STARTED_TASK, "canary_guard", "hold", vars={
            "canary_guard_hold_action": "start", **_guard_lb_vars()},
            when=f"inventory_hostname == {FIRST_HOST} and ({due})"),
        _include(HOLD_SAMPLE_TASK, "canary_guard", "hold", vars={
            "canary_guard_hold_action": "sample", **_guard_lb_vars(), **duration}, when=due),
    ] if hold.host_triggers else []
    tasks = sampled + _verdict_tasks(HOLD_TASK, "hold", {
        "canary_guard_hold_servers": "{{ ansible_play_hosts_all }}", **duration,
        **_refs("canary_guard_", "hold", HOLD_LIMITS), **_prometheus_vars(spec)}, "canary_guard_hold_result",
        HOLD_FAIL_TASK,
        "the release failed its SLO hold", when=due)
    return _play(HOLD_PLAY, _updated_hosts(spec), tasks, tags=HOLD_TAGS)


def _smoke_play(spec: Spec) -> dict[str, Any]:
    """The spec's smoke checks from the control node, each retried; skipped in check mode (nothing changed)."""
    tasks = []
    for index, check in enumerate(spec.smoke, 1):
        name = Unsafe(f"Smoke check {index}: {check.label}")  # the spec's text: shown, never templated
        result = f"rollwright_smoke_{index}"
        retry = {"register": result, "retries": check.attempts - 1, "delay": check.delay_s,
                 "when": "not ansible_check_mode"}
        if check.url:
            expect = check.contains or ""
            answered = (f"{result}.status | default(-1) == {check.status} and "
                        f"rollwright_smoke_expect in ({result}.content | default(''))")
            tasks.append(_task(name, "ansible.builtin.uri", {
                "url": Unsafe(check.url), "status_code": check.status, "return_content": bool(expect)},
                **retry, until=answered, failed_when=False, vars={"rollwright_smoke_expect": Unsafe(expect)}))
            tasks.append(_task(f"Smoke check {index} passed", "ansible.builtin.assert", {
                "that": [answered], "quiet": True,
                "fail_msg": f"smoke check failed after {check.attempts} attempt(s): answered "
                            f"{{{{ {result}.status | default('nothing') }}}} {{{{ {result}.msg | default('') }}}}"
                            + (" without the expected text" if expect else "")},
                when="not ansible_check_mode", vars={"rollwright_smoke_expect": Unsafe(expect)}))
        else:
            task = _shell(name, check.command or "")
            task.update(retry, until=f"{result}.rc == 0", changed_when=False)
            tasks.append(task)
    return _play(SMOKE_PLAY, "localhost", tasks, tags=["smoke"])


def _site_health_play(spec: Spec) -> dict[str, Any]:
    task = _include("Check the site health URL", "healthcheck", vars=_health_args("healthcheck_", "site_health"))
    return _play("Check the site is healthy", "localhost", [task], tags=["health"])
