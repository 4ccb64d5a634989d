# PYTHON_ARGCOMPLETE_OK  (argcomplete's global activation completes only scripts whose module says this)
"""The one entry point: `rollwright <command>`, a module per noun (spec, deploy, sign, app, checks, logs, execute, lock,
audit, history, database, env, target, lab).

Exit codes: 0 ok, 1 the deploy (or a lab/run action) failed and the fleet is on one healthy version,
2 bad input (spec, arguments), 3 failed and the fleet is split or unhealthy (a human must look).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from rollwright.cli import (
    app,
    audit,
    checks,
    database,
    deploy,
    env,
    execute,
    history,
    lab,
    lock,
    logs,
    sign,
    spec,
    target,
)
from rollwright.cli.common import Parser
from rollwright.errors import RollwrightError
from rollwright.run.output import ClosedPipeSafe

# --help lists them so
NOUNS = (spec, deploy, sign, app, checks, logs, execute, lock, audit, history, database, env, target, lab)


def _version() -> str:
    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return f"rollwright {of('rollwright')} (ansible-core {of('ansible-core')}, ansible-runner {of('ansible-runner')})"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rollwright",
        description="Deploy spec in, plain Ansible project out; safe rolling deploys.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 ok, 1 failed (the fleet is on one healthy version), 2 bad input (spec or arguments), "
               "3 failed and the fleet is split or unhealthy (a human must look).\n"
               "Run `rollwright COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for noun in NOUNS:
        noun.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A reader that closes stdout early (`| head`) only loses the rest of the output: the
    command runs to its end (a deploy still records) and exits with its own code, without a traceback."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions (only then: argcomplete's import costs ~15 ms)
        import argcomplete

        argcomplete.autocomplete(parser, always_complete_options=False)  # prints the completions and exits
    args = parser.parse_args(argv)
    if args.command is None:  # no command: the command list
        parser.print_help()
        return 0
    stdout = sys.stdout
    sys.stdout = ClosedPipeSafe(stdout)  # type: ignore[assignment]
    try:
        return int(args.func(args) or 0)
    except RollwrightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
