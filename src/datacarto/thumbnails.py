"""Small pictures of image examples: pixel rows and image files as inline PNG data URIs.

A dataset of images reaches datacarto in one of two ways:

* **pixel columns**: one numeric column per pixel, e.g. ``px_0 .. px_783`` (28 x 28). The
  shape is read from the column names (one prefix, indices 0..n-1 or 1..n, n a square of a
  side of at least :data:`MIN_SIDE`), or given by the user as ``--image-shape H,W``;
* **image paths**: a text column whose values name existing ``.png``, ``.jpg``, ``.gif`` or
  ``.webp`` files (relative to the data file's folder or the working directory).

A pixel row becomes a grey PNG: min-max scaled, ``g = round(255 (v - min) / (max - min))``
(a constant row is black), upscaled by nearest neighbour by the integer factor
``ceil(THUMB_PX / max(H, W))`` (28 x 28 -> 56 x 56, 8 x 8 -> 56 x 56). The PNG is written here
(zlib, no image library). An image file is embedded as it is (up to
:data:`MAX_IMAGE_BYTES`). Pages show both as ``data:`` URIs, so nothing is fetched.
"""

from __future__ import annotations

import base64
import math
import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .report.source import LoadedData
    from .runmeta import RunMeta

__all__ = ["IMAGE_TYPES", "MIN_SIDE", "THUMB_PX", "ImageSource", "data_uri", "describe_image_row",
           "encode_png_grey", "image_file_uri", "image_shape", "images_of", "parse_image_shape",
           "pixel_columns", "scale_grey", "thumbnail_png"]

