"""Image folders built here with Pillow: colour and grey, bad files with and without skipping, bad layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from data_helpers import colour_folder, write_image
from PIL import Image

from cnnkit.data import load


def test_rgb_folder_any_format_any_size(tmp_path: Path) -> None:
    splits = load(f"folder:{colour_folder(tmp_path / 'imgs')}", image_size=16)
    train = splits.train
    assert train.images.shape == (6, 3, 16, 16) and splits.class_names == ("blue", "red")
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert train.files is not None and train.files[5].endswith("sub/c.webp")  # nested folders are read
    red, blue = train.images[train.labels == 1].float(), train.images[train.labels == 0].float()
    assert (red[:, 0] > 240).all() and (red[:, 2] < 15).all() and (blue[:, 2] > 240).all()
    assert splits.test is None and splits.eval_split is None


def test_grey_images_load_with_one_channel(tmp_path: Path) -> None:
    for name, value in (("dark", 20), ("light", 230)):
        for i in range(2):
            write_image(tmp_path / name / f"{i}.png", value, mode="L")
    splits = load(f"folder:{tmp_path}", image_size=(8, 12))
    assert splits.input_shape == (1, 8, 12)
    assert splits.train.images[splits.train.labels == 0].unique().tolist() == [20]
    assert load(f"folder:{tmp_path}", grayscale=False).input_shape == (3, 64, 64)


def test_colour_folder_as_grey_uses_luma(tmp_path: Path) -> None:
    splits = load(f"folder:{colour_folder(tmp_path)}", image_size=8, grayscale=True)
    red = splits.train.images[splits.train.labels == 1]
    assert splits.input_shape == (1, 8, 8) and abs(float(red.float().mean()) - 0.299 * 255) < 3


def test_corrupt_file_is_an_error_or_skipped(tmp_path: Path) -> None:
    colour_folder(tmp_path)
    bad = tmp_path / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"image file '.*red/broken.png' cannot be decoded as an image.*skip_bad_images=True"):
        load(f"folder:{tmp_path}")
    splits = load(f"folder:{tmp_path}", skip_bad_images=True)
    assert len(splits.train) == 6 and len(splits.skipped) == 1 and "broken.png: cannot be decoded" in splits.skipped[0]
    assert splits.train.skipped == splits.skipped


def test_a_stray_non_image_file_is_left_out_with_a_warning_naming_it(tmp_path: Path) -> None:
    colour_folder(tmp_path)
    images = len(load(f"folder:{tmp_path}").train)
    (tmp_path / "blue" / "notes.txt").write_text("not a picture")
    (tmp_path / "blue" / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored silently
    with pytest.warns(UserWarning, match=r"left out 1 file\(s\) that are not images .*blue/notes.txt"):
        splits = load(f"folder:{tmp_path}")
    assert len(splits.train) == images and splits.skipped == (f"{tmp_path / 'blue' / 'notes.txt'}: not an image file",)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colour_folder(tmp_path)
    write_image(tmp_path / "red" / "huge.png", (255, 0, 0), size=(100, 100))  # 10,000 pixels; the others have at most 3,072
    for limit in (4000, 6000):  # Pillow raises above twice the limit and only warns between the limit and twice it
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(ValueError, match=r"huge.png' refused as a possible decompression bomb.*MAX_IMAGE_PIXELS"):
            load(f"folder:{tmp_path}")
    assert "decompression bomb" in load(f"folder:{tmp_path}", skip_bad_images=True).skipped[0]


def test_bad_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"image folder '.*missing' does not exist"):
        load(f"folder:{tmp_path / 'missing'}")
    file = write_image(tmp_path / "one.png", 0, mode="L")
    with pytest.raises(ValueError, match=r"is a file, not a folder"):
        load(f"folder:{file}")
    with pytest.raises(ValueError, match=r"must hold one sub-folder per class.*Received: no sub-folders, 1 image files directly inside"):
        load(f"folder:{tmp_path}")
    write_image(tmp_path / "only" / "a.png", 0, mode="L")
    with pytest.raises(ValueError, match=r"at least two class folders.*Received: one class folder, 'only'"):
        load(f"folder:{tmp_path}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"class folder '.*empty' holds no image; put images in it or remove it"):
        load(f"folder:{tmp_path}")
    with pytest.raises(ValueError, match=r"`folder:` needs a path"):
        load("folder:")


def test_class_emptied_by_skipping(tmp_path: Path) -> None:
    colour_folder(tmp_path)
    (tmp_path / "green").mkdir()
    (tmp_path / "green" / "x.png").write_bytes(b"not png")
    with pytest.raises(ValueError, match=r"green' has no readable image left after skipping bad files. Received: 1 files skipped"):
        load(f"folder:{tmp_path}", skip_bad_images=True)


def test_train_test_layout(tmp_path: Path) -> None:
    colour_folder(tmp_path / "train")
    write_image(tmp_path / "test" / "red" / "t.png", (255, 0, 0))
    splits = load(f"folder:{tmp_path}", image_size=8)
    assert splits.test is not None and splits.test_official and splits.eval_split == "test"
    assert splits.test.labels.tolist() == [1]  # a class of the training split, found by name
    write_image(tmp_path / "test" / "green" / "g.png", (0, 255, 0))
    with pytest.raises(ValueError, match=r"class folder 'green' is not a class of the training split \['blue', 'red'\]"):
        load(f"folder:{tmp_path}")


def test_val_split_of_a_folder(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        for i in range(10):
            write_image(tmp_path / cls / f"{i}.png", i * 20, mode="L")
    splits = load(f"folder:{tmp_path}", image_size=4, val_split=0.3, seed=1)
    assert splits.val is not None and splits.eval_split == "val"
    assert splits.val.class_counts() == [3, 3] and splits.train.class_counts() == [7, 7]
    assert splits.val.files is not None and splits.train.files is not None
    assert not set(splits.val.files) & set(splits.train.files)
    assert torch.equal(load(f"folder:{tmp_path}", image_size=4, val_split=0.3, seed=1).val.labels, splits.val.labels)  # type: ignore[union-attr]


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (20, 10), (255, 0, 0))
    image.paste((0, 0, 255), (10, 0, 20, 10))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    (tmp_path / "a").mkdir()
    image.save(tmp_path / "a" / "photo.png", exif=exif)
    write_image(tmp_path / "b" / "x.png", (0, 0, 0))
    photo = load(f"folder:{tmp_path}", image_size=(20, 10)).train.images[0].float()  # (3, H=20, W=10)
    assert (photo[0, :8] > 200).all() and (photo[2, 12:] > 200).all()  # red on top, blue below
