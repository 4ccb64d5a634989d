"""HAProxy's config file as blue/green keeps its colours in it: the idle colour's `server` lines say `disabled`.

The runtime API's admin states live in the running process only: a reload or restart starts every
server from the config again, so both colours would take traffic. Marking the idle colour's servers
`disabled` in the config (HAProxy's configured maintenance) makes a reload start them in maintenance.
Only the `disabled` word of those lines changes; every other byte of the file stays as it was.
"""

from __future__ import annotations

import re

# The first words that open a section: a `server` line belongs to the last one opened.
SECTIONS = {"global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "program",
            "mailers", "cache", "ring", "http-errors", "crt-store", "traces"}
DISABLED = re.compile(r"\s+disabled(?=\s|$)")


def _words(line):
    """The line's words before any comment."""
    return line.split("#", 1)[0].split()


def _with_disabled(line, disabled):
    """The server line with its `disabled` word added or removed; its spacing, comment and line end kept."""
    content = line.rstrip("\r\n")
    body, hash_, comment = content.partition("#")
    body = DISABLED.sub("", body)
    if disabled:
        stripped = body.rstrip()
        body = stripped + " disabled" + body[len(stripped):]
    return body + hash_ + comment + line[len(content):]


def mark_colours(text, backend, serve, retire):
    """The config with `retire` disabled and `serve` enabled in `backend`, and the servers without a line there.

    Returns (new text, missing server names); the text is unchanged when a server is missing.
    """
    lines = text.splitlines(keepends=True)
    wanted = {**{name: False for name in serve}, **{name: True for name in retire}}
    section, found = None, set()
    for index, line in enumerate(lines):
        words = _words(line)
        if not words:
            continue
        if words[0] in SECTIONS:
            section = words[1] if words[0] in ("backend", "listen") and len(words) > 1 else None
            continue
        if section == backend and words[0] == "server" and len(words) > 1 and words[1] in wanted:
            found.add(words[1])
            if ("disabled" in words[2:]) != wanted[words[1]]:
                lines[index] = _with_disabled(line, wanted[words[1]])
    missing = [name for name in wanted if name not in found]
    return (text if missing else "".join(lines)), missing
