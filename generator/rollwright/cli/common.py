"""What every command module shares: the argument helpers, how a command is declared (a one-line summary and
an example in its --help; no abbreviated options; "did you mean" for a mistyped command), and the output path."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rollwright.errors import BadInput, RollwrightError
from rollwright.run.output import Output
from rollwright.spec.loader import LoadedSpec, load_spec

DEFAULT_SPEC = "rollwright.yml"
Subparsers = Any  # argparse's _SubParsersAction, which typeshed keeps private


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that never accepts a prefix of an option (`--dry` is not `--dry-run`) and answers a
    mistyped command or choice with the closest ones ("did you mean ...?")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is None or value in action.choices:
            return
        choices = [str(choice) for choice in action.choices]
        close = difflib.get_close_matches(str(value), choices, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise argparse.ArgumentError(action, f"unknown {(action.metavar or 'choice').lower()} {value!r}{hint} "
                                             f"(choose from {', '.join(choices)})")


def command(sub: Subparsers, name: str, summary: str, examples: str | Iterable[str], *,
            more: str = "") -> argparse.ArgumentParser:
    """A subcommand whose --help starts with its one-line summary and ends with examples."""
    lines = [examples] if isinstance(examples, str) else list(examples)
    return sub.add_parser(
        name, help=summary, allow_abbrev=False, description=summary + (f"\n\n{more}" if more else ""),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def actions(parser: argparse.ArgumentParser) -> Subparsers:
    """The ACTION level of a noun command (`lock status`, `target add`)."""
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


def spec_arg(parser: argparse.ArgumentParser, *, short: bool = True) -> None:
    """--spec, and -f for it unless the command gives -f another meaning (`logs -f` follows, as tail does)."""
    parser.add_argument(*(["-f"] if short else []), "--spec", default=DEFAULT_SPEC, type=Path,
                        help=f"deploy spec: YAML, or a deployment-config JSON (default: {DEFAULT_SPEC})")


def target_arg(parser: argparse.ArgumentParser) -> None:
    action = parser.add_argument("-t", "--target", help="target name from the spec (default: the only one, or local)")
    action.completer = target_names  # type: ignore[attr-defined]  # argcomplete's hook: `-t <TAB>`


def target_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The targets of the spec typed so far (`-f`, else rollwright.yml here) for shell completion. A shell runs
    this on every TAB, so a missing or broken spec offers nothing: no exception, not a word on any stream."""
    import contextlib
    import io
    import warnings

    from rollwright.spec.loader import load_spec

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            names = list(load_spec(getattr(parsed_args, "spec", None) or DEFAULT_SPEC).spec.targets) or ["local"]
    except Exception:  # whatever a half-written spec raises: no completions
        return []
    return [name for name in names if name.startswith(prefix)]


def artifact_args(parser: argparse.ArgumentParser) -> None:
    """--artifact PATH [--version V]: a new build in place of the spec's artifact, for this run only."""
    parser.add_argument("--artifact", type=Path, metavar="PATH",
                        help="this build instead of the spec's artifact, for this run only (the spec is not changed): "
                             "its sha256 is computed, its version read from the file name (hello-1.4.0.tar.gz)")
    parser.add_argument("--version", dest="artifact_version", metavar="VERSION",
                        help="the --artifact's version, when its file name does not say it")


def load_with_artifact(args: argparse.Namespace) -> LoadedSpec:
    """The spec of a command with artifact_args: the --artifact build in place of its artifact, when given
    (then a build file the spec names is not read)."""
    from rollwright.spec.artifact import with_artifact

    if args.artifact is None:
        if args.artifact_version is not None:
            raise BadInput("--version VERSION goes with --artifact PATH (the spec's artifact has its own version)")
        return load_spec(args.spec)
    return with_artifact(load_spec(args.spec, build_file=False), args.artifact, args.artifact_version)


def host_arg(parser: argparse.ArgumentParser, default: str, only: str = "only this app host") -> None:
    """--host, repeatable or a comma list: the hosts a command is limited to (checked against the inventory)."""
    parser.add_argument("--host", action="append", default=[], metavar="HOST",
                        help=f"{only} (repeat it, or a comma list); default: {default}")


def on_target(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int] | None = None, *,
              json: str | None = None) -> argparse.ArgumentParser:
    """A command about one target of a spec: -f/--spec and -t/--target, --json when it prints JSON (saying what),
    and the function that runs it."""
    spec_arg(parser)
    target_arg(parser)
    if json is not None:
        json_arg(parser, json)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="progress as JSON events, one per line, ending with a `result` (or `error`) event")
    parser.add_argument("--no-color", action="store_true",
                        help="plain lines, no live view (also NO_COLOR=1, or when stdout is not a terminal)")


def lock_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another deploy's lock (default: refuse at once)")
    parser.add_argument("--message", default="", help="why: kept in the lock and shown to whoever waits")


def json_arg(parser: argparse.ArgumentParser, shape: str) -> None:
    """--json, saying what it prints: one JSON document, or one JSON object per line."""
    parser.add_argument("--json", action="store_true", help=f"print JSON: {shape}")


def direct_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--direct", action="store_true",
                        help="every app host at once (a hotfix); required for strategy direct on production")


def limit_arg(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument("--limit", metavar="HOSTS", help=f"Ansible host pattern{what}")


def say(line: str) -> None:
    print(line, flush=True)


def say_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def print_json(document: Any) -> None:
    """One JSON document (a command's whole answer)."""
    print(json.dumps(document, indent=2))


def print_json_lines(rows: Iterable[Any]) -> None:
    """One JSON object per line (a list a reader may stream, e.g. into `jq -c`)."""
    for row in rows:
        print(json.dumps(row, separators=(",", ":")), flush=True)


def with_output(args: argparse.Namespace, run: Callable[[Output], int]) -> int:
    """Run a deploy or rollback with the progress view the terminal, --no-color/NO_COLOR or --json asks for;
    in JSON the stream ends with a `result` event (or an `error` event for a refusal)."""
    from rollwright.run.output import choose_output

    with choose_output(as_json=args.json, no_color=args.no_color) as out:
        try:
            code = run(out)
        except RollwrightError as exc:
            if args.json:
                out.event("error", str(exc), exit_code=exc.exit_code)
            raise
        if args.json:
            out.event("result", f"exit {code}", exit_code=code)
    return code


def stdin_value(prompt: str, secret: bool) -> str:
    """A value from a prompt on a terminal (hidden for a secret), else all of stdin less one final newline."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt) if secret else input(prompt)
    value = sys.stdin.read()
    return value[:-1] if value.endswith("\n") else value