#: Smallest side of a square image guessed from column names (8 x 8 = 64 columns).
MIN_SIDE = 8
#: Thumbnails are upscaled to at least this many pixels on their longer side.
THUMB_PX = 56
#: Image files larger than this are not embedded (a page would grow too much).
MAX_IMAGE_BYTES = 256 * 1024
#: Image file types shown, by suffix.
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}
_INDEXED = re.compile(r"^(.*?)(\d+)$")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ shape
def parse_image_shape(text: Any, *, option: str = "--image-shape") -> tuple[int, int] | None:
    """``"28,28"`` (or ``"28x28"``, or a pair of ints) -> ``(28, 28)``; ``None`` -> ``None``."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = re.split(r"\s*[,xX]\s*", text.strip())
    elif isinstance(text, (tuple, list)):
        parts = [str(p) for p in text]
    else:
        parts = [str(text)]
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"{option} {text!r}: expected HEIGHT,WIDTH as two positive integers, "
                         "e.g. 28,28.")
    return int(parts[0]), int(parts[1])


def pixel_columns(columns: Sequence[str]) -> list[str]:
    """The longest run of columns named PREFIX + index, indices 0..n-1 or 1..n in file order.

    >>> pixel_columns(["id", "px_0", "px_1", "px_2", "label"])
    ['px_0', 'px_1', 'px_2']
    """
    best: list[str] = []
    run: list[str] = []
    prefix, expected = None, -1
    for name in [str(c) for c in columns] + [""]:
        m = _INDEXED.match(name)
        if m and prefix is not None and m.group(1) == prefix and int(m.group(2)) == expected:
            run.append(name)
            expected += 1
            continue
        if len(run) > len(best):
            best = run
        if m and int(m.group(2)) in (0, 1):
            prefix, expected, run = m.group(1), int(m.group(2)) + 1, [name]
        else:
            prefix, expected, run = None, -1, []
    return best


def image_shape(columns: Sequence[str], given: Any = None, *,
                option: str = "--image-shape") -> tuple[int, int] | None:
    """The (height, width) of the image the feature ``columns`` form, or ``None``.

    With ``given`` (``"H,W"`` or a pair), ``H * W`` must equal the number of columns. Without,
    the columns must all be pixel columns (:func:`pixel_columns`) and their number ``n`` a
    square with ``sqrt(n) >= MIN_SIDE``: 784 -> (28, 28), 64 -> (8, 8), 100 -> (10, 10).

    Raises
    ------
    InputError
        When ``given`` is malformed or does not match the number of columns (naming ``option``).
    """
    n = len(columns)
    shape = parse_image_shape(given, option=option)
    if shape is not None:
        if shape[0] * shape[1] != n:
            raise InputError(f"{option} {shape[0]},{shape[1]} needs {shape[0] * shape[1]} feature "
                             f"columns; the data has {n}.")
        return shape
    side = math.isqrt(n)
    if side < MIN_SIDE or side * side != n or len(pixel_columns(columns)) != n:
        return None
    return side, side


# ------------------------------------------------------------------------------ pixels -> PNG
def scale_grey(values: Any, shape: tuple[int, int]) -> np.ndarray:
    """One row of pixel values as a (H, W) uint8 grey image, min-max scaled (NaN -> 0)."""
    arr = np.asarray(values, dtype=np.float64).reshape(shape)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(shape, dtype=np.uint8)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    span = hi - lo
    scaled = np.where(finite, (arr - lo) / span if span > 0 else 0.0, 0.0)
    return np.round(scaled * 255.0).astype(np.uint8)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png_grey(image: np.ndarray) -> bytes:
    """A 2-D uint8 array as an 8-bit greyscale PNG (filter 0 on every row, zlib level 9)."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim != 2 or img.size == 0:
        raise InputError(f"encode_png_grey: expected a non-empty 2-D image; got shape {img.shape}.")
    h, w = img.shape
    raw = np.hstack([np.zeros((h, 1), dtype=np.uint8), img]).tobytes()
    return (_PNG_MAGIC + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def thumbnail_png(row_values: Any, shape: tuple[int, int], *, size: int = THUMB_PX) -> bytes:
    """The PNG thumbnail of one pixel row: grey, min-max scaled, upscaled nearest-neighbour
    by ``ceil(size / max(H, W))`` (at least 1)."""
    grey = scale_grey(row_values, shape)
    factor = max(1, math.ceil(size / max(shape)))
    return encode_png_grey(np.repeat(np.repeat(grey, factor, axis=0), factor, axis=1))


def data_uri(content: bytes, mime: str = "image/png") -> str:
    """``data:MIME;base64,...`` for ``content``."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def describe_image_row(row_values: Any, shape: tuple[int, int]) -> str:
    """A short description of a pixel row for console text, instead of every pixel value.

    The mean is of the min-max scaled row (0 = all at the row's minimum, 1 = all at its
    maximum): ``"[28x28 image, mean 0.31]"``.
    """
    grey = scale_grey(row_values, shape)
    return f"[{shape[0]}x{shape[1]} image, mean {grey.mean() / 255.0:.2f}]"


# ------------------------------------------------------------------------------ files
def _image_path(value: Any, base: Path | None) -> Path | None:
    if not isinstance(value, str) or Path(value).suffix.lower() not in IMAGE_TYPES:
        return None
    path = Path(value)
    for candidate in ([base / path] if base is not None and not path.is_absolute() else []) + [path]:
        if candidate.is_file():
            return candidate
    return None


def image_file_uri(value: Any, base: str | os.PathLike[str] | None = None) -> str | None:
    """A data URI of the image file ``value`` names, or ``None`` when it names none.

    ``value`` is a path ending in one of :data:`IMAGE_TYPES`, relative to ``base`` or the
    working directory; files over :data:`MAX_IMAGE_BYTES` are skipped.
    """
    path = _image_path(value, None if base is None else Path(base))
    if path is None or path.stat().st_size > MAX_IMAGE_BYTES:
        return None
    return data_uri(path.read_bytes(), IMAGE_TYPES[path.suffix.lower()])


# ------------------------------------------------------------------------------ a data file
def _numeric(frame: pd.DataFrame) -> np.ndarray:
    try:
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):  # cells read as text that are not all numbers
        return frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class ImageSource:
    """Where the rows of a data frame have a picture: pixel columns or an image-path column."""

    frame: pd.DataFrame
    columns: tuple[str, ...] = ()
    shape: tuple[int, int] | None = None
    path_column: str | None = None
    base: Path | None = None
    _cache: dict[int, str | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def find(cls, frame: pd.DataFrame, *, feature_columns: Sequence[str] | None = None,
             text_column: str | None = None, given_shape: Any = None,
             base: str | os.PathLike[str] | None = None,
             option: str = "--image-shape") -> ImageSource | None:
        """The images of ``frame``, or ``None`` when its rows are not images.

        Pixel columns are ``feature_columns`` when given (a run records them), else the
        frame's :func:`pixel_columns`. ``given_shape`` (``--image-shape``) must match their
        number. Without pixels, a ``text_column`` whose first non-empty value names an
        existing image file makes the rows image paths.
        """
        names = [str(c) for c in frame.columns]
        columns = list(feature_columns) if feature_columns else pixel_columns(names)
        shape = image_shape(columns, given_shape, option=option) if columns or given_shape else None
        if shape is not None:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise InputError(f"{option}: the data has no column {missing[0]!r}.")
            return cls(frame, tuple(columns), shape, base=None if base is None else Path(base))
        if text_column is not None and text_column in frame.columns:
            root = None if base is None else Path(base)
            first = frame[text_column].dropna().head(1).tolist()
            if first and _image_path(first[0], root) is not None:
                return cls(frame, path_column=text_column, base=root)
        return None

    @property
    def kind(self) -> str:
        """``"pixels"`` or ``"files"``."""
        return "pixels" if self.shape is not None else "files"

    def uris(self, rows: Sequence[int]) -> list[str | None]:
        """The data URI of each frame row (``None`` for a row < 0 or without an image)."""
        rows = [int(r) for r in rows]
        todo = sorted({r for r in rows if r >= 0 and r not in self._cache})
        if todo and self.shape is not None:
            pixels = _numeric(self.frame.iloc[todo][list(self.columns)])
            for r, values in zip(todo, pixels):
                self._cache[r] = data_uri(thumbnail_png(values, self.shape))
        elif todo:
            values = self.frame[self.path_column].iloc[todo].tolist()
            for r, value in zip(todo, values):
                self._cache[r] = image_file_uri(value, self.base)
        return [self._cache.get(r) if r >= 0 else None for r in rows]

    def describe(self, row: int) -> str | None:
        """:func:`describe_image_row` of a pixel row (``None`` for image files)."""
        if self.shape is None:
            return None
        values = _numeric(self.frame.iloc[[row]][list(self.columns)])[0]
        return describe_image_row(values, self.shape)


def images_of(data: LoadedData, meta: RunMeta | None = None, given_shape: Any = None, *,
              option: str = "--image-shape") -> ImageSource | None:
    """The images of a run's data file: the run's recorded feature columns (or the file's
    pixel columns) as pixels, else its text column as image paths (relative to the file)."""
    recorded = meta.source.feature_columns if meta is not None and meta.source is not None else None
    return ImageSource.find(data.frame, feature_columns=recorded, text_column=data.source.text_column,
                            given_shape=given_shape, base=data.source.path.parent, option=option)
