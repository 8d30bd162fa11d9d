"""CenterNet ("Objects as Points", Zhou, Wang and Krähenbühl, 2019): an anchor-free one-stage detector.

Each object is the peak of a heatmap at its box's centre, on a grid 4 times
coarser than the image; at that cell the network also says the box's width and
height and the centre's sub-cell offset. No anchors, no proposals: decoding is
a 3x3 max-pool to find the peaks (:mod:`cnnkit.tasks.detect`). We chose it over
FCOS because its targets and decoding are the shortest to explain: one Gaussian
per object, one peak per object.

``(N, C, H, W) -> (N, K + 4, H/4, W/4)``: ``K`` heatmap logits (sigmoid gives
each class's centre probability), then width and height (in grid cells) and the
x and y offsets of the centre within its cell.

The default backbone is a small residual network of our own (four stages,
strides 1 to 8) with a feature-pyramid merge back to stride 4. ``backbone=NAME``
puts any classification network of the zoo underneath instead (transfer
learning into detection): its deepest feature map at 1/16 of the input (or the
coarsest it has, if it stops earlier) is brought back to 1/4 by transposed
convolutions (4x4, stride 2, as CenterNet does on ResNet), then the same
heads. ``pretrained_backbone=true`` starts it from the zoo's pretrained weights
(EfficientNet-Lite's ImageNet weights) with its BatchNorm statistics frozen, as
``cnnkit transfer`` does: detection batches are small and their statistics
would overwrite ImageNet's. From Python, ``backbone`` may also be a network
itself; ``cnnkit train --task detect --model-options backbone=RUN_DIR`` builds
the run's network that way and starts it from the run's trained weights
(:func:`cnnkit.network.load_backbone`).

``centernet_masks`` adds CondInst's dynamic mask head (:class:`CenterHeads`,
:mod:`cnnkit.tasks.instance`): instance segmentation on the same detector.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._common import check_input, positive
from cnnkit.models.registry import register

STRIDE = 4  # the output grid's cell, in input pixels
PRIOR = 0.1  # initial heatmap probability (Focal Loss's prior): keeps the first steps' loss from exploding


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """Two 3x3 convolutions with a shortcut (a 1x1 convolution where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class CenterNet(nn.Module):
    """Backbone at strides 1, 2, 4, 8; stride 8 upsampled and added to stride 4; three heads."""

    def __init__(self, num_classes: int, in_channels: int, width: int, masks: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        w = width
        self.stem = _conv(in_channels, w)  # (N, w, H, W)
        self.stage2 = _Residual(w, 2 * w, 2)  # (N, 2w, H/2, W/2)
        self.stage4 = _Residual(2 * w, 4 * w, 2)  # (N, 4w, H/4, W/4)
        self.stage8 = nn.Sequential(_Residual(4 * w, 8 * w, 2), _Residual(8 * w, 8 * w, 1))  # (N, 8w, H/8, W/8)
        self.lateral = nn.Conv2d(8 * w, 4 * w, 1)
        self.merge = _conv(4 * w, 4 * w)

        self.heads = CenterHeads(4 * w, num_classes, masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("centernet", x, self.in_channels)
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"centernet needs a height and width that are multiples of 8 (its stride-8 stage is "
                             f"upsampled onto the stride-4 grid); use --image-size. Received: input shape="
                             f"{tuple(x.shape)}")
        c4 = self.stage4(self.stage2(self.stem(x)))  # (N, 4w, H/4, W/4)
        c8 = self.stage8(c4)  # (N, 8w, H/8, W/8)
        up = F.interpolate(self.lateral(c8), size=c4.shape[-2:], mode="nearest")
        features = self.merge(c4 + up)  # (N, 4w, H/4, W/4)
        return self.heads(features)  # (N, K + 4 [+ mask outputs], H/4, W/4)


MASK_FEATURES = 8  # instance masks: channels of the shared mask features
MASK_HIDDEN = 8  # and of the hidden layer of each object's own mask head
# each object's mask head, (features + 2 coordinates) -> hidden -> 1, as numbers the network outputs at its centre
MASK_PARAMS = (MASK_FEATURES + 2) * MASK_HIDDEN + MASK_HIDDEN + MASK_HIDDEN + 1


class CenterHeads(nn.Module):
    """CenterNet's heads on stride-4 features ``(N, C, h, w)`` -> ``(N, K + 4, h, w)``: the heatmaps, then width,
    height and the centre's offsets. With ``masks`` (CondInst's dynamic mask head, Tian et al. 2020) also
    :data:`MASK_PARAMS` channels, the weights of a small mask head for the object centred at each cell, and
    :data:`MASK_FEATURES` channels of mask features shared by every object: ``(N, K + 4 + 97 + 8, h, w)``."""

    def __init__(self, channels: int, num_classes: int, masks: bool = False) -> None:
        super().__init__()

        def head(outputs: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(channels, outputs, 1))

        self.heatmap, self.size, self.offset = head(num_classes), head(2), head(2)
        last = self.heatmap[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -math.log((1 - PRIOR) / PRIOR))
        self.controller = head(MASK_PARAMS) if masks else None
        self.mask_features = head(MASK_FEATURES) if masks else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        parts = [self.heatmap(features), self.size(features), self.offset(features)]
        if self.controller is not None and self.mask_features is not None:
            parts += [self.controller(features), self.mask_features(features)]
        return torch.cat(parts, 1)


def feature_layer(backbone: nn.Module, in_channels: int, deepest: int = 16) -> tuple[str, int, int]:
    """``(name, channels, stride)`` of the module whose output is ``backbone``'s deepest feature map at a stride of
    at most ``deepest``: of the outputs at the coarsest such stride, the last block's (a module made of modules)
    called, else the last layer's; found by one pass of a 128x128 zero image (a dense head made for another size
    may fail on it: the maps before it count). A network without a feature map of stride 4 to ``deepest`` is a
    ValueError."""
    size, outputs = 128, []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: outputs.append((name, o)))
             for name, m in backbone.named_modules() if name]
    training, failure = backbone.training, ""
    try:
        with torch.no_grad():
            backbone.eval()(torch.zeros(1, in_channels, size, size))
    except (RuntimeError, ValueError) as error:  # a head made for another image size: the maps before it count
        failure = f" (it stopped with: {(str(error).splitlines() or [type(error).__name__])[0]})"
    finally:
        backbone.train(training)
        for hook in hooks:
            hook.remove()
    blocks = {name for name, m in backbone.named_modules() if name and any(True for _ in m.children())}
    maps = [(name, o.shape[1], size // o.shape[-1], name in blocks) for name, o in outputs
            if isinstance(o, torch.Tensor) and o.dim() == 4 and o.shape[-1] == o.shape[-2]
            and size % o.shape[-1] == 0 and 4 <= size // o.shape[-1] <= deepest]
    if not maps:
        raise ValueError(f"centernet: the backbone {type(backbone).__name__} has no feature map at 1/4 to "
                         f"1/{deepest} of a {size}x{size} input{failure}; choose a convolutional classification "
                         f"network")
    stride = max(m[2] for m in maps)
    at_stride = [m for m in maps if m[2] == stride]
    # a block's output (a module made of others: a ResNet stage, an EfficientNet block) rather than a layer inside
    name, channels, _, _ = ([m for m in at_stride if m[3]] or at_stride)[-1]
    return name, int(channels), int(stride)


def prune_after(backbone: nn.Module, layer: str, in_channels: int) -> list[str]:
    """Replace by ``nn.Identity`` every module of ``backbone`` whose first call starts after ``layer``'s first call
    ends (the classifier: pooling, flatten, dense layers, the later blocks), found by one pass of a 128x128 zero
    image; returns their names. What the detector reads ends at ``layer``, so nothing after it is computed or
    trained, whatever image size the classifier's head was made for."""
    events: list[tuple[str, str]] = []
    handles = []
    for name, module in backbone.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(lambda m, i, name=name: events.append(("start", name))))
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: events.append(("end", name))))
    training = backbone.training
    try:
        with torch.no_grad():
            backbone.eval()(torch.zeros(1, in_channels, 128, 128))
    except (RuntimeError, ValueError):
        pass  # a head made for another size fails after the layer: what ran before it is all that counts
    finally:
        backbone.train(training)
        for handle in handles:
            handle.remove()
    end = events.index(("end", layer))
    first_start: dict[str, int] = {}
    for position, (kind, name) in enumerate(events):
        if kind == "start":
            first_start.setdefault(name, position)
    after = [name for name, _ in backbone.named_modules() if name and first_start.get(name, len(events)) > end
             and not layer.startswith(name + ".")]
    pruned: list[str] = []
    for name in after:
        if any(name.startswith(done + ".") for done in pruned):
            continue  # inside a module already replaced
        parent, _, child = name.rpartition(".")
        setattr(backbone.get_submodule(parent) if parent else backbone, child, nn.Identity())
        pruned.append(name)
    return pruned


