"""The load balancer's live numbers during a rollout (issue 22): the delta math between two `show stat` dumps,
the grouping into the new release's servers and the others, the sampler's process and thread (a real
subprocess streaming dumps, ended by its pid), its line per finished batch and the live view's table. The lab
proves it through a real HAProxy (tests/lab/test_rollout.py)."""

from __future__ import annotations

import io
import os
import shlex
from pathlib import Path

import pytest
from rich.console import Console

from rollwright.render.playbooks import ROLLOUT_PLAY
from rollwright.run.livestats import END, LiveNumbers, Numbers, between, parse_stat, stat_loop
from rollwright.run.output import LiveOutput, Output

HEADER = "# pxname,svname,scur,wretr,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime,"


def _dump(rows: dict[str, tuple[int, int, int, int]], backend: str = "app") -> str:
    """A `show stat` dump: per server (2xx, 5xx, retries, rtime), with the frontend and another backend around."""
    lines = [HEADER, "front,FRONTEND,1,,0,999,0,0,9,0,,"]
    lines += [f"{backend},{name},0,{retries},0,{ok},0,0,{errors},0,{rtime}," for name, (ok, errors, retries, rtime)
              in rows.items()]
    lines += [f"{backend},BACKEND,0,0,0,999,0,0,9,0,7,", "other,app1,0,50,0,500,0,0,50,0,900,", ""]
    return "\n".join(lines) + "\n"


def test_a_dump_gives_the_backends_servers_only() -> None:
    rows = parse_stat(_dump({"app1": (10, 0, 0, 3), "app2": (5, 1, 0, 4)}), "app")
    assert sorted(rows) == ["app1", "app2"] and rows["app2"]["hrsp_5xx"] == "1"


def test_the_new_release_against_the_others_between_two_dumps() -> None:
    before = parse_stat(_dump({"app1": (100, 0, 0, 2), "app2": (100, 0, 0, 2), "app3": (100, 0, 0, 2)}), "app")
    after = parse_stat(_dump({"app1": (120, 2, 1, 10), "app2": (140, 0, 0, 4), "app3": (160, 0, 0, 2)}), "app")
    numbers = between(before, after, 2.0, ["app1"])
    assert numbers.new_servers == ("app1",)
    new, others = numbers.new, numbers.others
    # app1: 20 ok + 2 5xx answered, 1 retried: 23 requests, 3 errors, latency its rtime
    assert (new.requests, new.errors, new.answered) == (23, 3, 22)
    assert (new.per_second, round(new.error_rate, 4), new.avg_ms) == (11.5, 0.1304, 10.0)
    # app2 and app3: 40 + 60 answered, latency weighted by what each answered
    assert (others.requests, others.errors, others.per_second) == (100, 0, 50.0)
    assert others.avg_ms == pytest.approx((40 * 4 + 60 * 2) / 100)
    assert numbers.line() == ("    load balancer: new release 11.5 req/s, 13.04% errors, 10 ms; "
                              "others 50.0 req/s, 0.00% errors, 3 ms (over 2 s)")


def test_a_server_whose_counters_went_back_or_that_is_new_counts_nothing() -> None:
    before = parse_stat(_dump({"app1": (500, 0, 0, 2)}), "app")
    after = parse_stat(_dump({"app1": (10, 0, 0, 2), "app2": (30, 0, 0, 2)}), "app")  # HAProxy restarted
    numbers = between(before, after, 2.0, [])
    assert (numbers.new.requests, numbers.others.requests) == (0, 0)


def test_no_traffic_is_zero_not_a_division_by_zero() -> None:
    rows = parse_stat(_dump({"app1": (5, 0, 0, 2)}), "app")
    numbers = between(rows, rows, 2.0, ["app1"])
    assert (numbers.new.per_second, numbers.new.error_rate, numbers.new.avg_ms) == (0.0, 0.0, 0.0)
    assert numbers.line() == "    load balancer: no requests (over 2 s)"  # not a row of zeros


def test_the_remote_loop_takes_the_socket_as_data() -> None:
    argv = stat_loop("/run/haproxy/admin.sock; rm -rf /")
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["sh", "/run/haproxy/admin.sock; rm -rf /"]
    assert '"UNIX-CONNECT:$1"' in argv[2] and "show stat" in argv[2]


