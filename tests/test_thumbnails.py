"""datacarto.thumbnails: image shapes, PNG thumbnails, image files, the rows of a data file."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from datacarto.errors import InputError
from datacarto.thumbnails import (MAX_IMAGE_BYTES, ImageSource, data_uri, describe_image_row,
                                  encode_png_grey, image_file_uri, image_shape, parse_image_shape,
                                  pixel_columns, scale_grey, thumbnail_png)


def decode_png_grey(png: bytes) -> np.ndarray:
    """A minimal reader for 8-bit greyscale, filter-0 PNGs (what encode_png_grey writes),
    checking every chunk's CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        tag, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body)
        if tag == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 0)
            size = (h, w)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    assert size is not None
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(size[0], size[1] + 1)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:]


# ------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize(("columns", "shape"), [
    ([f"px_{j}" for j in range(784)], (28, 28)),
    ([f"px_{j}" for j in range(64)], (8, 8)),
    ([f"pixel{j}" for j in range(1, 1025)], (32, 32)),   # 1-based, like Kaggle's MNIST CSV
    ([f"px_{j}" for j in range(49)], None),               # 7 x 7: too small to guess
    ([f"px_{j}" for j in range(780)], None),              # not a square
    ([f"f{j}" for j in range(63)] + ["g"], None),         # not all pixel columns
    ([f"px_{j}" for j in range(1, 64)] + ["px_0"], None),  # indices out of order
    (["age", "height"], None),
])
def test_image_shape_from_column_names(columns, shape) -> None:
    assert image_shape(columns) == shape


def test_image_shape_given_must_match_the_columns() -> None:
    cols = [f"c{j}" for j in range(600)]
    assert image_shape(cols, "20,30") == (20, 30)
    assert image_shape(cols, "20x30") == (20, 30)
    assert image_shape(cols, (30, 20)) == (30, 20)
    with pytest.raises(InputError, match=r"^--image-shape 28,28 needs 784 feature columns; the data has 600\.$"):
        image_shape(cols, "28,28")


@pytest.mark.parametrize("text", ["28", "28,28,1", "a,b", "0,5", "-1,4", "", "28,"])
def test_a_bad_image_shape_names_the_option(text: str) -> None:
    with pytest.raises(InputError, match=r"^--image-shape .*expected HEIGHT,WIDTH as two positive integers"):
        parse_image_shape(text)
    assert parse_image_shape(None) is None


def test_pixel_columns_finds_the_longest_indexed_run() -> None:
    assert pixel_columns(["id", "x0", "x1", "px_0", "px_1", "px_2", "label"]) == ["px_0", "px_1", "px_2"]
    assert pixel_columns(["a", "b"]) == []


# ------------------------------------------------------------------------------ PNG
@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_png_round_trip(image: np.ndarray) -> None:
    assert np.array_equal(decode_png_grey(encode_png_grey(image)), image)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.data())
