import io as _io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from semprior.data.io import ImageReadError, _exif_orient, list_images, read_image, write_image


def _rgb(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_png8_roundtrip_exact(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    assert x.shape == (3, 5, 7) and x.dtype == torch.float32
    np.testing.assert_array_equal((x.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8), arr)
    write_image(tmp_path / "b.png", x)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


def test_png16_rgb_roundtrip_keeps_precision(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 6, 9, generator=g)
    write_image(tmp_path / "x16.png", x, bits=16)
    y = read_image(tmp_path / "x16.png")
    assert (y - x).abs().max() < 1 / 65535  # 8-bit would be ~2e-3
    assert Image.open(tmp_path / "x16.png").size == (9, 6)  # valid PNG for Pillow too


def _png16_with_filters(arr16: np.ndarray, color_type: int, filters=(0, 1, 2, 3, 4)) -> bytes:
    """Encode a 16-bit PNG cycling through the given row filter types."""
    h, w, c = arr16.shape
    bpp = 2 * c
    rows = arr16.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, -1).astype(np.int64)
    out = bytearray()
    prev = np.zeros(rows.shape[1], dtype=np.int64)
    for r in range(h):
        cur, ft = rows[r], filters[r % len(filters)]
        a = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        cc = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        if ft == 0:
            pred = np.zeros_like(cur)
        elif ft == 1:
            pred = a
        elif ft == 2:
            pred = prev
        elif ft == 3:
            pred = (a + prev) // 2
        else:
            p = a + prev - cc
            pa, pb, pc = abs(p - a), abs(p - prev), abs(p - cc)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, cc))
        out.append(ft)
        out += ((cur - pred) % 256).astype(np.uint8).tobytes()
        prev = cur

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("filters", [(0, 1, 2, 3, 4), (2, 1, 0), (4,), (3,)])
@pytest.mark.parametrize("color_type,c", [(2, 3), (6, 4), (4, 2)])
def test_png16_all_row_filters(tmp_path, color_type, c, filters):
    arr = np.random.default_rng(1).integers(0, 65536, size=(10, 6, c), dtype=np.uint16)
    (tmp_path / "f.png").write_bytes(_png16_with_filters(arr, color_type, filters))
    x = read_image(tmp_path / "f.png").numpy().transpose(1, 2, 0)
    color = arr[..., :3] if c >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    np.testing.assert_array_equal(np.round(x * 65535).astype(np.uint16), color)


