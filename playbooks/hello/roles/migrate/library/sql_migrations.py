#!/usr/bin/python
"""Tracked SQL migrations for PostgreSQL through psql: validated, locked, one transaction each."""

from __future__ import annotations

DOCUMENTATION = r"""
module: sql_migrations
short_description: Apply versioned and repeatable SQL migrations with a checksummed history table
description:
  - Versioned files C(V<version>__<description>.sql) apply once, in natural version order; repeatable
    files C(R__<name>.sql) re-apply when their checksum changes, after the versioned ones.
  - "Before anything runs the history is validated: an applied migration whose file changed, an applied
    one missing from O(migrations), a new version older than the newest applied one (unless
    O(allow_out_of_order)), or a destructive statement (DROP TABLE/COLUMN, TRUNCATE, RENAME,
    ALTER ... TYPE) not listed in O(acknowledge_destructive) make the module fail with nothing applied."
  - All migrations run in one psql session holding a PostgreSQL advisory lock (two deploys cannot
    migrate at once); each runs in its own transaction together with its history row, and is skipped
    if another run applied it meanwhile. A failing migration is rolled back and recorded with its error.
  - "Every migration statement runs under O(table_lock_timeout_s) (PostgreSQL lock_timeout) and
    O(statement_timeout_s): a statement that waits on a busy table gives up instead of stalling the readers
    queued behind it; the migration is rolled back and tried again up to O(lock_retries) more times, then the
    module fails saying so."
  - A file whose first line is C(-- rollwright:no-transaction) runs outside a transaction (what CREATE INDEX
    CONCURRENTLY needs); its history row is written once it succeeded. If it fails half-way, the statements
    before the failing one stay applied.
  - Pending migrations with statements known to lock a busy table (CREATE INDEX without CONCURRENTLY,
    SET NOT NULL, a column type change, ADD COLUMN with a volatile default, ...) are returned in RV(locking).
  - Runs psql as the connecting user (use become_user postgres), so no password is involved.
options:
  database: {description: Database name., type: str, required: true}
  table: {description: History table., type: str, default: rollwright_schema_history}
  migrations: {description: "Local migration files: list of {name, sql}.", type: list, elements: dict, default: []}
  action: {description: "apply, or status (validate and report, change nothing)., mark_applied (record
           O(script) as applied without running it), baseline (record O(version) as the starting point).",
           type: str, choices: [apply, status, mark_applied, baseline], default: apply}
  script: {description: File name for O(action=mark_applied)., type: str}
  version: {description: Version for O(action=baseline)., type: str}
  allow_out_of_order: {description: Apply new versions older than the newest applied one., type: bool, default: false}
  acknowledge_destructive: {description: File names whose destructive statements are accepted., type: list,
                            elements: str, default: []}
  applied_by: {description: Recorded in the history (who deploys)., type: str, default: rollwright}
  lock_timeout_s: {description: How long to wait for another run's lock before failing., type: int, default: 120}
  table_lock_timeout_s: {description: PostgreSQL lock_timeout of every migration statement (seconds)., type: int,
                         default: 5}
  lock_retries: {description: How many more times a migration that gave up on a lock is tried., type: int, default: 3}
  statement_timeout_s: {description: PostgreSQL statement_timeout of every migration statement (seconds)., type: int,
                        default: 600}
author: rollwright
"""

EXAMPLES = r"""
- name: Apply migrations
  sql_migrations:
    database: app
    migrations:
      - {name: V1__init.sql, sql: "CREATE TABLE t (id int);"}
  become: true
  become_user: postgres
"""

RETURN = r"""
applied: {description: "Migrations applied by this run, with execution_time_ms.", returned: always, type: list}
pending: {description: "Migrations that are (or were, before this run) pending.", returned: always, type: list}
history: {description: Rows of the history table (newest last)., returned: always, type: list}
destructive: {description: Pending migrations with destructive statements., returned: always, type: list}
locking: {description: Pending migrations with statements known to lock a busy table., returned: always, type: list}
failed: {description: The migration that failed and its error., returned: on failure, type: dict}
"""

import hashlib
import json
import re
import secrets
import time

from ansible.module_utils.basic import AnsibleModule

