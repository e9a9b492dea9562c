"""Why semprior decodes 16-bit colour PNGs itself (semprior/data/io.py docstring), kept true by tests.

- reading a 16-bit PNG emits no warning (a reader built on torchvision 0.29's deprecated decoder
  would warn on every image);
- torchvision's decoder is still deprecated: if a release drops the warning, this fails and the
  choice should be revisited; if a release removes the decoder, it skips.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from semprior.data.io import read_image, write_image


def test_reading_png16_emits_no_warning(tmp_path):
    x = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "x16.png", x, bits=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = read_image(tmp_path / "x16.png")
    np.testing.assert_array_equal(np.round(y.numpy() * 65535), np.round(x.numpy() * 65535))


def test_torchvision_png_decoder_is_still_deprecated(tmp_path):
    tvio = pytest.importorskip("torchvision.io")
    if not hasattr(tvio, "decode_png"):
        pytest.skip("this torchvision no longer has decode_png")
    write_image(tmp_path / "x16.png", torch.rand(3, 4, 5), bits=16)
    with pytest.warns(DeprecationWarning, match="deprecated since torchvision"):
        t = tvio.decode_png(tvio.read_file(str(tmp_path / "x16.png")), mode=tvio.ImageReadMode.UNCHANGED)
    assert t.dtype == torch.uint16
