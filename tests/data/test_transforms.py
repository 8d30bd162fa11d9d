"""Batch transforms: shapes kept, repeatable by generator, exact flips and shifts, normalisation statistics."""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.data import (
    BatchTransform,
    channel_stats,
    draw_shapes,
    gaussian_noise,
    hflip,
    normalize,
    random_crop,
    random_erasing,
    to_float,
)
from cnnkit.data.transforms import crop_at


def _batch(n: int = 16, c: int = 3, h: int = 10, w: int = 12) -> torch.Tensor:
    return torch.randint(1, 256, (n, c, h, w), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "op",
    [
        lambda x, g: random_crop(x, 3, g),
        lambda x, g: hflip(x, 0.5, g),
        lambda x, g: random_erasing(to_float(x), 1.0, generator=g),
        lambda x, g: gaussian_noise(to_float(x), 0.1, g),
        lambda x, g: BatchTransform(crop_padding=2, hflip=0.5, erase=0.5, noise_std=0.1)(x, g),
    ],
    ids=["crop", "flip", "erase", "noise", "pipeline"],
)
def test_shape_kept_and_repeatable_by_generator(op) -> None:  # type: ignore[no-untyped-def]
    x = _batch()
    a, b, c = op(x, _g(1)), op(x, _g(1)), op(x, _g(2))
    assert a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_is_exactly_a_flip_per_sample() -> None:
    x = _batch(64)
    assert torch.equal(hflip(x, 1.0, _g()), x.flip(-1)) and torch.equal(hflip(x, 0.0, _g()), x)
    out = hflip(x, 0.5, _g())
    flipped = [bool(torch.equal(o, i.flip(-1))) for o, i in zip(out, x, strict=True)]
    kept = [bool(torch.equal(o, i)) for o, i in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # each sample is one or the other
    assert 10 < sum(flipped) < 54


def test_crop_with_padding_shifts_content() -> None:
    x = _batch(4)
    pad = 2
    same = torch.full((4,), pad)
    assert torch.equal(crop_at(x, pad, same, same), x)
    down = crop_at(x, pad, torch.zeros(4, dtype=torch.long), same)  # window starts 2 rows above: content moves down
    assert torch.equal(down[:, :, pad:], x[:, :, :-pad]) and (down[:, :, :pad] == 0).all()
    right = crop_at(x, pad, same, torch.zeros(4, dtype=torch.long))
    assert torch.equal(right[..., pad:], x[..., :-pad]) and (right[..., :pad] == 0).all()


def test_random_crop_is_a_shift_of_each_sample() -> None:
    x, pad = _batch(32), 3
    out = random_crop(x, pad, _g())
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    shifts = set()
    for i in range(32):
        matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if torch.equal(out[i], padded[i, :, dy : dy + 10, dx : dx + 12])]
        assert matches, f"sample {i} is not a shifted window"
        shifts.add(matches[0])
    assert len(shifts) > 5  # offsets differ per sample


def test_erasing_draws_one_rectangle_per_sample() -> None:
    x = to_float(_batch(50)) + 1.0  # no zeros before erasing
    out = random_erasing(x, 1.0, scale=(0.1, 0.3), generator=_g())
    for sample in out:
        erased = (sample == 0).all(0)  # (H, W)
        rows, cols = erased.any(1).nonzero()[:, 0], erased.any(0).nonzero()[:, 0]
        box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # a filled rectangle
        assert 0.05 * 120 <= int(erased.sum()) <= 0.45 * 120
    assert torch.equal(random_erasing(x, 0.0, generator=_g()), x)


def test_noise_has_the_asked_std() -> None:
    x = torch.zeros(64, 3, 32, 32)
    noise = gaussian_noise(x, 0.2, _g())
    assert abs(float(noise.mean())) < 0.01 and abs(float(noise.std()) - 0.2) < 0.01
    with pytest.raises(TypeError, match=r"`x` must be a float tensor"):
        gaussian_noise(_batch(), 0.1)


def test_normalisation_gives_zero_mean_unit_std() -> None:
    images = draw_shapes(300, seed=0).images
    mean, std = channel_stats(images)
    reference = images.double().div(255)
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), reference.mean((0, 2, 3)))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), reference.std((0, 2, 3), unbiased=False))
    x = BatchTransform(mean=mean, std=std, hflip=1.0)(images, train=False)  # eval: no augmentation
    assert x.dtype == torch.float32
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.equal(x, normalize(to_float(images), mean, std))


def test_masks_move_with_their_images() -> None:
    ds = draw_shapes(40, seed=1)
    assert ds.masks is not None
    as_image = ds.masks[:, None].to(torch.uint8).repeat(1, 3, 1, 1) * 255
    transform = BatchTransform(crop_padding=4, hflip=0.5)
    moved_images, moved_masks = transform.apply(as_image, ds.masks, _g(5))
    assert moved_masks is not None and torch.equal(moved_images[:, 0] > 0.5, moved_masks)


def test_config_round_trip_and_checks() -> None:
    transform = BatchTransform(mean=(0.5,), std=(0.25,), crop_padding=2, hflip=0.5, erase=0.25, noise_std=0.05)
    assert transform.augments and not BatchTransform(mean=(0.5,), std=(0.25,)).augments
    assert BatchTransform.from_dict(json.loads(json.dumps(transform.to_dict()))) == transform
    with pytest.raises(ValueError, match=r"unknown keys \['flip'\]; known keys are"):
        BatchTransform.from_dict({"flip": 0.5})
    with pytest.raises(ValueError, match=r"`crop_padding` must be an int. Received: crop_padding=2.5"):
        BatchTransform.from_dict({"crop_padding": 2.5})
    with pytest.raises(ValueError, match=r"`hflip` is a probability in \[0, 1\]. Received: hflip=1.5"):
        BatchTransform(hflip=1.5)
    with pytest.raises(ValueError, match=r"`mean` and `std` go together"):
        BatchTransform(mean=(0.5,))
    with pytest.raises(ValueError, match=r"normalisation has 1 channels, the batch 3"):
        transform(_batch())
    with pytest.raises(TypeError, match=r"expects uint8 batches"):
        transform(to_float(_batch(c=1)))
