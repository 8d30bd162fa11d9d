"""A box from a class activation map: where a classifier that was never given boxes says the object is.

CAM localisation (Zhou et al., "Learning Deep Features for Discriminative
Localization", 2016): keep the pixels where the class's activation map is at
least 20% of its maximum, and box the largest connected region of them. The map
here is Grad-CAM (:func:`cnnkit.visualize.gradcam.gradcam`), which for a network
that pools its maps globally before the classifier (EfficientNet, ResNet) is
exactly the paper's CAM.
"""

from __future__ import annotations

import numpy as np

CAM_THRESHOLD = 0.2  # of the map's maximum, as in Zhou et al. 2016


def cam_box(heatmap: np.ndarray, threshold: float = CAM_THRESHOLD) -> tuple[int, int, int, int]:
    """The box ``(x0, y0, x1, y1)`` (pixel edges of ``heatmap``'s grid) around the largest connected region (8
    neighbours) where ``heatmap`` ``(H, W)`` is at least ``threshold`` times its maximum; the whole grid when the
    map is zero everywhere.

    >>> m = np.zeros((6, 8)); m[1:3, 1:4] = 1.0; m[4, 6] = 0.9
    >>> cam_box(m)
    (1, 1, 4, 3)
    """
    from scipy import ndimage

    if heatmap.ndim != 2 or not 0.0 < threshold <= 1.0:
        raise ValueError(f"cam_box needs an (H, W) map and a threshold in (0, 1]. Received: shape {heatmap.shape}, "
                         f"threshold {threshold}")
    peak = float(heatmap.max())
    if peak <= 0.0:
        return (0, 0, heatmap.shape[1], heatmap.shape[0])
    regions, count = ndimage.label(heatmap >= threshold * peak, structure=np.ones((3, 3)))
    sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]  # pixels per region
    ys, xs = np.nonzero(regions == int(sizes.argmax()) + 1)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
