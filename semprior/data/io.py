"""Image I/O with PIL and numpy: any common file -> ``(3, H, W)`` float32 in ``[0, 1]`` and back.

Reading handles 8/16-bit PNG, JPEG, grayscale (``L``, ``I;16``, ``I``), palette (``P``), ``LA``,
RGBA, CMYK and EXIF orientation. Alpha is **dropped** by default (the colour channels are kept
as stored, the usual choice for photographs); ``alpha="composite"`` composites over a
background colour instead. Grayscale is repeated to three channels.

16-bit colour PNGs (RGB, RGBA, grey+alpha) are decoded by ``_read_png16`` here, because Pillow
(13.0) opens them as 8-bit ``RGB``. The libraries that decode them were checked (torch 2.14.1,
2026-12-02) and are not used:

- ``torchvision.io.decode_png(..., mode=ImageReadMode.UNCHANGED)`` (torchvision 0.29.1) returns
  ``uint16`` equal to ``_read_png16`` on every test file (13/13: colour types 0/2/4/6, all five
  row filters, our writer's files), but each call warns ``DeprecationWarning: The image decoding
  and encoding capabilities of TorchVision are deprecated since torchvision 0.29 and will be
  removed in a future release. They are superseded by the more complete decoders and encoders of
  TorchCodec (from torchcodec 0.16).`` A reader built on it would warn on every image, raise
  under ``-W error``, and break with the release that removes it.
- ``torchcodec.decoders.decode_png(..., mode="UNCHANGED", output_dtype="auto")`` (torchcodec
  0.17.0, no FFmpeg needed for images) is also equal on 13/13, without warnings; its default
  (``output_dtype=torch.uint8``) reduces 16-bit files to 8 bits. It would be a new dependency
  whose wheel must match the torch build, so it is not taken up here (docs/api/io.md).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from semprior._atomic import atomic_write, atomic_write_bytes

__all__ = [
    "IMAGE_EXTENSIONS",
    "WRITE_FORMATS",
    "ImageReadError",
    "list_images",
    "read_image",
    "read_metadata",
    "write_image",
]

#: Extensions [`list_images`][semprior.data.io.list_images] picks up (lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageReadError(ValueError):
    """A file could not be decoded as an image; the message names the file and the cause."""


def _to_float(arr: np.ndarray, path: Path, mode: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16 or mode.startswith("I;16"):
        return arr.astype(np.float32) / 65535.0
    if arr.dtype in (np.int32, np.uint32):
        # PIL opens 16-bit PNGs as mode "I" (int32) with values 0..65535
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageReadError(f"{path}: 32-bit integer image with values outside 0..65535 is not supported")
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype in (np.float32, np.float64):
        return np.clip(arr.astype(np.float32), 0.0, 1.0)
    raise ImageReadError(f"{path}: unsupported pixel type {arr.dtype} (PIL mode {mode!r})")


def read_image(
    path: str | os.PathLike,
    alpha: Literal["drop", "composite"] = "drop",
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> Tensor:
    """Read an image file into a ``(3, H, W)`` float32 tensor in ``[0, 1]``.

    EXIF orientation is applied (``PIL.ImageOps.exif_transpose``). 16-bit files keep their
    precision (divided by 65535). Palette and CMYK images are converted to RGB; grayscale is
    repeated to three channels.

    Args:
        path: file to read.
        alpha: ``"drop"`` (default) discards the alpha channel; ``"composite"`` blends the colour
            over ``background`` with the alpha as weight.
        background: RGB background in ``[0, 1]`` for ``alpha="composite"``.

    Raises:
        FileNotFoundError: the path does not exist.
        ImageReadError: the file exists but is not a decodable image (truncated, wrong format);
            the message names the file.

    Shape:
        - Output: `(3, H, W)`

    Examples:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> write_image(p, torch.rand(3, 4, 5))
        >>> read_image(p).shape
        torch.Size([3, 4, 5])
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if alpha not in ("drop", "composite"):
        raise ValueError(f"alpha must be 'drop' or 'composite', got {alpha!r}")
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"{path} is a directory, not an image file; use list_images() for folders")
    arr16 = None
    try:
        im: Image.Image
        with Image.open(path) as im:
            if _is_png16_color(path):
                # Pillow reduces 16-bit RGB(A)/LA PNGs to 8 bits: decode those ourselves
                orientation = im.getexif().get(0x0112, 1)
                arr16 = _exif_orient(_read_png16(path), orientation)
            else:
                im.load()
                im = ImageOps.exif_transpose(im)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read {path}: not a recognised image format ({exc})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"cannot read {path}: its header declares an image too large to decode safely ({exc}); if the file is "
            "genuine, raise PIL.Image.MAX_IMAGE_PIXELS, otherwise the header is corrupt"
        ) from exc
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise ImageReadError(f"cannot read {path}: the file is truncated or corrupt ({exc})") from exc

    if arr16 is not None:
        arr, mode = arr16.astype(np.float32) / 65535.0, "16-bit PNG"
    else:
        mode = im.mode
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if arr16 is None:
        if mode in ("P", "PA"):
            im = im.convert("RGBA" if has_alpha else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "1"):
            im = im.convert("RGB")
        mode = im.mode
        arr = _to_float(np.asarray(im), path, mode)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[2]
    if channels in (2, 4):  # LA / RGBA
        color, a = arr[:, :, :-1], arr[:, :, -1:]
        if alpha == "composite":
            bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
            if color.shape[2] == 1:
                color = np.repeat(color, 3, axis=2)
            color = color * a + bg * (1.0 - a)
        arr = color
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] != 3:
        raise ImageReadError(f"{path}: cannot map PIL mode {mode!r} with {arr.shape[2]} channels to RGB")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()


