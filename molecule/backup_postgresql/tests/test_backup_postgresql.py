"""After the backup_postgresql role ran before the migrations (and the idempotence run took no second
backup): one new dump in the 0700 folder, a valid custom-format archive of the database as it was before
the migrations, its scratch database gone, retention applied, and no password in any file there.

Values mirror molecule/backup_postgresql/vars/backup_postgresql.yml.
"""

from __future__ import annotations

import re
from pathlib import Path

testinfra_hosts = ["db"]

DATABASE = "app"  # the lab's database (lab_db_name)
FOLDER = "/var/backups/hello"
NEW_DUMP = re.compile(r"^app-[0-9]{8}T[0-9]{6}Z-1\.0\.0\.dump$")  # <db>-<UTC timestamp>-<label>.dump
KEPT_OLD_DUMP = "app-20210101T000000Z-0.9.0.dump"  # keep 2: the new dump and the newer of prepare's two
BEFORE_NOTE = "row written before the migrations"


def as_postgres(host, command):
    return host.check_output(f"cd / && runuser -u postgres -- {command}")


def psql(host, sql):
    return as_postgres(host, f"psql -X -q -A -t -v ON_ERROR_STOP=1 -d {DATABASE} -c \"{sql}\"")


def new_dump(host):
    names = [n for n in host.check_output(f"ls -A {FOLDER}").split() if NEW_DUMP.match(n)]
    assert len(names) == 1, names
    return f"{FOLDER}/{names[0]}"


def test_backup_folder_is_private_to_postgres(host):
    folder = host.file(FOLDER)
    assert folder.is_directory
    assert (folder.user, folder.group, folder.mode) == ("postgres", "postgres", 0o700)


def test_one_new_dump_and_retention_kept_the_newest_two(host):
    names = host.check_output(f"ls -A {FOLDER}").split()
    assert len(names) == 2, names  # the idempotence run (nothing pending) took no second dump
    assert KEPT_OLD_DUMP in names  # the 2020 dump is gone, beyond keep 2
    assert NEW_DUMP.match(next(n for n in names if n != KEPT_OLD_DUMP))


def test_dump_owner_and_mode(host):
    dump = host.file(new_dump(host))
    assert dump.is_file
    assert dump.size > 0
    # pg_dump creates it with its umask; the 0700 folder is what keeps it from other users.
    assert (dump.user, dump.group, dump.mode) == ("postgres", "postgres", 0o644)


def test_dump_is_a_custom_format_archive_of_the_database(host):
    toc = as_postgres(host, f"pg_restore --list {new_dump(host)}")
    assert ";     Format: CUSTOM" in toc.splitlines()
    assert ";     dbname: app" in toc.splitlines()
    entries = [line.split(None, 3)[3] for line in toc.splitlines() if line and not line.startswith(";")]
    assert "TABLE public rwm_before postgres" in entries
    assert "TABLE DATA public rwm_before postgres" in entries


def test_dump_was_taken_before_the_migrations(host):
    toc = as_postgres(host, f"pg_restore --list {new_dump(host)}")
    assert "widget" not in toc
    assert "rollwright_schema_history" not in toc
    # ...which ran after it: the live database has them.
    assert psql(host, "SELECT string_agg(name, ',' ORDER BY id) FROM widget") == "sprocket,gear"


def test_dump_holds_the_data(host):
    data = as_postgres(host, f"pg_restore --data-only --table=rwm_before -f - {new_dump(host)}")
    assert f"1\t{BEFORE_NOTE}" in data.splitlines()


def test_scratch_database_was_dropped(host):
    assert psql(host, f"SELECT count(*) FROM pg_database WHERE datname = '{DATABASE}_rollwright_verify'") == "0"


def test_no_password_in_the_backup_folder(host):
    # The lab's app password, from its 0600 file on the control node (where this test runs); asserts are
    # on booleans only, so a failure never prints it.
    password = Path(host.ansible.get_variables()["lab_db_password_file"]).read_text().strip().encode()
    assert len(password) >= 16
    for name in host.check_output(f"ls -A {FOLDER}").split():
        leaked = password in host.file(f"{FOLDER}/{name}").content
        assert not leaked, name
    sql = as_postgres(host, f"pg_restore -f - {new_dump(host)}").encode()  # the archive, uncompressed
    leaked = password in sql
    assert not leaked