def _torchvision_png16(path):
    """libpng's decoding through torchvision (uint16 since 0.21; deprecated since 0.29), or skip."""
    import warnings

    tvio = pytest.importorskip("torchvision.io")
    if not hasattr(tvio, "decode_png"):
        pytest.skip("this torchvision has no decode_png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        t = tvio.decode_png(tvio.read_file(str(path)), mode=tvio.ImageReadMode.UNCHANGED)
    if t.dtype != torch.uint16:
        pytest.skip(f"torchvision decodes 16-bit PNG as {t.dtype} here (uint16 needs torchvision >= 0.21)")
    return t.to(torch.int32).numpy().transpose(1, 2, 0).astype(np.uint16)


@pytest.mark.parametrize("filters", [(0, 1, 2, 3, 4), (4,), (3,)])
@pytest.mark.parametrize("color_type,c", [(2, 3), (6, 4), (4, 2)])
def test_png16_decoder_equals_libpng(tmp_path, color_type, c, filters):
    """Our 16-bit PNG decoder gives exactly libpng's values (via torchvision), every filter and colour type."""
    arr = np.random.default_rng(3).integers(0, 65536, size=(37, 23, c), dtype=np.uint16)
    (tmp_path / "f.png").write_bytes(_png16_with_filters(arr, color_type, filters))
    ref = _torchvision_png16(tmp_path / "f.png")
    np.testing.assert_array_equal(ref, arr)  # the oracle reads the file as written
    x = np.round(read_image(tmp_path / "f.png").numpy().transpose(1, 2, 0) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(x, ref[..., :3] if c >= 3 else np.repeat(ref[..., :1], 3, axis=2))
    write_image(tmp_path / "w.png", torch.rand(3, 19, 29, generator=torch.Generator().manual_seed(c)), bits=16)
    ours = np.round(read_image(tmp_path / "w.png").numpy().transpose(1, 2, 0) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(ours, _torchvision_png16(tmp_path / "w.png"))


def test_gray16_png(tmp_path):
    arr = np.random.default_rng(2).integers(0, 65536, size=(4, 5), dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    x = read_image(tmp_path / "g16.png")
    assert x.shape == (3, 4, 5)
    np.testing.assert_array_equal(np.round(x[0].numpy() * 65535).astype(np.uint16), arr)
    torch.testing.assert_close(x[0], x[2])


def test_jpeg_grayscale_palette_cmyk(tmp_path):
    arr = _rgb(8, 8)
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    assert read_image(tmp_path / "a.jpg").shape == (3, 8, 8)
    Image.fromarray(arr[..., 0]).save(tmp_path / "g.png")
    g = read_image(tmp_path / "g.png")
    torch.testing.assert_close(g[0], torch.from_numpy(arr[..., 0]).float() / 255)
    torch.testing.assert_close(g[0], g[1])
    pal = Image.fromarray(arr).quantize(16)
    pal.save(tmp_path / "p.png")
    expect = np.asarray(pal.convert("RGB")).astype(np.float32) / 255
    np.testing.assert_allclose(read_image(tmp_path / "p.png").numpy().transpose(1, 2, 0), expect)
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").shape == (3, 8, 8)


def test_rgba_drop_and_composite(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = [[0, 255], [128, 255]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    dropped = read_image(tmp_path / "a.png")
    torch.testing.assert_close(dropped[0], torch.full((2, 2), 200 / 255))
    comp = read_image(tmp_path / "a.png", alpha="composite", background=(0.0, 0.0, 1.0))
    assert comp[0, 0, 0].item() == pytest.approx(0.0) and comp[2, 0, 0].item() == pytest.approx(1.0)
    assert comp[0, 0, 1].item() == pytest.approx(200 / 255)
    assert comp[0, 1, 0].item() == pytest.approx(200 / 255 * 128 / 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil(tmp_path, orientation):
    arr = _rgb(4, 6, seed=orientation)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=100)
    expect = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.jpg"))).astype(np.float32) / 255
    got = read_image(tmp_path / "o.jpg").numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, expect)
    if orientation in (5, 6, 7, 8):
        assert got.shape[:2] == (6, 4)
    # the numpy path used for 16-bit PNGs agrees with PIL's
    np.testing.assert_array_equal(
        _exif_orient(arr, orientation), np.asarray(ImageOps.exif_transpose(_with_exif(arr, orientation)))
    )


def _with_exif(arr, orientation):
    im = Image.fromarray(arr)
    buf = _io.BytesIO()
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(buf, format="PNG", exif=exif.tobytes())
    buf.seek(0)
    return Image.open(buf)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="trunc.png.*truncated or corrupt"):
        read_image(tmp_path / "trunc.png")
    assert issubclass(ImageReadError, ValueError)
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="batch of 2"):
        write_image(tmp_path / "a.png", torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="16-bit output needs PNG"):
        write_image(tmp_path / "a.jpg", torch.rand(3, 4, 4), bits=16)
    with pytest.raises(ValueError, match=r"\.png, \.jpg or \.jpeg"):
        write_image(tmp_path / "a.gif", torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="NaN/Inf"):
        write_image(tmp_path / "a.png", torch.full((3, 2, 2), float("nan")))


def test_jpeg_write_and_list_images(tmp_path):
    write_image(tmp_path / "sub" / "b.jpg", torch.rand(1, 3, 8, 8))
    write_image(tmp_path / "sub" / "a.png", torch.rand(3, 8, 8))
    (tmp_path / "sub" / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path / "sub")] == ["a.png", "b.jpg"]
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "sub" / "a.png")
