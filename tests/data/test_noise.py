"""Denoising corruptions: parsing, the statistics of Gaussian and salt-and-pepper noise, seeded draws."""

from __future__ import annotations

import pytest
import torch

from cnnkit.data import BatchTransform, Noise, dominant_classes


def test_parse_and_print() -> None:
    assert Noise.parse("gaussian:0.3") == Noise("gaussian", 0.3) and str(Noise.parse(" saltpepper:0.10 ")) == "saltpepper:0.1"
    for text, message in (("gauss:0.3", "must be KIND:AMOUNT"), ("gaussian", "must be KIND:AMOUNT"),
                          ("gaussian:abc", "the amount must be a number"),
                          ("saltpepper:0", r"the fraction of pixels must be in \(0, 1\]"),
                          ("gaussian:2", r"the standard deviation must be in \(0, 1\]")):
        with pytest.raises(ValueError, match=message):
            Noise.parse(text)


def test_gaussian_noise_is_clipped_and_has_the_asked_spread() -> None:
    grey = torch.full((64, 1, 32, 32), 0.5)
    noisy = Noise("gaussian", 0.1)(grey, torch.Generator().manual_seed(0))
    assert noisy.shape == grey.shape and abs(float((noisy - grey).std()) - 0.1) < 0.002
    black = Noise("gaussian", 0.3)(torch.zeros(64, 1, 32, 32), torch.Generator().manual_seed(0))
    assert float(black.min()) == 0.0 and float(black.max()) <= 1.0
    assert abs(float((black > 0).float().mean()) - 0.5) < 0.01  # the negative half is clipped away


def test_salt_and_pepper_hits_the_asked_fraction_of_pixels_in_every_channel() -> None:
    grey = torch.full((64, 3, 32, 32), 0.5)
    noisy = Noise("saltpepper", 0.2)(grey, torch.Generator().manual_seed(1))
    changed = (noisy != 0.5).any(1)  # (N, H, W)
    assert abs(float(changed.float().mean()) - 0.2) < 0.01
    assert ((noisy == 0.0).all(1) | (noisy == 1.0).all(1))[changed].all()  # all channels alike
    assert abs(float((noisy[:, 0] == 1.0).float().mean()) - 0.1) < 0.01


def test_draws_come_from_the_generator() -> None:
    x = torch.rand(4, 1, 8, 8)
    for kind in ("gaussian", "saltpepper"):
        noise = Noise(kind, 0.3)
        a, b = noise(x, torch.Generator().manual_seed(5)), noise(x, torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and not torch.equal(a, noise(x, torch.Generator().manual_seed(6)))
    with pytest.raises(ValueError, match=r"`x` must be a float batch \(N, C, H, W\)"):
        Noise("gaussian", 0.3)(torch.zeros(4, 1, 8, 8, dtype=torch.uint8))


def test_geometric_then_to_input_is_apply() -> None:
    images = torch.randint(0, 256, (6, 3, 12, 12), dtype=torch.uint8)
    masks = torch.randint(0, 4, (6, 12, 12), dtype=torch.uint8)
    transform = BatchTransform(mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.3), crop_padding=2, hflip=0.5, erase=0.5,
                               noise_std=0.1)
    x, moved = transform.apply(images, masks, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    placed, placed_masks = transform.geometric(images, masks, g)
    assert torch.equal(moved, placed_masks)  # type: ignore[arg-type]
    assert torch.equal(x, transform.to_input(placed.float() / 255, g))


def test_dominant_classes_ignore_the_background() -> None:
    maps = torch.zeros(3, 4, 4, dtype=torch.uint8)
    maps[0, :1] = 2  # 4 pixels of class 2, 12 of background
    maps[1, :2], maps[1, 3, :3] = 1, 3  # 8 of class 1, 3 of class 3
    assert dominant_classes(maps, 4).tolist() == [2, 1, 0]
