"""``semprior --help`` / ``--version`` import no sub-command (and so not torch); ``semprior models`` lists what
ships."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import semprior

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
from semprior.cli.main import main
try:
    rc = main({argv!r})
except SystemExit as exc:
    rc = exc.code
heavy = sorted(m for m in ("torch", "numpy", "kornia", "semprior.models", "semprior.cli.enhance") if m in sys.modules)
print("HEAVY", heavy, "RC", rc)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], [], ["--traceback", "--help"]])
def test_top_level_imports_no_torch(argv):
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("HEAVY [] RC"), (last, out.stderr)
    if argv == ["--version"]:
        assert f"semprior {semprior.__version__}" in out.stdout
    else:
        for name in ("enhance", "eval", "train", "weights", "models"):
            assert name in out.stdout  # every sub-command is listed with its help line


def test_subcommand_help_still_has_its_arguments(capsys):
    from semprior.cli.main import main

    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    assert "--checkpoint" in capsys.readouterr().out


def test_models_lists_models_tags_and_recipes(capsys):
    from semprior.cli.main import main
    from semprior.models.registry import list_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith(" ")}
    for name in list_models():
        assert name in rows
    assert "lolv1-cpu (default)" in rows["deepspg"] and "classical" in rows["lime"]
    assert "deepspg:lolv1-cpu" in out and "deepspg_lolv1" in out and "cpu/retinexformer_lolv1" in out
    assert main(["models", "--names"]) == 0
    assert capsys.readouterr().out.split() == list_models()


def test_unknown_command_is_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "semprior.cli.main", "enhnace"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert out.returncode == 2 and "invalid choice: 'enhnace'" in out.stderr
