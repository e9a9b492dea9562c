"""semprior.app without a browser: the model menu, the upload limits, the enhancement path, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from semprior.app import app_models, check_upload, enhance_file
from semprior.data.io import read_image, write_image


def test_menu_offers_shipped_learned_models_first_then_classical():
    names = app_models()
    assert names[:2] == ["deepspg", "retinexformer"]
    assert {"lime", "gamma", "he", "clahe"} <= set(names)
    assert not {"identity", "sllen", "cugd", "deepspg-large"} & set(names)  # no weights ship for these


def test_check_upload_limits(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(p)
    check_upload(p, max_megapixels=0.03)
    with pytest.raises(ValueError, match=r"300×100 = 0.0 megapixels; the app takes up to 0.02\. Resize it"):
        check_upload(p, max_megapixels=0.02)
    with pytest.raises(ValueError, match=r"the file is 0.0 MB; the app takes up to 1e-06 MB\. Use `semprior enhance`"):
        check_upload(p, max_upload_mb=1e-6)
    (tmp_path / "y.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="y.png is not an image file PIL can read"):
        check_upload(tmp_path / "y.png")


def test_enhance_file_is_the_cli_path(tmp_path):
    from semprior.cli.main import main

    write_image(tmp_path / "in.png", torch.rand(3, 24, 40, generator=torch.Generator().manual_seed(0)) * 0.2)
    from semprior.app import _build_model

    enhance_file(_build_model("lime"), tmp_path / "in.png", tmp_path / "app.png")
    assert (
        main(["enhance", str(tmp_path / "in.png"), "-o", str(tmp_path / "cli"), "--model", "lime", "--no-progress"])
        == 0
    )
    assert torch.equal(read_image(tmp_path / "app.png"), read_image(tmp_path / "cli" / "in.png"))


def test_app_without_gradio_names_the_extra(monkeypatch):
    import semprior.app as app

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(
        ImportError, match=r"needed for the web app \(semprior app\)\); install it with: pip install 'semprior\[app\]'"
    ):
        app.build_app()


def test_cli_help_does_not_import_gradio():
    code = (
        "import sys\nimport semprior.cli.main, semprior.cli.app\n"
        "print('imports', 'torch' in sys.modules, 'gradio' in sys.modules)\n"
        "try: semprior.cli.main.main(['app', '--help'])\nexcept SystemExit: pass\n"
        "print('help', 'gradio' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "imports False False"  # the CLI modules import neither torch nor gradio
    assert lines[-1] == "help False"  # --help builds every parser without gradio
    assert "127.0.0.1" in done.stdout and "examples:" in done.stdout


@pytest.mark.parametrize("command", ["enhance", "eval", "train", "weights", "app"])
def test_every_command_help_shows_its_examples(command, capsys):
    from semprior.cli.main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    examples = out.split("\nexamples:\n", 1)
    assert len(examples) == 2, f"`semprior {command} --help` shows no examples"
    assert f"  semprior {command}" in examples[1] or "-m semprior" in examples[1]
