"""Feature maps, Grad-CAM, saliency, filters and curves on plain nn.Modules: values checked against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cnnkit.visualize import (
    class_index,
    draw_attribution,
    draw_curves,
    draw_feature_maps,
    draw_filters,
    feature_maps,
    gradcam,
    gradcam_layer,
    metric_panels,
    read_history,
    run,
    saliency,
    trace,
)


class Residual(nn.Module):
    """A user's own network, not a Sequential: a stem, a residual block, global pooling and a classifier."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block_conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head_conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(6, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        x = self.act(x + self.bn(self.block_conv(x)))
        return self.act(self.head_conv(x))  # (N, 6, H/2, W/2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.fixture
def model() -> Residual:
    torch.manual_seed(0)
    return Residual().eval()


def test_feature_maps_default_layers_are_early_middle_late_and_exact(model: Residual) -> None:
    x = torch.randn(1, 1, 12, 12)
    maps = feature_maps(model, x)
    assert [m.layer for m in maps] == ["stem", "block_conv", "head_conv"]
    assert [tuple(m.activation.shape) for m in maps] == [(4, 12, 12), (4, 12, 12), (6, 6, 6)]
    with torch.no_grad():
        assert torch.allclose(maps[0].activation, model.stem(x)[0])
        assert torch.allclose(maps[1].activation, model.block_conv(model.act(model.stem(x)))[0])
    chosen = feature_maps(model, x, ["act", "bn"])  # a shared layer keeps its last call: the head's ReLU
    assert torch.allclose(chosen[0].activation, model.features(x)[0].detach())
    assert chosen[1].kind == "BatchNorm2d"
    assert maps[2].strongest(2) == maps[2].activation.clamp_min(0).mean(dim=(1, 2)).argsort(descending=True)[:2].tolist()


def test_unknown_and_unsuitable_layers_list_the_valid_names(model: Residual) -> None:
    x = torch.randn(1, 1, 12, 12)
    with pytest.raises(ValueError, match=r"no layer with feature maps named 'stemm'; valid names: stem, act, "
                                         r"block_conv, bn, head_conv\. Received: layer='stemm'"):
        feature_maps(model, x, ["stemm"])
    with pytest.raises(ValueError, match=r"layer 'fc' outputs shape 3, not a stack of 2-D maps .* valid names: stem"):
        gradcam(model, x, layer="fc")
    deep = nn.Sequential(*[nn.Conv2d(2, 2, 1) for _ in range(30)])
    with pytest.raises(ValueError, match=r"nearest of the 30 valid names: 17, .*cnnkit visualize layers TARGET"):
        feature_maps(deep, torch.randn(1, 2, 4, 4), ["17x"])
    with pytest.raises(ValueError, match=r"no convolution layer named 'fc'; valid names: stem, block_conv, head_conv"):
        draw_filters(model, "unused.png", layer="fc")
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        feature_maps(model, torch.randn(2, 1, 12, 12))


def test_gradcam_equals_the_class_activation_map_of_a_pooled_network(model: Residual) -> None:
    # with global average pooling and a linear head, Grad-CAM at the last block is CAM: ReLU(sum_k w_ck A_k)
    x = torch.randn(1, 1, 12, 12)
    with torch.no_grad():
        hooked = run(model, x)
    assert gradcam_layer(hooked.sequence) == "act"  # the head convolution's ReLU (at its last call), not its raw output
    assert [c.name for c in hooked.sequence].count("act") == 3 and [c.name for c in trace(model, x)].count("act") == 1
    result = gradcam(model, x, target=2)
    with torch.no_grad():
        maps = model.features(x)  # (1, 6, 6, 6)
        cam = F.relu(torch.einsum("k,nkhw->nhw", model.fc.weight[2], maps))[:, None]  # (1, 1, 6, 6)
        expected = F.interpolate(cam, size=(12, 12), mode="bilinear", align_corners=False)[0, 0]
    assert result.grid == (6, 6) and result.layer == "act" and result.target == 2
    assert np.allclose(result.heatmap, (expected / expected.max()).numpy(), atol=1e-5)
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    assert result.probability == pytest.approx(float(probs[2]), rel=1e-5)
    assert result.predicted == int(probs.argmax())
    assert model.training is False and all(p.grad is None for p in model.parameters())