def test_thumbnail_is_the_min_max_scaled_row_upscaled(h: int, w: int, data: st.DataObject) -> None:
    values = data.draw(arrays(np.float64, h * w, elements=st.floats(-1e6, 1e6)))
    got = decode_png_grey(thumbnail_png(values, (h, w)))
    factor = max(1, -(-56 // max(h, w)))
    assert got.shape == (h * factor, w * factor)
    small = got[::factor, ::factor]
    assert np.array_equal(np.repeat(np.repeat(small, factor, 0), factor, 1), got)  # nearest neighbour
    lo, hi = values.min(), values.max()
    expected = np.zeros(h * w) if hi == lo else np.round((values - lo) / (hi - lo) * 255)
    assert np.array_equal(small.ravel(), expected.astype(np.uint8))


def test_digits_thumbnail_matches_its_pixels() -> None:
    pytest.importorskip("sklearn")
    from datacarto.datasets import digits

    frame = digits().frame
    cols = [c for c in frame.columns if c.startswith("px_")]
    assert image_shape(cols) == (8, 8)
    row = frame.loc[0, cols].to_numpy(np.float64)
    png = decode_png_grey(thumbnail_png(row, (8, 8)))
    assert png.shape == (56, 56)
    assert np.array_equal(png[::7, ::7], scale_grey(row, (8, 8)))
    assert png[::7, ::7].max() == 255 and png[::7, ::7].min() == 0


def test_scale_grey_handles_constant_and_missing_values() -> None:
    assert (scale_grey(np.full(4, 7.0), (2, 2)) == 0).all()
    assert scale_grey([np.nan, 0, 5, 10], (2, 2)).tolist() == [[0, 0], [128, 255]]
    assert (scale_grey([np.nan] * 4, (2, 2)) == 0).all()


def test_describe_image_row_is_short() -> None:
    values = np.zeros(784)
    values[:392] = 255
    assert describe_image_row(values, (28, 28)) == "[28x28 image, mean 0.50]"
    assert describe_image_row(np.arange(64), (8, 8)) == "[8x8 image, mean 0.50]"


def test_data_uri() -> None:
    uri = data_uri(b"\x89PNGx")
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == b"\x89PNGx"


# ------------------------------------------------------------------------------ files
def test_image_file_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    png = encode_png_grey(np.eye(4, dtype=np.uint8) * 255)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.PNG").write_bytes(png)
    (tmp_path / "big.jpg").write_bytes(b"\xff" * (MAX_IMAGE_BYTES + 1))
    (tmp_path / "notes.txt").write_text("hi")
    assert image_file_uri("imgs/a.PNG", tmp_path) == data_uri(png)
    assert image_file_uri("imgs/missing.png", tmp_path) is None
    assert image_file_uri("notes.txt", tmp_path) is None
    assert image_file_uri("big.jpg", tmp_path) is None
    assert image_file_uri(None, tmp_path) is None
    monkeypatch.chdir(tmp_path)
    assert image_file_uri("imgs/a.PNG") == data_uri(png)


# ------------------------------------------------------------------------------ data files
def test_image_source_of_pixel_columns_read_as_text() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 100))
    frame = pd.DataFrame(pixels.astype(str), columns=[f"px_{j}" for j in range(100)])
    frame["label"] = "a"
    source = ImageSource.find(frame)
    assert source is not None and source.kind == "pixels" and source.shape == (10, 10)
    uris = source.uris([3, -1, 0])
    assert uris[1] is None
    got = decode_png_grey(base64.b64decode(uris[0].split(",", 1)[1]))
    assert np.array_equal(got[::6, ::6], scale_grey(pixels[3], (10, 10)))
    assert source.describe(0) == describe_image_row(pixels[0], (10, 10))


def test_image_source_with_a_given_shape_and_recorded_columns() -> None:
    frame = pd.DataFrame(np.arange(24).reshape(2, 12), columns=[f"f{j}" for j in range(12)])
    assert ImageSource.find(frame) is None  # 12 columns: no square image
    source = ImageSource.find(frame, given_shape="3,4")
    assert source is not None and source.shape == (3, 4)
    cols = ["f0", "f1", "f2", "f3"]
    assert ImageSource.find(frame, feature_columns=cols, given_shape="2,2").columns == tuple(cols)
    with pytest.raises(InputError, match="--image-shape 5,5 needs 25 feature columns; the data has 12"):
        ImageSource.find(frame, given_shape="5,5")


def test_image_source_of_a_path_column(tmp_path: Path) -> None:
    png = encode_png_grey(np.full((3, 3), 9, dtype=np.uint8))
    (tmp_path / "a.png").write_bytes(png)
    frame = pd.DataFrame({"image": ["a.png", "gone.png"], "label": ["x", "y"]})
    assert ImageSource.find(frame, text_column="image") is None  # relative to nothing known
    source = ImageSource.find(frame, text_column="image", base=tmp_path)
    assert source is not None and source.kind == "files" and source.describe(0) is None
    assert source.uris([0, 1]) == [data_uri(png), None]
    text = pd.DataFrame({"text": ["a fine film", "a.png"]})
    assert ImageSource.find(text, text_column="text", base=tmp_path) is None