VERSIONED = re.compile(r"^V(\d+(?:[._]\d+)*)__([A-Za-z0-9_-]+)\.sql$")
REPEATABLE = re.compile(r"^R__([A-Za-z0-9_-]+)\.sql$")
TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DESTRUCTIVE = [
    ("DROP TABLE", re.compile(r"\bDROP\s+TABLE\b", re.I)),
    ("DROP COLUMN", re.compile(r"\bDROP\s+COLUMN\b", re.I)),
    ("TRUNCATE", re.compile(r"\bTRUNCATE\b", re.I)),
    ("RENAME", re.compile(r"\bRENAME\b", re.I)),
    ("ALTER ... TYPE", re.compile(r"\bALTER\s+TABLE\b[^;]*\bTYPE\b", re.I | re.S)),
]
# Statements that take a lock readers or writers of a busy table wait on, for longer than a moment.
LOCKING = [
    ("CREATE INDEX without CONCURRENTLY", re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b(?!\s+CONCURRENTLY\b)", re.I)),
    ("REINDEX without CONCURRENTLY", re.compile(r"\bREINDEX\b(?![^;]*\bCONCURRENTLY\b)", re.I)),
    ("SET NOT NULL", re.compile(r"\bALTER\s+TABLE\b[^;]*\bSET\s+NOT\s+NULL\b", re.I)),
    ("a column type change (ALTER ... TYPE)", re.compile(r"\bALTER\s+TABLE\b[^;]*\bTYPE\b", re.I)),
    ("ADD COLUMN with a volatile default", re.compile(
        r"\bALTER\s+TABLE\b[^;]*\bADD\b[^;]*\b(?:DEFAULT\s+[^;]*\b(?:random|clock_timestamp|timeofday|gen_random_uuid|"
        r"uuid_generate_v\d\w*|nextval)\s*\(|(?:big|small)?serial\b|GENERATED\s+ALWAYS\s+AS\s*\()", re.I)),
    ("ADD FOREIGN KEY or CHECK without NOT VALID", re.compile(
        r"\bALTER\s+TABLE\b[^;]*\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:FOREIGN\s+KEY|CHECK)\b(?![^;]*\bNOT\s+VALID\b)", re.I)),
    ("ADD PRIMARY KEY or UNIQUE (builds an index)", re.compile(
        r"\bALTER\s+TABLE\b[^;]*\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:PRIMARY\s+KEY|UNIQUE)\b(?![^;]*\bUSING\s+INDEX\b)",
        re.I)),
    ("VACUUM FULL", re.compile(r"\bVACUUM\s+(?:\(\s*)?FULL\b", re.I)),
    ("CLUSTER", re.compile(r"^\s*CLUSTER\b", re.I | re.M)),
    ("LOCK TABLE", re.compile(r"\bLOCK\s+(?:TABLE\s+)?\w", re.I)),
]
COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
NO_TRANSACTION = "-- rollwright:no-transaction"  # a file's first line: run it outside a transaction
LOCK_TIMEOUT = "lock timeout"  # in PostgreSQL's "canceling statement due to lock timeout"


class Migration:
    """One local file: versioned (with a version) or repeatable (version None)."""

    def __init__(self, name, sql):
        self.name, self.sql = name, sql
        self.checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        versioned, repeatable = VERSIONED.match(name), REPEATABLE.match(name)
        self.version = versioned.group(1).replace("_", ".") if versioned else None
        self.description = (versioned or repeatable).group(2 if versioned else 1).replace("_", " ")
        self.key = tuple(int(part) for part in self.version.split(".")) if self.version else None

    def destructive(self):
        text = COMMENTS.sub(" ", self.sql)
        return [label for label, pattern in DESTRUCTIVE if pattern.search(text)]

    def locking(self):
        """What in this file is known to lock a busy table, judged statement by statement."""
        statements = COMMENTS.sub(" ", self.sql).split(";")
        return [label for label, pattern in LOCKING if any(pattern.search(statement) for statement in statements)]

    @property
    def transactional(self):
        """False when the file's first line asks to run outside a transaction (CREATE INDEX CONCURRENTLY)."""
        first = self.sql.lstrip().split("\n", 1)[0].strip().lower()
        return first != NO_TRANSACTION

    def summary(self):
        return {"script": self.name, "version": self.version, "description": self.description,
                "checksum": self.checksum}


def literal(text):
    """A SQL string literal (dollar-quoted with a tag the text cannot contain)."""
    tag = "rw" + secrets.token_hex(6)
    return f"${tag}${text}${tag}$" if text is not None else "NULL"


class Database:
    def __init__(self, module, name, table):
        self.module, self.name, self.table = module, name, table

    def psql(self, script, check=True):
        command = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.name, "-f", "-"]
        rc, out, err = self.module.run_command(command, data=script, binary_data=True)
        if check and rc != 0:
            self.module.fail_json(msg=f"psql failed on database {self.name}: {err.strip() or out.strip()}")
        return rc, out, err

    def exists(self):
        _, out, _ = self.psql(f"SELECT to_regclass({literal(self.table)}) IS NOT NULL;")
        return out.strip() == "t"

    def lock(self, timeout_s=120):
        """psql lines that take the advisory lock of this history table (held until the session ends)."""
        key = literal("rollwright:" + self.name + ":" + self.table)
        return (f"SET lock_timeout = '{int(timeout_s)}s';\n"
                f"SELECT pg_advisory_lock(hashtext({key})) \\g /dev/null\n"
                "RESET lock_timeout;\n")

    def create_sql(self):
        """The history table; created under the lock, since concurrent CREATE TABLE IF NOT EXISTS can fail."""
        return f"""CREATE TABLE IF NOT EXISTS {self.table} (
            installed_rank serial PRIMARY KEY,
            version text,
            description text NOT NULL,
            type text NOT NULL,
            script text NOT NULL,
            checksum text,
            applied_by text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            execution_time_ms integer NOT NULL DEFAULT 0,
            success boolean NOT NULL,
            error text);
"""

    def create(self):
        self.psql(self.lock() + self.create_sql())

    def history(self):
        if not self.exists():
            return []
        _, out, _ = self.psql(f"SELECT coalesce(json_agg(row_to_json(h) ORDER BY installed_rank), '[]') "
                              f"FROM {self.table} h;")
        return json.loads(out.strip() or "[]")

    def record(self, migration, kind, applied_by, success, error=None, version=None):
        values = ", ".join([literal(version or migration.version), literal(migration.description), literal(kind),
                            literal(migration.name), literal(migration.checksum), literal(applied_by),
                            "true" if success else "false", literal(error)])
        self.psql(f"INSERT INTO {self.table} (version, description, type, script, checksum, applied_by, success, "
                  f"error) VALUES ({values});")