def _streamer(tmp_path: Path, dumps: list[str]) -> list[str]:
    """A local stand-in for the ssh process: prints the dumps a moment apart, then waits to be ended; its pid in
    a file, to prove it was ended."""
    body = "".join(f"printf '%s' {shlex.quote(dump)}; echo {shlex.quote(END)}; sleep 0.2; " for dump in dumps)
    return ["sh", "-c", f"echo $$ > {shlex.quote(str(tmp_path / 'pid'))}; {body}exec sleep 60"]


def _event(kind: str, play: str = "") -> dict[str, object]:
    return {"event": kind, "event_data": {"play": play}}


def _wait_for(condition: object, seconds: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_a_rollout_batch_ends_with_its_numbers_and_the_sampler_process_ends(tmp_path: Path) -> None:
    dumps = [_dump({"app1": (100 * i, 0, 0, 3), "app2": (100 * i, i, 0, 5)}) for i in range(1, 4)]
    said: list[tuple[str, str, dict[str, object]]] = []
    shown: list[Numbers | None] = []
    live = LiveNumbers(lambda: _streamer(tmp_path, dumps), "app", lambda: ["app1"],
                       lambda kind, text, **fields: said.append((kind, text, fields)), shown.append)
    live(_event("playbook_on_play_start", "Preflight on the hosts (changes nothing)"))
    assert live.sampler is None and live._starting is None  # not before the rollout
    live(_event("playbook_on_play_start", f"{ROLLOUT_PLAY} [1, 1]"))
    _wait_for(lambda: len(shown) >= 2)
    assert [n.new_servers for n in shown if n] == [("app1",), ("app1",)]
    pid = int((tmp_path / "pid").read_text())
    live(_event("playbook_on_play_start", "Verify"))  # the rollout is over: its batch's line, then the stop
    assert [kind for kind, _, _ in said] == ["numbers"]
    _, text, fields = said[0]
    assert text.startswith("    load balancer: new release ") and "; others " in text
    assert fields["new"]["servers"] == ["app1"] and fields["new"]["requests"] == 200  # type: ignore[index]
    assert fields["others"]["errors"] == 2  # type: ignore[index]
    assert live.sampler is None and shown[-1] is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_sampler_that_cannot_start_shows_nothing_and_fails_nothing(tmp_path: Path) -> None:
    said: list[str] = []

    def refuse() -> list[str]:
        raise RuntimeError("no inventory")

    live = LiveNumbers(refuse, "app", list, lambda kind, text, **fields: said.append(text), lambda n: None)
    live(_event("playbook_on_play_start", f"{ROLLOUT_PLAY} [1]"))
    assert live._starting is not None
    live._starting.join(5)
    live(_event("playbook_on_stats"))
    live.close()
    assert said == [] and live.sampler is None
    never = LiveNumbers(None, "", list, lambda kind, text, **fields: said.append(text), lambda n: None)
    never(_event("playbook_on_play_start", f"{ROLLOUT_PLAY} [1]"))
    assert never._starting is None


def test_plain_output_prints_the_batch_line_and_the_live_view_shows_a_table_beside_the_hosts() -> None:
    before = parse_stat(_dump({"app1": (0, 0, 0, 2), "app2": (0, 0, 0, 2)}), "app")
    numbers = between(before, parse_stat(_dump({"app1": (20, 0, 0, 4), "app2": (40, 2, 0, 6)}), "app"), 2.0,
                      ["app1"])
    plain = io.StringIO()
    Output(plain).event("numbers", numbers.line(), **numbers.fields())
    assert plain.getvalue() == numbers.line() + "\n"
    live = LiveOutput(io.StringIO(), force_terminal=True)
    live.event("phase", "    app1  switch", host="app1", batch=1, phase="switch")
    live.numbers(numbers)
    view = io.StringIO()
    Console(file=view, width=160, color_system=None).print(live._view())
    rows = [line.rstrip() for line in view.getvalue().splitlines()]
    assert any("app1" in row and "switch" in row and "new release (1)" in row for row in rows), rows
    assert any(row.split()[-4:] == ["others", "21.0", "4.76%", "6"] for row in rows), rows
    assert any("10.0" in row and "0.00%" in row and row.endswith("4") for row in rows), rows
    live.numbers(None)
    Console(file=view, width=160, color_system=None).print(live._view())
    assert Output.shows_numbers and not __import__("rollwright.run.output").run.output.JsonOutput.shows_numbers
