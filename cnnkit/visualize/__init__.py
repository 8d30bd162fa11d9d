"""What a CNN sees: learnt filters, feature maps, Grad-CAM and saliency, training curves.

Everything works on any ``torch.nn.Module`` (layers are found with forward
hooks and named as ``model.named_modules()`` names them); :func:`resolve`
adds run directories, zoo names and layer tables::

    from cnnkit.visualize import draw_attribution, gradcam, resolve

    subject = resolve("efficientnet_lite0", pretrained=True)
    x, picture = subject.load("cat.png")  # (1, 3, 224, 224), (224, 224, 3)
    result = gradcam(subject.model, x)  # the top class, at the last convolution block
    draw_attribution(result, picture, "cat_gradcam.png", subject.class_names)
"""

from cnnkit.visualize.curves import draw_curves, metric_panels, read_history
from cnnkit.visualize.features import FeatureFigure, FeatureMaps, draw_feature_maps, feature_maps
from cnnkit.visualize.filters import FilterFigure, conv_weight, draw_filters
from cnnkit.visualize.gradcam import Attribution, class_index, draw_attribution, gradcam, saliency
from cnnkit.visualize.probe import LayerCall, Pass, default_layers, gradcam_layer, run, trace
from cnnkit.visualize.resolve import Subject, resolve

__all__ = [
    "Attribution",
    "FeatureFigure",
    "FeatureMaps",
    "FilterFigure",
    "LayerCall",
    "Pass",
    "Subject",
    "class_index",
    "conv_weight",
    "default_layers",
    "draw_attribution",
    "draw_curves",
    "draw_feature_maps",
    "draw_filters",
    "feature_maps",
    "gradcam",
    "gradcam_layer",
    "metric_panels",
    "read_history",
    "resolve",
    "run",
    "saliency",
    "trace",
]
