"""Classic kernels on real photographs: edge responses where edges are, identity, blur, the PNG and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit import filters
from cnnkit.cli import main

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "camera.png"
    Image.fromarray(skimage_data.camera()).save(path)
    return path


@pytest.fixture(scope="module")
def chelsea(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    Image.fromarray(skimage_data.chelsea()).save(path)
    return path


def test_registry_has_the_classic_kernels() -> None:
    for name in ("vertical-edge", "horizontal-edge", "sobel-x", "sobel-y", "scharr-x", "scharr-y", "prewitt-x", "prewitt-y",
                 "laplacian-4", "laplacian-8", "box-blur", "box-blur-5x5", "gaussian-blur", "gaussian-blur-5x5", "sharpen",
                 "emboss", "identity"):
        kernel = filters.get_kernel(name)
        assert kernel.description and "\n" not in kernel.description
    assert filters.get_kernel("vertical-edge").array.tolist() == [[1, 0, -1]] * 3  # the slides' kernel
    for name in ("box-blur", "box-blur-5x5", "gaussian-blur", "gaussian-blur-5x5", "identity", "sharpen"):
        assert filters.get_kernel(name).array.sum() == pytest.approx(1)
    with pytest.raises(ValueError, match=r"unknown kernel. Did you mean sobel-y, sobel-x, vertical-edge-sobel\?.*Received: kernel='sobel'"):
        filters.get_kernel("sobel")
    with pytest.raises(ValueError, match=r"a kernel named 'identity' is already registered"):
        filters.register("identity", [[1]], "again")


def test_sobel_x_responds_to_a_vertical_edge_not_to_a_flat_image() -> None:
    edge = np.zeros((32, 32))
    edge[:, 16:] = 200
    flat = np.full((32, 32), 200.0)
    on_edge, on_flat = filters.apply_kernel(edge, "sobel-x"), filters.apply_kernel(flat, "sobel-x")
    assert np.abs(on_edge).mean() > 20 and np.abs(on_flat).max() == 0
    assert np.abs(on_edge[:, 15:17]).min() == 800  # 200*(1 + 2 + 1) across the edge
    assert np.abs(filters.apply_kernel(edge, "sobel-y")).max() == 0  # a vertical edge has no vertical derivative


def test_sobel_x_on_camera_matches_skimage_up_to_scale_and_sign(camera: Path) -> None:
    skfilters = pytest.importorskip("skimage.filters")
    image = np.asarray(Image.open(camera), dtype=np.float64)
    result = filters.filter_image(camera, "sobel-x")
    ours = result.response[1:-1, 1:-1]
    theirs = skfilters.sobel_v(image / 255)[1:-1, 1:-1]
    assert ours.std() > 0 and len(np.unique(result.display)) > 50
    correlation = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
    assert abs(correlation) > 0.999
    scale = np.abs(ours).max() / np.abs(theirs).max()
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs) * scale, atol=1e-6 * np.abs(ours).max())


def test_identity_returns_the_image_and_blur_reduces_variance(chelsea: Path, tmp_path: Path) -> None:
    grey = np.asarray(Image.open(chelsea).convert("L"))
    same = filters.filter_image(chelsea, "identity", tmp_path / "same.png")
    assert same.scale == "clip" and np.array_equal(np.asarray(Image.open(tmp_path / "same.png")), grey)
    colour = filters.filter_image(chelsea, "identity", per_channel=True)
    assert np.array_equal(colour.display, np.asarray(Image.open(chelsea)))
    for name in ("box-blur", "box-blur-5x5", "gaussian-blur-5x5"):
        assert filters.filter_image(chelsea, name).response.var() < grey.astype(float).var()


def test_padding_modes_and_display_scales() -> None:
    flat = np.full((8, 8), 100.0)
    assert np.abs(filters.apply_kernel(flat, "laplacian-4", padding="reflect")).max() == 0
    zeros = filters.apply_kernel(flat, "laplacian-4", padding="zeros")
    assert zeros[0, 0] == -200 and zeros[4, 4] == 0  # zero padding makes a border appear
    r = np.array([[-10.0, 0.0], [5.0, 10.0]])
    assert filters.to_display(r, "abs").tolist() == [[255, 0], [128, 255]]
    assert filters.to_display(r, "minmax").tolist() == [[0, 128], [191, 255]]
    assert filters.to_display(r * 30, "clip").tolist() == [[0, 0], [150, 255]]
    with pytest.raises(ValueError, match=r"`padding` must be one of reflect, zeros. Received: padding='same'"):
        filters.apply_kernel(flat, "identity", padding="same")  # type: ignore[arg-type]


def test_command_lists_filters_and_writes_png(camera: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["filter", "--list"]) == 0
    assert "sobel-x" in capsys.readouterr().out
    out = tmp_path / "edges.png"
    assert main(["filter", str(camera), "--kernel", "sobel-x", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scale"] == "abs" and data["padding"] == "reflect" and data["out"] == str(out)
    assert Image.open(out).size == (512, 512)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    assert main(["filter", str(bad), "--kernel", "sobel-x"]) == 2
    assert "cnnkit: error: `image`: cannot be decoded as an image" in capsys.readouterr().err
