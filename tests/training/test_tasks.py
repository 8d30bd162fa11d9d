"""Tasks, their metrics against scikit-learn and scikit-image, task defaults and the networks each task accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit import network
from cnnkit.data import BatchTransform, Noise
from cnnkit.evaluation import measures
from cnnkit.tasks import Classify, Denoise, Reconstruct, Segment, make_task
from cnnkit.training import TrainConfig


def test_classify_computes_what_the_loop_always_did() -> None:
    images = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8)
    labels = torch.randint(0, 3, (8,))
    transform = BatchTransform(mean=(0.4,), std=(0.3,), crop_padding=1, noise_std=0.1)
    x, y = Classify().prepare(images, labels, transform, torch.Generator().manual_seed(2))
    assert torch.equal(x, transform(images, torch.Generator().manual_seed(2))) and y is labels
    logits = torch.randn(8, 3)
    assert torch.equal(Classify().loss(logits, labels, 0.1), F.cross_entropy(logits, labels, label_smoothing=0.1))
    assert Classify().score(logits, labels) == int((logits.argmax(1) == labels).sum())


@pytest.mark.parametrize("channels_last", [False, True])
def test_inputs_prepared_once_equal_the_batches_prepared_one_by_one(channels_last: bool) -> None:
    from cnnkit.runtime import choose

    runtime = choose("cpu", "fp32", channels_last)
    images = torch.randint(0, 256, (10, 3, 5, 5), dtype=torch.uint8)
    labels = torch.randint(0, 3, (10,))
    plain = BatchTransform(mean=(0.4, 0.5, 0.6), std=(0.3, 0.2, 0.25))
    prepared = Classify().prepare_once(images, labels, plain, runtime)
    assert prepared is not None and prepared[1] is labels
    assert prepared[0].is_contiguous(memory_format=torch.channels_last) == channels_last
    index = torch.tensor([7, 2, 9])
    batch, _ = Classify().prepare(images[index], labels[index], plain, None)
    assert torch.equal(prepared[0][index], batch)
    # anything drawn at random, or a target made from the image, is prepared batch by batch
    assert Classify().prepare_once(images, labels, BatchTransform(mean=(0.4,) * 3, std=(0.3,) * 3, hflip=0.5), runtime) is None
    assert Reconstruct().prepare_once(images, labels, plain, runtime) is None
    assert Segment().prepare_once(images, labels, plain, runtime) is None


def test_segment_moves_masks_with_their_images() -> None:
    images = torch.randint(0, 256, (16, 1, 10, 10), dtype=torch.uint8)
    masks = (images[:, 0] > 127).to(torch.uint8)  # the mask is a function of the pixel
    transform = BatchTransform(crop_padding=3, hflip=0.5)
    x, y = Segment().prepare(images, masks, transform, torch.Generator().manual_seed(0))
    assert y.dtype == torch.int64 and not torch.equal(y, masks.long())  # augmented...
    padded = x[:, 0] == 0  # crop padding: zero pixels, whose mask is 0 as well
    assert torch.equal(y, (x[:, 0] > 127 / 255).long()) and (y[padded] == 0).all()  # ...but still aligned


def test_denoise_pairs_the_noisy_input_with_the_clean_target_and_repeats_its_draws() -> None:
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    task, transform = make_task("denoise", "gaussian:0.2"), BatchTransform(hflip=0.5)
    x, y = task.prepare(images, torch.zeros(4), transform, torch.Generator().manual_seed(9))
    again, _ = task.prepare(images, torch.zeros(4), transform, torch.Generator().manual_seed(9))
    assert torch.equal(x, again) and x.min() >= 0 and x.max() <= 1
    flipped = torch.where(y == images.float() / 255, 0, 1).sum((1, 2, 3)) > 0  # the images the flip moved
    assert torch.allclose(y, torch.where(flipped[:, None, None, None], images.flip(-1), images).float() / 255)
    assert 0.1 < float((x - y).std()) < 0.2  # gaussian:0.2, less where clipping cut it
    assert isinstance(task, Denoise) and task.noise == Noise("gaussian", 0.2) and not task.normalises
    clean, target = Reconstruct().prepare(images, torch.zeros(4), BatchTransform(), None)
    assert torch.equal(clean, target) and torch.equal(target, images.float() / 255)


def test_segmentation_scores_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, jaccard_score

    rng = np.random.default_rng(0)
    truth = torch.from_numpy(rng.integers(0, 4, (5, 9, 9)))
    predicted = torch.where(torch.from_numpy(rng.random((5, 9, 9)) < 0.7), truth, torch.from_numpy(rng.integers(0, 3, (5, 9, 9))))
    scores = measures.segmentation_scores(measures.confusion(predicted, truth, 5))  # class 4 occurs nowhere
    t, p = truth.flatten().numpy(), predicted.flatten().numpy()
    iou = jaccard_score(t, p, labels=[0, 1, 2, 3], average=None)
    dice = f1_score(t, p, labels=[0, 1, 2, 3], average=None)
    np.testing.assert_allclose(scores.per_class_iou[:4], iou)  # type: ignore[arg-type]
    np.testing.assert_allclose(scores.per_class_dice[:4], dice)  # type: ignore[arg-type]
    assert scores.per_class_iou[4] is None and scores.per_class_dice[4] is None
    assert scores.mean_iou == pytest.approx(iou.mean()) and scores.dice == pytest.approx(dice.mean())
    assert scores.pixel_accuracy == pytest.approx(accuracy_score(t, p))


def test_dice_loss_is_zero_for_a_sure_right_answer_and_large_for_a_wrong_one() -> None:
    truth = torch.randint(0, 3, (2, 6, 6))
    sure = F.one_hot(truth, 3).permute(0, 3, 1, 2).float() * 50
    assert float(measures.dice_loss(sure, truth)) < 1e-3
    assert float(measures.dice_loss(sure, (truth + 1) % 3)) > 0.9
    logits = torch.randn(2, 3, 6, 6)
    p, g = logits.softmax(1), F.one_hot(truth, 3).permute(0, 3, 1, 2).float()
    per_class = (2 * (p * g).sum((0, 2, 3)) + 1) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + 1)
    assert float(measures.dice_loss(logits, truth)) == pytest.approx(float(1 - per_class.mean()), abs=1e-6)


def test_psnr_and_ssim_match_their_definitions() -> None:
    target = torch.rand(3, 1, 16, 16)
    output = (target + 0.05 * torch.randn(3, 1, 16, 16)).clamp(0, 1)
    mse = (output - target).square().mean((1, 2, 3)).numpy()
    np.testing.assert_allclose(measures.psnr(output, target), 10 * np.log10(1 / mse), rtol=1e-5)
    assert measures.psnr(target, target).tolist() == [measures.MAX_PSNR] * 3
    np.testing.assert_allclose(measures.ssim(target, target), 1.0)
    assert (measures.ssim(output, target) < 0.99).all()
    assert measures.ssim(torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)).shape == (2,)  # small colour images


def test_task_defaults_and_option_checks() -> None:
    segment = TrainConfig.from_dict({"task": "segment"})
    assert (segment.model, segment.model_options, segment.data, segment.label_smoothing) == ("unet", ["width=16"], "shapes-seg", 0.0)
    assert TrainConfig.from_dict({"task": "segment", "model_options": ["width=8"]}).model_options == ["width=8"]
    denoise = TrainConfig.from_dict({"task": "denoise"})
    assert (denoise.model, denoise.noise, denoise.data) == ("denoising_autoencoder", "gaussian:0.3", "fashion-mnist")
    assert TrainConfig.from_dict({}) == TrainConfig()  # classification is unchanged
    for values, message in (({"noise": "gaussian:0.3"}, "--noise does not apply to --task classify"),
                            ({"task": "denoise", "noise": "pink:0.3"}, "--noise must be KIND:AMOUNT"),
                            ({"task": "reconstruct", "label_smoothing": 0.1}, "--label-smoothing applies to cross-entropy"),
                            ({"model_options": ["width"]}, "--model-options must be KEY=VALUE"),
                            ({"task": "caption"}, "unknown task 'caption'; choose from classify, segment, reconstruct, denoise, localize, detect")):
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_dict(values)


def test_each_task_takes_its_own_kind_of_network(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--model lenet5: a classification network cannot be trained with --task "
                                         r"segment, which needs a segmentation network: unet"):
        network.describe("lenet5", (3, 32, 32), 7, Segment())
    with pytest.raises(ValueError, match=r"a segmentation network cannot be trained with --task classify"):
        network.describe("unet", (3, 32, 32), 7, Classify())
    with pytest.raises(ValueError, match=r"'widht' is not an option of this model. Did you mean 'width'\?"):
        network.describe("unet", (3, 32, 32), 7, Segment(), ["widht=8"])
    with pytest.raises(ValueError, match=r"'input_size' is set from the data"):
        network.describe("conv_autoencoder", (1, 28, 28), 10, Reconstruct(), ["input_size=32"])
    source = network.describe("unet", (3, 32, 32), 7, Segment(), ["width=4", "batch_norm=false"])
    assert source["kwargs"] == {"in_channels": 3, "num_classes": 7, "width": 4, "batch_norm": False}
    denoiser = network.describe("denoising_autoencoder", (1, 8, 8), 10, Denoise(noise="gaussian:0.1"), ["latent=16"])
    assert denoiser["kwargs"] == {"in_channels": 1, "input_size": [8, 8], "noise": 0.0, "latent": 16}  # the task adds the noise
    table = tmp_path / "seg.txt"
    table.write_text("input 3x16x16\nconv 8 3x3 padding=1\nrelu\nconv 5 1x1\n")
    assert network.describe(str(table), (3, 16, 16), 5, Segment())["kind"] == "table"
    with pytest.raises(ValueError, match=r"ends in 5x16x16 outputs, but --task segment on this data needs 7x16x16"):
        network.describe(str(table), (3, 16, 16), 7, Segment())
    with pytest.raises(ValueError, match=r"--task reconstruct on this data needs 3x16x16"):
        network.describe(str(table), (3, 16, 16), 5, Reconstruct())
