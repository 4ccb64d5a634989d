"""Hostile specs: limits (billion laughs, deep nesting, NUL, huge numbers, odd keys, %YAML 1.3), every path kept
where it belongs, and a seeded fuzz of mutated example specs: a clean file:line error (exit 2), never a traceback."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from rollwright.errors import BadInput
from rollwright.spec import limits
from rollwright.spec.loader import SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples/hello/rollwright.yml"
DEPLOYCONFIG = REPO / "examples/deployconfig/deployconfig.json"
SHA = "a" * 64
BASE = f"""\
app: hello
artifact: {{path: dist/hello.tar.gz, version: "1.0.0", sha256: "{SHA}"}}
release:
  root: /srv/hello
  shared: [log]
service: {{exec: bin/hello, user: hello}}
health: {{path: /health, port: 8080}}
"""


def laughs(levels: int = 9) -> str:
    """The 'billion laughs': each anchor repeats the one before nine times."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# (case id, spec text, expected line, text the message must contain: the field and the limit or problem)
LIMIT_CASES = [
    ("billion-laughs", "app: hello\nrelease:\n  root: /srv/hello\nhooks:\n" + "".join(
        f"  {line}\n" for line in laughs().splitlines()), 9, "hooks.lol4[5]: the spec expands to more than"),
    ("deep-flow-nesting", "app: hello\nrelease: " + "[" * 5000 + "]" * 5000 + "\n", 2, "nesting depth limit"),
    ("deep-block-nesting", "app: hello\nrelease:\n" + "".join(f"{' ' * i}- \n" for i in range(1, 40)), 34,
     "release[0][0][0]"),
    ("deep-map-nesting", "app: hello\nrelease: " + "{a: " * 40 + "1" + "}" * 40 + "\n", 2,
     "release.a.a.a.a.a"),
    ("nul-raw", BASE.replace("user: hello", "user: hel\x00lo"), 6, "U+0000 (NUL) is not allowed"),
    ("nul-escaped", BASE.replace("bin/hello", '"bin/\\0hello"'), 6, "service.exec: a NUL character"),
    ("huge-int", BASE + "rollout: {max_fail_percentage: " + "9" * 5000 + "}\n", 8,
     "rollout.max_fail_percentage: a number of more than 20 digits"),
    ("hex-huge-int", BASE.replace("port: 8080", "port: 0x" + "f" * 5000), 7, "health.port: a number of more"),
    ("negative-huge-int", BASE.replace("port: 8080", "port: -" + "1" * 4400), 7, "health.port: a number of more"),
    ("infinite-float", BASE + "rollout:\n  canary: {max_latency_ratio: .inf}\n", 9,
     "rollout.canary.max_latency_ratio: '.inf' is not a finite number"),
    ("yaml-1.3", "%YAML 1.3\n---\n" + BASE, 1, "unsupported directive '%YAML 1.3'"),
    ("int-key", BASE + "1: one\n", 8, "key '1' is not a name (YAML reads it as a number)"),
    ("bool-key", BASE.replace("  root: /srv/hello", "  root: /srv/hello\n  true: yes"), 5,
     "release: key 'true' is not a name"),
    ("null-key", BASE + "~: nothing\n", 8, "key '~' is not a name (YAML reads it as null)"),
    ("list-key", BASE + "? [a, b]\n: pair\n", 8, "a list as a key"),
    ("recursive-alias", BASE + "hooks: &h {before_deploy: *h}\n", 8, "hooks.before_deploy: alias *h inside its own"),
    ("tag", BASE.replace("exec: bin/hello", "exec: !!python/object:os.system bin/hello"), 6, "service.exec: tag"),
    ("long-key", BASE + "k" * 300 + ": x\n", 8, "a key of 300 characters"),
    ("long-string", BASE.replace("bin/hello", "x" * 20000), 6, "service.exec: a string of 20000 characters"),
    ("huge-file", BASE + "# " + "x" * limits.MAX_FILE_BYTES + "\n", 1, "file size limit"),
    ("json-deep", '{"groups": [{"name": "a", "pre_deploy": ' + "[" * 3000 + "]" * 3000 + "}]}", 1,
     "nesting depth limit"),
    ("json-huge-int", '{"groups": [{"name": "a", "order": ' + "7" * 5000 + "}]}", 1,
     "groups[0].order: a number of more than 20 digits"),
    ("json-nul", '{"groups": [{"name": "a", "pre_deploy": ["echo \\u0000"]}]}', 1,
     "groups[0].pre_deploy[0]: a NUL character"),
]


