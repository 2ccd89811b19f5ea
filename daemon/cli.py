"""The `scanwatch` command line.

Each command lives in its own module under ``daemon/commands/`` with two functions:
``register(subparsers, common)`` adds its parser (and sets ``handler``), and the handler does the
work. Those modules import only the standard library at module level, so ``scanwatch --help``
stays fast: apprise, SQLModel and httpx are imported by the handlers that need them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from daemon import __version__
from daemon.errors import ConfigError, ScanwatchError

# Order is the order of `scanwatch --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "run", "runs", "scan", "status", "scan_log", "history", "findings", "report",
    "ignore", "alerts", "notify", "schedule", "config", "doctor", "sim", "demo", "webhook",
    "lineage", "intel", "vex", "web", "cluster",
)

LOG_LEVELS = ("debug", "info", "warning", "error")


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts, wherever they stand on the line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="configuration file (default: $SCANWATCH_CONFIG, else /etc/scanwatch/config.toml)",
    )
    common.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="log verbosity on stderr (default: info)",
    )
    return common


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only``, a module of ``COMMAND_MODULES``) just that
    command's part of it: the parser of every command costs 0.1 s of each run."""
    parser = argparse.ArgumentParser(
        prog="scanwatch",
        description=(
            "Keeps Harbor registries scanned on schedules, under rate limits, keeps the history "
            "of every report, and sends alerts that say what to fix."
        ),
        epilog="Run `scanwatch COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"scanwatch {__version__}")
    parser.add_argument("--config", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=None, help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    common = common_options()
    for name in (only,) if only else COMMAND_MODULES:
        module = importlib.import_module(f"daemon.commands.{name}")
        module.register(subparsers, common)
    return parser


def command_module(argv: Sequence[str]) -> str | None:
    """The module of the command ``argv`` names (its first word that is neither an option nor
    an option's value), or None where the whole parser is needed: no command, an unknown one,
    or help or the version asked before it."""
    words = iter(argv)
    for word in words:
        if word in ("--config", "--log-level"):
            next(words, None)
        elif word in ("-h", "--help", "--version"):
            return None
        elif not word.startswith("-"):
            name = word.replace("-", "_")
            return name if name in COMMAND_MODULES else None
    return None


def _print_error(message: str) -> None:
    print(f"scanwatch: {message}", file=sys.stderr)


def _unexpected(exc: BaseException) -> str:
    """One line for a failure no command turned into a ScanwatchError (secrets scrubbed)."""
    from daemon.log import scrub

    origin = type(exc).__module__.split(".")[0]
    what = "database error" if origin in ("sqlalchemy", "sqlite3", "psycopg") else "error"
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = scrub(text[0]) if text else type(exc).__name__
    return f"{what}: {detail} ({type(exc).__name__}; --log-level debug shows where)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(command_module(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # A group without its subcommand (`scanwatch config`) shows that group's help.
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return 2
    from daemon import log

    # A command may choose its own default verbosity (the demo keeps stderr quiet).
    log.configure(args.log_level or getattr(args, "default_log_level", "info"))
    try:
        code = int(handler(args) or 0)
        sys.stdout.flush()  # a reader that left shows here, inside the handling below
        return code
    except ConfigError as exc:
        _print_error(str(exc))
        if len(exc.problems) > 1:
            for line in exc.problems:
                print(f"  {line}", file=sys.stderr)
        return exc.exit_code
    except ScanwatchError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `scanwatch findings | head`: the reader left; that is not an error (as for other
        # tools). Point stdout at /dev/null so the interpreter's last flush is quiet too.
        _quiet_stdout()
        return 0
    except Exception as exc:  # noqa: BLE001 (the last resort: one line, never a traceback)
        _print_error(_unexpected(exc))
        log.get(__name__).debug("unexpected_error", exc_info=True)
        return 1


def _quiet_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