def plan(migrations, history, allow_out_of_order, acknowledged):
    """(pending, problems): what would run, and every reason to refuse, all at once."""
    ok = [row for row in history if row["success"]]
    applied = {row["version"]: row for row in ok if row["version"] is not None and row["type"] != "repeatable"}
    local = {m.version: m for m in migrations if m.version}
    problems = []
    for version, row in applied.items():
        if row["type"] == "baseline":
            continue
        mine = local.get(version)
        if mine is None:
            problems.append(f"applied migration {row['script']} (version {version}) is missing locally")
        elif row["checksum"] and mine.checksum != row["checksum"]:
            problems.append(f"applied migration {mine.name} was changed: applied checksum {row['checksum']}, "
                            f"local {mine.checksum}")
    versioned = sorted((m for m in migrations if m.version), key=lambda m: m.key)
    baseline = max((tuple(int(p) for p in v.split(".")) for v, r in applied.items() if r["type"] == "baseline"),
                   default=None)
    newest = max((tuple(int(p) for p in v.split(".")) for v in applied), default=None)
    pending = [m for m in versioned if m.version not in applied and not (baseline and m.key <= baseline)]
    for m in pending:
        if newest and m.key < newest and not allow_out_of_order:
            problems.append(f"{m.name} is older than the newest applied version ({'.'.join(map(str, newest))}); "
                            "set allow_out_of_order to apply it")
    last = {}
    for row in ok:
        if row["type"] == "repeatable":
            last[row["script"]] = row["checksum"]
    pending += [m for m in sorted(migrations, key=lambda m: m.name) if not m.version and last.get(m.name) != m.checksum]
    destructive = [{"script": m.name, "statements": m.destructive()} for m in pending if m.destructive()]
    locking = [{"script": m.name, "statements": m.locking()} for m in pending if m.locking()]
    for item in destructive:
        if item["script"] not in acknowledged and "*" not in acknowledged:
            problems.append(f"{item['script']} is destructive ({', '.join(item['statements'])}) and cannot be rolled "
                            "back; acknowledge it to apply")
    return pending, destructive, locking, problems