@pytest.mark.parametrize(("text", "line", "expected"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
def test_a_spec_over_a_limit_is_refused_with_the_limit_line_and_field(tmp_path: Path, text: str, line: int,
                                                                     expected: str) -> None:
    spec = tmp_path / ("spec.json" if text.startswith("{") else "rollwright.yml")
    spec.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert f"{spec}:{line}:" in str(error.value)
    assert expected in str(error.value)


def test_a_spec_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_bytes(BASE.encode().replace(b"/srv/hello", b"/srv/h\xffllo"))
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert f"{spec}:4:15: not valid UTF-8 text" in str(error.value)


PATH_CASES = [
    ("shared-traversal", BASE.replace("shared: [log]", "shared: ['../../../c13-sentinel']"), 5,
     "release.shared[0]: '../../../c13-sentinel' climbs out with '..'"),
    ("shared-inner-traversal", BASE.replace("shared: [log]", "shared: [log/../../x]"), 5, "release.shared[0]"),
    ("shared-absolute", BASE.replace("shared: [log]", "shared: [/var/log]"), 5,
     "release.shared[0]: expected a path relative to the release root"),
    ("shared-overlap", BASE.replace("shared: [log]", "shared: [log, log/app]"), 5,
     "release.shared: shared paths 'log' and 'log/app' overlap"),
    ("shared-revision", BASE.replace("shared: [log]", "shared: [REVISION]"), 5, "release.shared"),
    ("shared-newline", BASE.replace("shared: [log]", 'shared: ["log\\nx"]'), 5, "control characters"),
    ("root-slash", BASE.replace("root: /srv/hello", "root: /"), 4, "release.root: '/' is shared by everything"),
    ("root-etc", BASE.replace("root: /srv/hello", "root: /etc/hello"), 4, "release.root: '/etc/hello' is inside /etc"),
    ("root-usr", BASE.replace("root: /srv/hello", "root: /usr/lib/x"), 4, "is inside /usr"),
    ("root-srv", BASE.replace("root: /srv/hello", "root: /srv/"), 4, "release.root: '/srv' is shared"),
    ("root-dotdot", BASE.replace("root: /srv/hello", "root: /srv/hello/../../etc"), 4, "release.root"),
    ("root-long-name", BASE.replace("root: /srv/hello", "root: /srv/" + "h" * 300), 4, "over 255 bytes"),
    ("working-dir-outside", BASE.replace("user: hello}", "user: hello, working_dir: /etc}"), 6,
     "service.working_dir: '/etc' is outside the running release"),
    ("working-dir-climbs", BASE.replace("user: hello}", "user: hello, working_dir: ../x}"), 6,
     "service.working_dir: '../x' climbs out"),
    ("backup-dir-var", BASE + "database: {name: app, backup: {dir: /var/lib}}\n", 8,
     "database.backup.dir: '/var/lib' is shared"),
    ("backup-dir-proc", BASE + "database: {name: app, backup: {dir: /proc/x}}\n", 8, "database.backup.dir"),
    ("migrations-outside", BASE + "database: {name: app, migrations: {path: ../../etc}}\n", 8,
     "database.migrations.path: '../../etc' climbs out"),
    ("migrations-absolute", BASE + "database: {name: app, migrations: {path: /etc}}\n", 8,
     "database.migrations.path: expected a path relative to the spec's folder"),
    ("file-pattern-outside", BASE + "groups: [{name: g, file_patterns: ['../**/*.sql']}]\n", 8,
     "groups[0].file_patterns[0]"),
    ("file-pattern-absolute", BASE + "groups: [{name: g, file_patterns: ['/**']}]\n", 8,
     "groups[0].file_patterns[0]: expected a path relative to the spec's folder"),
    ("artifact-nul-path", BASE.replace("path: dist/hello.tar.gz", 'path: "dist/\\0"'), 2, "artifact.path"),
    ("lb-socket-relative", BASE + "rollout: {load_balancer: {backend: app, socket: admin.sock}}\n", 8,
     "rollout.load_balancer.socket: expected an absolute path"),
]


@pytest.mark.parametrize(("text", "line", "expected"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_every_spec_path_stays_where_it_belongs(tmp_path: Path, text: str, line: int, expected: str) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert f"{spec}:{line}:" in str(error.value)
    assert expected in str(error.value)


def test_paths_are_kept_in_one_normal_form(tmp_path: Path) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text(BASE.replace("root: /srv/hello", "root: /srv//hello/").replace("[log]", "[log/, ./tmp/cache]")
                    .replace("user: hello}", "user: hello, working_dir: /srv/hello/current/web/}"))
    loaded = load_spec(spec).spec
    assert loaded.release and loaded.service
    assert (loaded.release.root, loaded.release.shared) == ("/srv/hello", ["log", "tmp/cache"])
    assert loaded.service.working_dir == "/srv/hello/current/web"


# --- fuzzing ------------------------------------------------------------------------------------------------

NASTY_VALUES: list[Any] = [None, True, -1, 0, -(10**18), 10**18, 1.5, -0.0, "", "x\x00y", "../../../etc", "/",
                           [], {}, [[]], {"k": None}, "%", "{{ lookup('pipe', 'id') }}", "é" * 50]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate_data(data: Any, rng: random.Random) -> Any:
    """One structural change: delete a key, swap a value's type, nest it deep, or make it huge."""
    where = rng.choice(_paths(data))
    parent = data
    for part in where[:-1]:
        parent = parent[part]
    last = where[-1]
    kind = rng.choice(["delete", "swap", "swap", "deep", "huge-string", "wrap-list", "traverse"])
    if kind == "delete" and isinstance(parent, dict):
        del parent[last]
    elif kind == "deep":
        value: Any = "x"
        for _ in range(rng.choice([5, 31, 40, 200])):
            value = [value] if rng.random() < 0.5 else {"k": value}
        parent[last] = value
    elif kind == "huge-string":
        parent[last] = "p" * rng.choice([300, 5000, 20000])
    elif kind == "wrap-list":
        parent[last] = [parent[last]]
    elif kind == "traverse":
        parent[last] = "../" * rng.randint(1, 5) + "c13-sentinel"
    else:
        parent[last] = rng.choice(NASTY_VALUES)
    return data


TEXT_MUTATIONS = [
    lambda t, r: t[:r.randrange(len(t))] + "\x00" + t[r.randrange(len(t)):],
    lambda t, r: t[:r.randrange(len(t))] + "\udcff" + t[r.randrange(len(t)):],  # written as the byte 0xff
    lambda t, r: re.sub(r"\b\d+\b", "9" * r.choice([19, 21, 4301, 5000]), t, count=r.randint(1, 3)),
    lambda t, r: re.sub(r"\b\d+\b", "-" + "1" * 4400, t, count=1),
    lambda t, r: r.choice(["%YAML 1.3\n---\n", "%YAML 1.1\n---\n", "%YAML 2.0\n---\n", "%TAG ! x:\n---\n"]) + t,
    lambda t, r: t + r.choice(["\n1: x\n", "\ntrue: y\n", "\n~: z\n", "\n? [a, b]\n: c\n", "\n? {a: 1}\n: c\n",
                               "\n3.5: f\n", "\n2026-01-01: d\n", "\n*undefined: x\n"]),
    lambda t, r: t[:r.randrange(len(t))],
    lambda t, r: t + "\nx: " + "[" * r.choice([33, 500, 5000]) + "]" * r.choice([0, 5000]) + "\n",
    lambda t, r: t + "\n" + laughs(r.choice([4, 9, 12])),
    lambda t, r: t.replace(":", ": &a", 1) + "\nloop: &b [*b]\n",
    lambda t, r: t.replace(" ", "\t", r.randint(1, 5)),
    lambda t, r: t + "\n" + "# " + "y" * limits.MAX_FILE_BYTES,
    lambda t, r: "\n".join(line * r.choice([1, 2]) for line in t.splitlines()),
    lambda t, r: t.replace('"', "", r.randint(1, 4)),
]


def _fuzz_cases(count: int, seed: int = 18) -> list[tuple[str, str]]:
    """(file name, text) pairs: mutations of the hello spec and the deployment-config JSON, from a fixed seed."""
    rng = random.Random(seed)
    yaml = YAML(typ="safe", pure=True)
    sources = [("rollwright.yml", HELLO.read_text()), ("deployconfig.json", DEPLOYCONFIG.read_text())]
    cases = []
    for i in range(count):
        name, text = sources[i % 2]
        if i % 3:
            data = _mutate_data(yaml.load(text), rng)
            for _ in range(rng.randint(0, 2)):
                data = _mutate_data(data, rng) if _paths(data) else data
            out = json.dumps(data) if name.endswith(".json") else _dump(yaml, data)
        else:
            out = rng.choice(TEXT_MUTATIONS)(text, rng)
        cases.append((name, out))
    return cases


def _dump(yaml: YAML, data: Any) -> str:
    from io import StringIO

    stream = StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _check_refusal(spec: Path, error: BadInput) -> None:
    """A refusal names the file and a line; each issue names its field, or the sections it is about ('artifact'
    needs 'release'), or says what is wrong with the whole file."""
    message = str(error)
    assert "Traceback" not in message
    assert isinstance(error, SpecError), message
    for issue in error.issues:
        assert issue.file == str(spec) and issue.line >= 1, message
        assert issue.field or "'" in issue.message or issue.message.startswith(
            ("not valid", "required field", "unsupported directive", "the file is", "brackets nested",
             "a list as a key", "a mapping as a key", "expected a mapping")), message
        assert f"{spec}:{issue.line}:{issue.column}: " in message


def test_fuzzed_specs_load_or_are_refused_cleanly(tmp_path: Path) -> None:
    assert load_spec(HELLO) and load_spec(DEPLOYCONFIG)  # the unmutated sources are valid
    cases = _fuzz_cases(460)
    refused = 0
    for i, (name, text) in enumerate(cases):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        spec = folder / name
        spec.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_spec(spec)
        except BadInput as error:
            refused += 1
            _check_refusal(spec, error)
    assert refused > len(cases) // 2  # the mutations do reach the checks


NASTIEST = {
    "laughs.yml": HELLO.read_text() + "\n" + laughs(12),
    "deep.yml": HELLO.read_text() + "\nx: " + "[" * 20000 + "]" * 20000 + "\n",
    "nul.yml": HELLO.read_text().replace("user: hello", "user: hel\x00lo"),
    "key.yml": HELLO.read_text() + "\n? [a, b]\n: c\n",
    "traversal.yml": HELLO.read_text().replace("shared: [log]", "shared: ['../../../c13-sentinel']"),
    "directive.yml": "%YAML 1.3\n---\n" + HELLO.read_text(),
    "bigint.json": DEPLOYCONFIG.read_text().replace('"order": 1', '"order": ' + "1" * 5000),
    "deep.json": DEPLOYCONFIG.read_text().replace('"order": 1', '"order": ' + "[" * 20000 + "]" * 20000),
}


@pytest.mark.parametrize("name", sorted(NASTIEST))
def test_validate_and_plan_refuse_the_nastiest_specs_with_exit_2(tmp_path: Path, name: str) -> None:
    shutil.copytree(HELLO.parent / "migrations", tmp_path / "migrations")
    spec = tmp_path / name
    spec.write_text(NASTIEST[name].replace("../../inventories", str(REPO / "inventories")))
    for command in (["validate", "-f", str(spec)], ["plan", "-f", str(spec), "-t", "staging"]):
        done = subprocess.run([sys.executable, "-m", "rollwright", *command], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert re.search(rf"{re.escape(str(spec))}:\d+:\d+: ", done.stderr), done.stderr
