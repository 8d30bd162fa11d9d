"""``cnnkit explore``: see a network work on an image, in a browser (after CNN Explainer, Wang et al. 2020), for any
network cnnkit can name: a run, a layer table, a zoo model (pretrained EfficientNet-Lite0 included).

- :mod:`cnnkit.explore.session`: :class:`~cnnkit.explore.session.Explorer`, everything the page shows as dicts;
- :mod:`cnnkit.explore.unit`: one unit of one layer, worked from the layer's input and weights;
- :mod:`cnnkit.explore.app`: the Starlette application and its JSON API;
- :mod:`cnnkit.explore.static`: the same page as one self-contained HTML file.
"""