def write_image(
    path: str | os.PathLike,
    image: Tensor,
    bits: Literal[8, 16] = 8,
    quality: int = 95,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
) -> None:
    """Write a ``(3, H, W)`` (or ``(1, 3, H, W)``, or ``(1, H, W)`` grey) tensor in ``[0, 1]``.

    The format follows the suffix: ``.png`` (8- or 16-bit, ``bits``), ``.jpg``/``.jpeg`` or
    ``.webp`` (8-bit, ``quality`` 1-100). ``exif`` (raw EXIF bytes, e.g. from
    [`read_metadata`][semprior.data.io.read_metadata]) and ``icc_profile`` are embedded in 8-bit
    files. Values are clamped to ``[0, 1]`` and rounded. Parent folders are created.
    The file is written atomically (`semprior._atomic.atomic_write`: a temporary file in
    the same folder, fsync, rename), so a killed process never leaves a partial image under
    ``path``.

    Shape:
        - Input: `(3, H, W)`, `(1, 3, H, W)` or `(1, H, W)`

    Examples:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x16.png")
        >>> img = torch.rand(3, 8, 8)
        >>> write_image(p, img, bits=16)
        >>> bool((read_image(p) - img).abs().max() < 1e-4)
        True
    """
    from PIL import Image

    path = Path(path)
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    x = image.detach()
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(
                f"write_image writes one image; got a batch of {x.shape[0]} ({tuple(x.shape)}): loop over it"
            )
        x = x[0]
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"image must have shape (3, H, W) or (1, H, W), got {tuple(image.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"image must be float in [0, 1], got {x.dtype}; for uint8 use x.float() / 255")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"image to write to {path} contains NaN/Inf; clean it with torch.nan_to_num first")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ValueError(f"cannot write {path}: use a .png, .jpg or .jpeg suffix, or .webp")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be 1-100, got {quality}")
    if bits == 16 and suffix != ".png":
        raise ValueError(f"16-bit output needs PNG; {path} has suffix {suffix!r}")
    arr = x.float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    if bits == 16:
        # Pillow writes 16-bit PNG only for single-channel "I;16"; use numpy -> PNG via a raw encoder
        atomic_write_bytes(path, _encode_png16(np.round(arr * 65535.0).astype(np.uint16)))
        return
    q = np.round(arr * 255.0).astype(np.uint8)
    im = Image.fromarray(q[:, :, 0], mode="L") if q.shape[2] == 1 else Image.fromarray(q, mode="RGB")
    extra = {k: v for k, v in (("exif", exif), ("icc_profile", icc_profile)) if v}
    with atomic_write(path) as f:
        if suffix == ".png":
            im.save(f, format="PNG", **extra)
        else:
            im.save(f, format=WRITE_FORMATS[suffix], quality=int(quality), **extra)


#: suffix -> Pillow format of the files `write_image` writes
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def read_metadata(path: str | os.PathLike) -> tuple[bytes | None, bytes | None]:
    """``(exif, icc_profile)`` of an image file, ready for `write_image`; either is ``None`` when absent.

    The EXIF orientation tag is reset to 1 (upright), because [`read_image`][semprior.data.io.read_image]
    has already applied it to the pixels; every other tag (camera, lens, exposure, date, GPS) is kept.
    """
    from PIL import Image

    with Image.open(path) as im:
        icc = im.info.get("icc_profile") or None
        exif = im.getexif()
        if not exif:
            return None, icc
        if exif.get(0x0112, 1) != 1:  # Orientation
            exif[0x0112] = 1
        return exif.tobytes(), icc