def test_gradcam_and_saliency_point_at_the_object_not_a_transposed_spot() -> None:
    # a "detector" of bright pixels: class 0 = brightness; the object sits top-left, off the diagonal
    detector = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    with torch.no_grad():
        detector[0].weight.fill_(1.0)
        detector[0].bias.fill_(-0.5)
        detector[4].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        detector[4].bias.zero_()
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 2:5, 9:13] = 1.0  # rows 2-4, columns 9-12
    cam = gradcam(detector, x, target=0)
    assert cam.layer == "1" and cam.heatmap[2:5, 9:13].min() == pytest.approx(1.0)
    assert cam.heatmap[8:, :].max() == 0.0
    assert 9 <= cam.peak[0] <= 12 and 2 <= cam.peak[1] <= 4  # (x, y)
    assert gradcam(detector, x, target=1).heatmap.max() == 0.0  # no evidence for "dark" on the bright object
    grad = saliency(detector, x, target=0)
    assert grad.heatmap.shape == (16, 16) and grad.heatmap[2:5, 9:13].min() == pytest.approx(1.0)
    assert grad.heatmap[8:, :].max() == 0.0


def test_attribution_needs_a_classifier_and_a_valid_class(model: Residual) -> None:
    with pytest.raises(ValueError, match=r"needs a classifier's output, \(1, num_classes\).*\(1, 4, 8, 8\)"):
        gradcam(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()), torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"the class must be in \[0, 3\)\. Received: 7"):
        saliency(model, torch.randn(1, 1, 12, 12), target=7)
    names = ("T-shirt/top", "Trouser", "Ankle boot")
    assert class_index("ankle BOOT", names) == 2 and class_index("1", names) == 1 and class_index(0, names) == 0
    with pytest.raises(ValueError, match=r"--class 'Trousers' is not one of .* Did you mean 'Trouser'\?"):
        class_index("Trousers", names)
    with pytest.raises(ValueError, match=r"class index from 0 to 2"):
        class_index(3, names)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_figures_are_written_atomically_with_their_labels(model: Residual, tmp_path: Path) -> None:
    x = torch.randn(1, 1, 12, 12)
    picture = x[0, 0].sigmoid().numpy()
    figure = draw_feature_maps(feature_maps(model, x, ["stem", "head_conv"]), picture, tmp_path / "maps.png",
                               per_layer=3)
    assert [row["shape"] for row in figure.layers] == [[4, 12, 12], [6, 6, 6]]
    assert all(len(row["channels_shown"]) == 3 for row in figure.layers)
    filters = draw_filters(model, tmp_path / "filters.png")
    assert (filters.layer, filters.shape, filters.shown) == ("stem", (4, 1, 3, 3), 4)
    deeper = draw_filters(model, tmp_path / "deep.png", layer="head_conv", max_filters=3)
    assert (deeper.shape, deeper.shown) == ((6, 4, 3, 3), 3)
    attribution = draw_attribution(gradcam(model, x), picture, tmp_path / "cam.png", ["a", "b", "c"])
    for path in (figure.path, filters.path, deeper.path, attribution):
        pixels = _png(path)
        assert pixels.shape[0] > 150 and pixels.shape[1] > 250 and pixels.std() > 10  # drawn, not blank
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        draw_filters(model, tmp_path / "missing" / "f.png")


def test_curves_group_every_split_metric_and_report_bad_lines(tmp_path: Path) -> None:
    records = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5 + e / 10, "val_loss": 1.2 / e,
                "val_accuracy": 0.5 + e / 11, "val_mean_iou": 0.3 + e / 20, "lr": 0.01 / e, "time": 3.0 * e,
                "images_per_second": 900.0} for e in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    history = read_history(tmp_path)
    assert metric_panels(history) == {"loss": ["train", "val"], "accuracy": ["train", "val"], "mean_iou": ["val"]}
    pixels = _png(draw_curves(history, tmp_path / "curves.png"))
    assert pixels.shape[1] > 4 * pixels.shape[0] / 2  # four panels side by side
    (tmp_path / "metrics.jsonl").write_text(json.dumps(records[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON line"):
        read_history(tmp_path)
    with pytest.raises(FileNotFoundError, match="a run that finished an epoch"):
        read_history(tmp_path / "nowhere")


def test_grad_cam_says_where_it_is_known_to_mislead() -> None:
    from cnnkit import models, spec
    from cnnkit.visualize import gradcam
    from cnnkit.visualize.gradcam import FLATTENS

    torch.manual_seed(0)
    lenet = spec.build(spec.load_shipped("lenet_slides"))  # maps flattened into dense layers
    flat = gradcam(lenet.eval(), torch.rand(1, 3, 32, 32))
    assert flat.caution == FLATTENS and flat.as_dict()["caution"] == FLATTENS
    pooled = gradcam(models.create("resnet_small", num_classes=10, in_channels=3).eval(), torch.rand(1, 3, 32, 32))
    assert pooled.caution == "" and pooled.as_dict()["caution"] is None  # global pooling: Grad-CAM is CAM there
