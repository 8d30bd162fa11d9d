"""Step-by-step explanations of CNN computations, and the lecture slides' worked examples.

>>> from cnnkit.explain import explain_conv
>>> e = explain_conv("3 0 1; 1 5 8; 2 7 2", "1 0; 0 1")
>>> e.output.tolist()
[[8.0, 8.0], [8.0, 7.0]]
>>> e.steps[0]["expression"]
'3*1 + 0*0 + 1*0 + 5*1 = 8'

Convolution of one matrix (:func:`explain_conv`) or of a multi-channel volume with
several filters (:func:`explain_conv_volume`), pooling, activations, softmax, a dense
layer, parameter counts, backprop through a convolution (stride, padding, dilation) and through max or
average pooling (:func:`explain_pool_backprop`), a loss and the cost of a mini-batch (:func:`explain_cross_entropy`,
:func:`explain_mse`), a few optimizer steps (:func:`explain_update`), a transposed convolution
(:func:`explain_deconv`), the IoU of two boxes and non-maximum suppression (:mod:`cnnkit.explain.boxes`); each is data (``to_dict()``
for JSON) and :func:`render_any` lays it out as text; :func:`cnnkit.explain.figures.draw` draws the conv, pool, deconv and
backprop explanations (input | kernel | output, one window highlighted, its sum written out), and :func:`make_quiz`
draws exercises with their worked answers (:mod:`cnnkit.explain.quiz`). The numbers come from
:mod:`cnnkit.arith` (sizes, parameters and their formulas) and :mod:`cnnkit.reference`
(the operations themselves); this package lays them out.
"""

from __future__ import annotations

from cnnkit.explain.backprop import explain_conv_backprop
from cnnkit.explain.boxes import NMS_EXAMPLE, explain_iou, explain_nms
from cnnkit.explain.deconv import explain_deconv
from cnnkit.explain.example_format import load_example_file
from cnnkit.explain.examples import example_names, explain_example, explain_examples, load_examples
from cnnkit.explain.layers import ACTIVATIONS, explain_activation, explain_dense, explain_softmax
from cnnkit.explain.loss import explain_cross_entropy, explain_mse
from cnnkit.explain.matrices import parse_filters, parse_matrix, parse_volume
from cnnkit.explain.optim import OPTIMIZERS, explain_update
from cnnkit.explain.params import LAYERS, explain_params
from cnnkit.explain.pool_backprop import explain_pool_backprop
from cnnkit.explain.quiz import TOPICS as QUIZ_TOPICS
from cnnkit.explain.quiz import Exercise, Quiz, make_quiz, render_quiz
from cnnkit.explain.render import render, render_any, render_calculation, render_example, render_examples, render_volume
from cnnkit.explain.results import Check, ExampleResult
from cnnkit.explain.steps import POOL_MODES, Explanation, explain_conv, explain_pool
from cnnkit.explain.volume import VolumeExplanation, explain_conv_volume
from cnnkit.explain.working import Calculation

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "NMS_EXAMPLE",
    "OPTIMIZERS",
    "POOL_MODES",
    "QUIZ_TOPICS",
    "Calculation",
    "Check",
    "ExampleResult",
    "Exercise",
    "Explanation",
    "Quiz",
    "VolumeExplanation",
    "example_names",
    "explain_activation",
    "explain_conv",
    "explain_conv_backprop",
    "explain_conv_volume",
    "explain_cross_entropy",
    "explain_deconv",
    "explain_dense",
    "explain_example",
    "explain_examples",
    "explain_iou",
    "explain_mse",
    "explain_nms",
    "explain_params",
    "explain_pool",
    "explain_pool_backprop",
    "explain_softmax",
    "explain_update",
    "load_example_file",
    "load_examples",
    "make_quiz",
    "parse_filters",
    "parse_matrix",
    "parse_volume",
    "render",
    "render_any",
    "render_calculation",
    "render_example",
    "render_examples",
    "render_quiz",
    "render_volume",
]