def apply_script(db, pending, applied_by, lock_timeout_s, limits=(5, 600)):
    """One psql session: take the advisory lock, then each migration in its own guarded transaction (or none, for
    a no-transaction file), every statement under the table lock and statement timeouts `limits` (seconds)."""
    table_lock_s, statement_s = limits
    lines = [db.lock(lock_timeout_s) + db.create_sql(),
             f"SET lock_timeout = '{int(table_lock_s)}s';\nSET statement_timeout = '{int(statement_s)}s';"]
    for index, m in enumerate(pending):
        if m.version:
            done = f"version = {literal(m.version)}"
        else:
            done = (f"script = {literal(m.name)} AND checksum = {literal(m.checksum)} AND installed_rank = "
                    f"(SELECT max(installed_rank) FROM {db.table} WHERE script = {literal(m.name)} AND success)")
        kind = "versioned" if m.version else "repeatable"
        lines += [
            f"SELECT NOT EXISTS (SELECT 1 FROM {db.table} WHERE success AND {done}) AS rw_todo \\gset",
            "\\if :rw_todo",
            f"\\echo rollwright-start {index}",
            "BEGIN;" if m.transactional else "",
            "SELECT set_config('rollwright.t0', clock_timestamp()::text, false) \\g /dev/null",
            m.sql,
            ";",
            f"INSERT INTO {db.table} (version, description, type, script, checksum, applied_by, execution_time_ms, "
            f"success) VALUES ({literal(m.version)}, {literal(m.description)}, {literal(kind)}, {literal(m.name)}, "
            f"{literal(m.checksum)}, {literal(applied_by)}, (extract(epoch FROM clock_timestamp() - "
            "current_setting('rollwright.t0')::timestamptz) * 1000)::int, true);",
            "COMMIT;" if m.transactional else "",
            f"\\echo rollwright-done {index}",
            "\\endif",
        ]
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "str", "required": True},
            "table": {"type": "str", "default": "rollwright_schema_history"},
            "migrations": {"type": "list", "elements": "dict", "default": []},
            "action": {"type": "str", "default": "apply", "choices": ["apply", "status", "mark_applied", "baseline"]},
            "script": {"type": "str"},
            "version": {"type": "str"},
            "allow_out_of_order": {"type": "bool", "default": False},
            "acknowledge_destructive": {"type": "list", "elements": "str", "default": []},
            "applied_by": {"type": "str", "default": "rollwright"},
            "lock_timeout_s": {"type": "int", "default": 120},
            "table_lock_timeout_s": {"type": "int", "default": 5},
            "lock_retries": {"type": "int", "default": 3},
            "statement_timeout_s": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not TABLE.match(params["table"]):
        module.fail_json(msg=f"bad history table name {params['table']!r}")
    bad = [f["name"] for f in params["migrations"] if not (VERSIONED.match(f["name"]) or REPEATABLE.match(f["name"]))]
    if bad:
        module.fail_json(msg=f"not migration file names (V<version>__<description>.sql or R__<name>.sql): "
                             f"{', '.join(bad)}")
    migrations = [Migration(f["name"], f["sql"]) for f in params["migrations"]]
    versions = [m.version for m in migrations if m.version]
    dupes = sorted({v for v in versions if versions.count(v) > 1})
    if dupes:
        module.fail_json(msg=f"several migration files have version {', '.join(dupes)}")
    db = Database(module, params["database"], params["table"])
    history = db.history()
    pending, destructive, locking, problems = plan(migrations, history, params["allow_out_of_order"],
                                                   params["acknowledge_destructive"])
    result = {"changed": False, "applied": [], "pending": [m.summary() for m in pending], "history": history,
              "destructive": destructive, "locking": locking}
    action = params["action"]
    if action == "status":
        module.exit_json(problems=problems, **result)
    if action in ("mark_applied", "baseline"):
        mark(module, db, migrations, history, result)
    if problems:
        module.fail_json(msg="migrations refused, nothing was applied: " + "; ".join(problems), problems=problems,
                         **result)
    if not pending or module.check_mode:
        module.exit_json(**{**result, "changed": bool(pending), "applied": [m.summary() for m in pending]})
    rc, out, err, tries = run_with_retries(db, pending, params)
    started = [int(line.split()[1]) for line in out.splitlines() if line.startswith("rollwright-start ")]
    done = {int(line.split()[1]) for line in out.splitlines() if line.startswith("rollwright-done ")}
    after = {(row["script"], row["checksum"]): row for row in db.history() if row["success"]}
    result["applied"] = [{**pending[i].summary(), "execution_time_ms": after.get(
        (pending[i].name, pending[i].checksum), {}).get("execution_time_ms")} for i in sorted(done)]
    result["changed"] = bool(done)
    if rc != 0:
        failing = next((i for i in started if i not in done), None)
        error = err.strip() or out.strip() or f"psql exited {rc}"
        if failing is not None:
            db.record(pending[failing], "versioned" if pending[failing].version else "repeatable",
                      params["applied_by"], success=False, error=error)
            result["failed"] = {"script": pending[failing].name, "error": error}
        result["history"] = db.history()
        name = pending[failing].name if failing is not None else "(lock)"
        if LOCK_TIMEOUT in error and failing is not None:
            module.fail_json(msg=f"migration {name} gave up: a statement waited {params['table_lock_timeout_s']} s for "
                                 f"a lock on a table another session holds ({tries} tries); it was rolled back and "
                                 "nothing was switched. Deploy again when the table is not busy, or raise "
                                 f"database.migrations.lock_timeout_s. {error.splitlines()[-1]}", **result)
        undone = "was rolled back" if failing is None or pending[failing].transactional else \
            "ran outside a transaction: the statements before the failing one stay applied"
        module.fail_json(msg=f"migration {name} failed and {undone}: {error}", **result)
    result["history"] = db.history()
    module.exit_json(**result)


