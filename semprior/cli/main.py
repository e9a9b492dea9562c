"""``semprior`` command line: a thin dispatcher to one module per sub-command.

Each sub-command module ``semprior.cli.<name>`` defines ``add_arguments(parser)`` and
``run(args) -> int``. Errors the user can fix (``SempriorError``, ``ValueError``, ``FileNotFoundError``,
``ImportError``) print one readable line and exit non-zero; ``--traceback`` shows the full trace.

Only the sub-command being run is imported: ``semprior --help`` and ``semprior --version`` import
neither torch nor any model module.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap
from collections.abc import Mapping
from types import ModuleType

#: the one name -> module table for sub-commands
COMMANDS: dict[str, tuple[str, str]] = {
    "weights": ("semprior.cli.weights", "list known pretrained weights and check a weights directory"),
    "eval": ("semprior.cli.eval", "evaluate an enhancer on a paired folder (PSNR/SSIM table + grid)"),
    "enhance": ("semprior.cli.enhance", "enhance image files or folders of any size"),
    "train": ("semprior.cli.train", "train a model from a YAML config"),
    "app": ("semprior.cli.app", "try the enhancers in a local web page (upload, compare, download)"),
    "models": ("semprior.cli.models", "list the models, their shipped weights (tags) and the shipped training recipes"),
}

#: the fenced block after "Examples:" in a sub-command module's docstring
EXAMPLES = re.compile(r"^\s*Examples:\s*\n\s*```\w*\n(.*?)\n\s*```", re.M | re.S)


def _command_of(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option), or ``None``."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(available: Mapping[str, ModuleType]) -> argparse.ArgumentParser:
    """The parser; only the sub-commands in ``available`` (name -> imported module) get their arguments.

    The others are listed by name and help line only, so ``semprior --help`` and ``--version``
    import no sub-command module (and so not torch).
    """
    parser = argparse.ArgumentParser(prog="semprior", description="Semantic-prior low-light image enhancement.")
    from semprior._version import __version__

    parser.add_argument("--version", action="version", version=f"semprior {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_line) in COMMANDS.items():
        p = sub.add_parser(
            name, help=help_line, description=help_line, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module = available.get(name)
        if module is None:
            continue
        module.add_arguments(p)
        found = EXAMPLES.search(getattr(module, "__doc__", "") or "")  # the module's examples end --help
        examples = "examples:\n" + textwrap.indent(textwrap.dedent(found.group(1)), "  ") if found else None
        p.epilog = "\n\n".join(x for x in (examples, p.epilog) if x)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    available = {command: importlib.import_module(COMMANDS[command][0])} if command else {}
    parser = build_parser(available)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(available[args.command].run(args) or 0)
    except KeyboardInterrupt:
        print("semprior: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, ImportError, OSError, RuntimeError) as exc:
        if args.traceback:
            raise
        print(f"semprior {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
