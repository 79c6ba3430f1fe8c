"""The ``datacarto`` command line (docs/contract.md §5).

A thin dispatcher: each subcommand lives in its own module under :mod:`datacarto.commands`
and defines ``add_parser(subparsers)``, which registers its options and sets ``func``.
Any :class:`~datacarto.errors.DatacartoError` (or an OS error such as a missing file) becomes
one line on stderr and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from . import commands
from ._version import __version__
from .errors import DatacartoError

EXIT_USAGE_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datacarto",
        description="Dataset cartography: map a dataset by how a model learns it, find label errors, "
                    "select training data.")
    parser.add_argument("--version", action="version", version=f"datacarto {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(sub)
    return parser


def _one_line(text: object) -> str:
    """Messages are one line on stderr, whatever the message holds (a path with a newline...)."""
    return " ".join(str(text).split("\n")).replace("\r", " ")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    print(f"datacarto: warning: {_one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 on success, 2 on a user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        if not args.debug:  # a warning is one line "datacarto: warning: ...", not Python's two
            warnings.showwarning = _show_warning
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except DatacartoError as err:
        if args.debug:
            raise
        print(f"datacarto: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    except BrokenPipeError:
        # `datacarto flag RUN | head`: the reader left; silence the flush at exit like other tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as err:
        if args.debug:
            raise
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"datacarto: error: {_one_line(f'{where}{err.strerror or err}')}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    except KeyboardInterrupt:
        print("datacarto: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