def run_with_retries(db, pending, params):
    """Apply in one psql session; when a statement gave up on a lock, wait a little and run again (what is done
    stays done: the guards skip it). (rc, all output, the last error, how many tries)."""
    outputs, tries = [], 0
    while True:
        tries += 1
        rc, out, err = db.psql(apply_script(db, pending, params["applied_by"], params["lock_timeout_s"],
                                            (params["table_lock_timeout_s"], params["statement_timeout_s"])),
                               check=False)
        outputs.append(out)
        if rc == 0 or LOCK_TIMEOUT not in err or tries > params["lock_retries"]:
            return rc, "\n".join(outputs), err, tries
        time.sleep(min(2 * tries, 10))


def mark(module, db, migrations, history, result):
    """Record a file as applied (mark_applied) or a version as the baseline, without running SQL."""
    params = module.params
    if params["action"] == "mark_applied":
        found = [m for m in migrations if m.name == params["script"]]
        if not found:
            module.fail_json(msg=f"no local migration named {params['script']!r}")
        if any(r["success"] and r["script"] == found[0].name and r["checksum"] == found[0].checksum for r in history):
            module.exit_json(**result)
        if not module.check_mode:
            db.create()
            db.record(found[0], "marked", params["applied_by"], success=True)
    else:
        if not params["version"] or not re.match(r"^\d+(?:[._]\d+)*$", params["version"]):
            module.fail_json(msg=f"baseline needs a version like 3 or 1.2, not {params['version']!r}")
        if any(r["success"] and r["type"] == "baseline" and r["version"] == params["version"] for r in history):
            module.exit_json(**result)
        if not module.check_mode:
            db.create()
            db.record(Migration(f"V{params['version']}__baseline.sql", ""), "baseline", params["applied_by"],
                      success=True)
    module.exit_json(**{**result, "changed": True, "history": db.history() if not module.check_mode else history})


if __name__ == "__main__":
    main()