class BackboneCenterNet(nn.Module):
    """A classification network's feature map (``layer``, ``stride``) -> transposed convolutions to stride 4 ->
    CenterNet's heads. The backbone keeps what runs up to ``layer``; the modules after it become ``nn.Identity``
    (:func:`prune_after`: its classifier, perhaps made for another image size, is not computed, has no weights
    left to train, and leaves no unused parameters for DistributedDataParallel); a forward hook takes the map."""

    def __init__(self, backbone: nn.Module, layer: str, channels: int, stride: int, num_classes: int,
                 width: int, masks: bool = False) -> None:
        super().__init__()
        self.in_channels = next(p for p in backbone.parameters() if p.dim() == 4).shape[1]
        self.pruned = prune_after(backbone, layer, self.in_channels)
        self.backbone, self.layer, self.stride = backbone, layer, stride
        steps, cin = [], channels
        for _ in range(int(math.log2(stride // STRIDE))):
            steps += [nn.ConvTranspose2d(cin, 4 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * width),
                      nn.ReLU(inplace=True)]
            cin = 4 * width
        self.up = nn.Sequential(*steps, _conv(cin, 4 * width))
        self.heads = CenterHeads(4 * width, num_classes, masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("centernet", x, self.in_channels)
        if x.shape[-2] % self.stride or x.shape[-1] % self.stride:
            raise ValueError(f"centernet on this backbone needs a height and width that are multiples of "
                             f"{self.stride} (its features are at 1/{self.stride} of the input); use --image-size. "
                             f"Received: input shape={tuple(x.shape)}")
        taken: list[torch.Tensor] = []
        hook = self.backbone.get_submodule(self.layer).register_forward_hook(lambda m, i, o: taken.append(o))
        try:
            self.backbone(x)  # past the layer only identities (and the forward's own reshapes) remain
        except (RuntimeError, ValueError):
            if not taken:  # a reshape of the forward's own, made for another size, may fail after the map: fine
                raise
        finally:
            hook.remove()
        return self.heads(self.up(taken[0]))  # (N, 4w, H/4, W/4) -> (N, K + 4 [+ mask outputs], H/4, W/4)


def _backbone(name: str, in_channels: int, pretrained: bool) -> nn.Module:
    """The zoo classification network ``name`` (pretrained, with frozen BatchNorm statistics, when asked)."""
    from cnnkit.layers import freeze_statistics
    from cnnkit.models.registry import create, info, names

    fitting = [n for n in names() if info(n).kind == "classification"]
    if name not in fitting:
        raise ValueError(f"centernet: backbone={name!r} is neither a classification network of the zoo ("
                         f"{', '.join(fitting)}) nor a run directory of a classifier")
    if pretrained and info(name).weights is None:
        with_weights = [n for n in fitting if info(n).weights is not None]
        raise ValueError(f"centernet: backbone {name!r} has no pretrained weights (pretrained_backbone=true); "
                         f"those with: {', '.join(with_weights)}")
    # built on the meta device (a size check before the real build): the layout only, no weight file read
    on_meta = torch.empty(0).device.type == "meta"
    network = create(name, pretrained=not on_meta) if pretrained else create(name, in_channels=in_channels)
    if pretrained:
        if in_channels != info(name).input_shape[0]:
            raise ValueError(f"centernet: the pretrained {name} reads {info(name).input_shape[0]}-channel images; "
                             f"this data has {in_channels} channel(s)")
        for module_name, module in list(network.named_modules()):
            if isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
                parent, _, child = module_name.rpartition(".")
                setattr(network.get_submodule(parent) if parent else network, child, freeze_statistics(module))
    return network


def _build(num_classes: int, in_channels: int, width: int, backbone: str | nn.Module, pretrained_backbone: bool,
           masks: bool) -> nn.Module:
    w = int(positive("centernet", "width", width))
    if isinstance(backbone, nn.Module):  # a network given whole (a run's, rebuilt by cnnkit.network.build)
        if pretrained_backbone:
            raise ValueError("centernet: pretrained_backbone=true applies to a zoo backbone=NAME; a network given "
                             "as the backbone brings its own weights")
        network = backbone
    elif not backbone:
        if pretrained_backbone:
            raise ValueError("centernet: pretrained_backbone=true needs a backbone=NAME (e.g. efficientnet_lite0)")
        return CenterNet(num_classes, in_channels, w, masks)
    else:
        network = _backbone(str(backbone), in_channels, bool(pretrained_backbone))
    layer, channels, stride = feature_layer(network, in_channels)
    return BackboneCenterNet(network, layer, channels, stride, num_classes, w, masks)


@register(kind="detection", input_size=(64, 64))
def centernet(num_classes: int = 6, in_channels: int = 3, width: int = 16, backbone: str | nn.Module = "",
              pretrained_backbone: bool = False) -> nn.Module:
    """CenterNet detector (anchor-free, one stage): a heatmap per class, box size and offset, on a 4x coarser grid.

    ``(N, C, H, W) -> (N, num_classes + 4, H/4, W/4)`` for H, W multiples of 8
    (of the backbone's stride, 16 for most, with ``backbone``); ``width`` is
    the first stage's channels (stages w, 2w, 4w, 8w; the heads have 4w).
    ``backbone``: a zoo classification network's name (or a network) instead
    of the own one; ``pretrained_backbone``: start it from its pretrained weights.
    """
    return _build(num_classes, in_channels, width, backbone, pretrained_backbone, masks=False)


@register(kind="instance", input_size=(64, 64))
def centernet_masks(num_classes: int = 6, in_channels: int = 3, width: int = 16, backbone: str | nn.Module = "",
                    pretrained_backbone: bool = False) -> nn.Module:
    """CenterNet with a dynamic mask head (CondInst): every detected object also gets its own mask.

    ``(N, C, H, W) -> (N, num_classes + 4 + 97 + 8, H/4, W/4)``: centernet's
    outputs, then per cell the 97 weights of a two-layer mask head for the
    object centred there, then 8 channels of mask features it reads
    (:mod:`cnnkit.tasks.instance` decodes them). Options as ``centernet``.
    """
    return _build(num_classes, in_channels, width, backbone, pretrained_backbone, masks=True)
