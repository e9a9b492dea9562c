"""mkdocs hook: replace ``<!-- semprior-cli-help NAME -->`` with the live ``semprior NAME --help`` text.

The options on the CLI page therefore always match the parser: nothing is copied by hand. Listed
under ``hooks:`` in mkdocs.yml. Importing the sub-command modules is cheap (no torch).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

MARKER = re.compile(r"<!-- semprior-cli-help (\S+) -->")


def _help(name: str) -> str:
    from semprior.cli.main import COMMANDS

    if name not in COMMANDS:
        raise ValueError(f"<!-- semprior-cli-help {name} -->: no such command; known: {sorted(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    os.environ["COLUMNS"] = "84"  # argparse wraps to the terminal; fix the width so the page is stable
    parser = argparse.ArgumentParser(prog=f"semprior {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    return parser.format_help()


def on_config(config, **kwargs):
    root = str(Path(config.config_file_path).resolve().parent)  # this checkout's semprior, not an installed one
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, **kwargs) -> str:
    return MARKER.sub(lambda m: f"```text\n{_help(m.group(1)).rstrip()}\n```", markdown)
