"""The home page's gallery shows what the default shipped model does today.

``tools/make_thumbnails.py`` (``make gallery``) writes the thumbnails, ``gallery.md`` and
``gallery.json``, which records the sha256 of the weights it used. When the shipped default model
changes, these tests fail until the script is run again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "docs" / "assets" / "home"
RERUN = "run `make gallery` (or .venv/bin/python tools/make_thumbnails.py) and commit docs/assets/home"


def _record() -> dict:
    return json.loads((HOME / "gallery.json").read_text(encoding="utf-8"))


def test_gallery_was_made_by_the_default_shipped_weights():
    from semprior.models import get_model_entry
    from semprior.models.factory import pretrained_path as shipped_path
    from semprior.models.io import WEIGHTS_NAME

    rec = _record()
    # the model `semprior enhance photo.jpg -o out/` uses when no model is named
    default = "deepspg"
    assert rec["model"] == default, f"the gallery shows {rec['model']!r}, not the default {default!r}; {RERUN}"
    assert rec["tag"] == get_model_entry(default).shipped_tags[0], f"the gallery shows weights {rec['tag']!r}; {RERUN}"
    want = hashlib.sha256((shipped_path(default) / WEIGHTS_NAME).read_bytes()).hexdigest()
    assert rec["weights_sha256"] == want, f"the gallery was made by other weights than the shipped {default}; {RERUN}"


def test_gallery_text_and_thumbnails_match_the_record():
    rec = _record()
    text = (HOME / "gallery.md").read_text(encoding="utf-8")
    assert f"`{rec['model']}` (shipped weights `{rec['tag']}`)" in text
    for photo in rec["photos"]:
        for side in ("before", "after"):
            assert (HOME / f"{photo['thumbnail']}_{side}.jpg").is_file()
        assert f"{photo['mean_before']:.3f} → {photo['mean_after']:.3f}" in text, f"{photo['file']}: {RERUN}"