def _encode_png16(q: np.ndarray) -> bytes:
    """Minimal 16-bit PNG writer (greyscale or RGB, no interlace), zlib-compressed."""
    h, w, c = q.shape
    color_type = 0 if c == 1 else 2
    raw = q.astype(">u2").reshape(h, w * c)
    rows = np.concatenate([np.zeros((h, 1), dtype=np.uint8), raw.view(np.uint8).reshape(h, w * c * 2)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _is_png16_color(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(29)
    # signature, IHDR length+tag, width, height, bit depth, colour type
    return (
        len(head) >= 26 and head[:8] == _PNG_SIG and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 4, 6)
    )


def _read_png16(path: Path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG to ``(H, W, C)`` uint16 (C = 1, 2, 3 or 4).

    Files with only None/Sub/Up row filters are unfiltered row by row (vectorised); files with
    Average/Paeth rows by an anti-diagonal wavefront (about 0.4 s of CPU per megapixel).

    The tests check it value for value against libpng (``torchvision.io.decode_png``, every
    filter and colour type). Why torchvision's or torchcodec's decoder is not used instead: see
    the module docstring.
    """
    data = path.read_bytes()
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise ImageReadError(f"cannot read {path}: the file is truncated (chunk {tag!r} cut short)")
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + length
    else:
        raise ImageReadError(f"cannot read {path}: the file is truncated (no IEND chunk)")
    if ihdr is None or not idat:
        raise ImageReadError(f"cannot read {path}: PNG without IHDR or image data")
    w, h, depth, ctype, _, _, interlace = ihdr
    if interlace:
        raise ImageReadError(
            f"cannot read {path}: interlaced (Adam7) 16-bit colour PNGs are not supported; re-save it non-interlaced"
        )
    c = _PNG_CHANNELS[ctype]
    bpp, stride = 2 * c, 2 * c * w
    raw = zlib.decompress(b"".join(idat))
    if len(raw) < h * (stride + 1):
        raise ImageReadError(f"cannot read {path}: the file is truncated (image data too short)")
    rows = np.frombuffer(raw, dtype=np.uint8, count=h * (stride + 1)).reshape(h, stride + 1)
    ftypes = rows[:, 0]
    if int(ftypes.max(initial=0)) > 4:
        raise ImageReadError(f"cannot read {path}: corrupt PNG (unknown row filter {int(ftypes.max())})")
    if bool((ftypes >= 3).any()):
        out = _unfilter_wavefront(rows, h, w, bpp)
    else:
        out = np.zeros((h, stride), dtype=np.uint8)
        prev = np.zeros(stride, dtype=np.uint8)
        for r in range(h):
            ftype, line = ftypes[r], rows[r, 1:]
            if ftype == 0:
                cur = line
            elif ftype == 1:
                cur = (np.cumsum(line.reshape(w, bpp).astype(np.int64), axis=0) % 256).astype(np.uint8).reshape(-1)
            else:
                cur = line + prev  # Up; uint8 wraps modulo 256
            out[r] = cur
            prev = out[r]
    return out.view(">u2").reshape(h, w, c).astype(np.uint16)


def _unfilter_wavefront(rows: np.ndarray, h: int, w: int, bpp: int) -> np.ndarray:
    """Undo PNG row filters 0-4 for all rows at once, one anti-diagonal of pixels per step.

    Pixel ``(r, x)`` depends on ``(r, x-1)``, ``(r-1, x)`` and ``(r-1, x-1)`` only, so every pixel
    on the diagonal ``r + x = d`` can be reconstructed together once diagonal ``d - 1`` is done.
    """
    ft = rows[:, 0].astype(np.int16)
    filt = rows[:, 1:].reshape(h, w, bpp).astype(np.int16)
    rec = np.zeros((h + 1, w + 1, bpp), dtype=np.int16)  # zero row/column = "outside the image"
    for d in range(h + w - 1):
        r = np.arange(max(0, d - w + 1), min(h - 1, d) + 1)
        x = d - r
        a, b, c = rec[r + 1, x], rec[r, x + 1], rec[r, x]
        t = ft[r][:, None]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, paeth], 0)
        rec[r + 1, x + 1] = (filt[r, x] + pred) & 255
    return rec[1:, 1:].astype(np.uint8).reshape(h, w * bpp)


def _exif_orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to ``(H, W, C)`` as ``PIL.ImageOps.exif_transpose`` does."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(int(orientation), ops[1])(arr))


def list_images(folder: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        NotADirectoryError: ``folder`` is a file.

    Examples:
        >>> import tempfile
        >>> list_images(tempfile.mkdtemp())
        []
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder of images")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)
