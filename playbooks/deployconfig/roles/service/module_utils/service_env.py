"""The deployed version's lines at the end of a service's env file: written by service_install with the env,
and by service_version when a rollback restarts the service in another release; and the one way both write a
file."""

from __future__ import annotations

import json
import os
import tempfile

VERSION_MARK = "# rollwright: the deployed version (a change here alone restarts nothing)\n"
OTEL = "OTEL_RESOURCE_ATTRIBUTES"


def own_lines(content):
    """The env file's own lines: everything above VERSION_MARK."""
    return content.split(VERSION_MARK)[0]


def env_changed(before, env):
    """Whether the env file's own lines changed (None: there was no file): the version's lines do not count."""
    return before is None or own_lines(before) != env


def _attributes(env):
    """The env's OTEL_RESOURCE_ATTRIBUTES (its last assignment, a JSON string as the env template writes it)."""
    value = ""
    for line in env.splitlines():
        if line.startswith(OTEL + "="):
            try:
                value = str(json.loads(line[len(OTEL) + 1:]))
            except ValueError:
                value = line[len(OTEL) + 1:]
    return value


def version_lines(env, version, root):
    """VERSION_MARK and ROLLWRIGHT_VERSION, ROLLWRIGHT_RELEASE (<root>/releases/<version>) and
    OTEL_RESOURCE_ATTRIBUTES: the env's attributes, any service.version left out, then service.version=<version>.
    A later assignment wins as systemd reads the file."""
    kept = [item.strip() for item in _attributes(env).split(",")
            if item.strip() and item.split("=")[0].strip() != "service.version"]
    values = {"ROLLWRIGHT_VERSION": version, "ROLLWRIGHT_RELEASE": root.rstrip("/") + "/releases/" + version,
              OTEL: ",".join([*kept, "service.version=" + version])}
    return VERSION_MARK + "".join(name + "=" + json.dumps(value) + "\n" for name, value in values.items())


def with_version(env, version, root):
    """The env file's content: its own lines, then the version's (none without a version)."""
    return env + version_lines(env, version, root) if version else env


def replace_file(path, content, uid, gid, mode):
    """Write content to path whole: a temp file with its owner and mode, renamed over it (never half written)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
