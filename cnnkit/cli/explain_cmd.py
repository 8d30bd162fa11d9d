"""``cnnkit explain``: every computation of a CNN worked step by step, and the slides' examples checked.

    cnnkit explain conv --input "3 0 1 2; 1 5 8 9; 2 7 2 5; 0 1 3 1" --kernel "1 0 -1; 1 0 -1; 1 0 -1"
    cnnkit explain conv --input "1 2; 3 4 | 5 6; 7 8" --kernel "1 | 2" --kernel "0 | -1" --bias 0.5,0
    cnnkit explain pool --input image.csv --size 2 --mode avg --json
    cnnkit explain activation leakyrelu --input "-2 0 3"
    cnnkit explain dense --input "1 2" --weights "1 0; 0.5 -1" --bias "0 1"
    cnnkit explain softmax --input "1 2 3"
    cnnkit explain params conv --filters 10 --kernel 3 --in-channels 3
    cnnkit explain backprop conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 0; 0 -1"
    cnnkit explain backprop conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 0; 0 -1" --stride 2 --padding 1
    cnnkit explain backprop pool --input "4 -3 -1; -2 3 -3; -3 2 3" --size 2 --stride 1 --mode max
    cnnkit explain loss cross-entropy --logits "2 1 0.1; 0.5 2.5 0.3" --labels "0 1"
    cnnkit explain loss mse --predictions "1.5 2; 0 1" --targets "1 2; 1 -1"
    cnnkit explain update --optimizer adam --steps 3 --lr 0.1
    cnnkit explain deconv --input "1 2; 3 4" --kernel "1 0; 2 1" --stride 2 --padding 1 --output-padding 1
    cnnkit explain example vertical-edge-6x6
    cnnkit explain example --file my_examples.json [NAME]
    cnnkit explain examples
    cnnkit explain conv --input "3 0 1; 1 5 8; 2 7 2" --kernel "1 0; 0 1" --figure conv.png --cell 1,0
    cnnkit explain quiz --topic conv --seed 3 --html quiz.html

A thin layer over :mod:`cnnkit.explain`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Literal

from cnnkit.cli import explain_quiz, gradients_cmd
from cnnkit.cli.explain_figure import add_figure_flags, check_flags, write_figure
from cnnkit.fileio import json_text

MATRIX_HELP = ('a matrix: inline "3 0 1; 1 5 8" (fractions too: "1/9 1/9; 1/9 1/9"), JSON "[[3,0,1],[1,5,8]]", '
               'a .json/.csv/.npy file, or an image (grey levels)')
VOLUME_HELP = (MATRIX_HELP + '; or C x H x W channels: inline "1 2; 3 4 | 5 6; 7 8", nested JSON, .npy, a colour image (R, G, B)')


def add_parser(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description="Work a convolution or a pooling step by step (padded input, output-size formula, every "
        "window, its products and sum), or recompute the lecture slides' examples and show where a slide is wrong.",
    )
    what = parser.add_subparsers(dest="what", metavar="WHAT", required=True)

    conv = what.add_parser("conv", help="cross-correlate a matrix or a C x H x W volume with filters, cell by cell",
                           description="Convolution (cross-correlation, as CNNs compute it) of a matrix with a kernel, or of a "
                           "C x H x W input with filters of C slices: per output cell each channel's products and sum, then "
                           "the total plus the filter's bias; several filters stack into the output's depth.")
    conv.add_argument("--input", required=True, metavar="M", help=VOLUME_HELP)
    conv.add_argument("--kernel", required=True, action="append", metavar="K",
                      help="one filter (a matrix, or C slices separated by |); give it once per filter, or one 4-D array")
    conv.add_argument("--stride", type=int, default=1, metavar="S", help="step between windows (default 1)")
    conv.add_argument("--padding", default="0", metavar="P", help="zeros added on each side: an int, 'same' or 'valid' (default 0)")
    conv.add_argument("--dilation", type=int, default=1, metavar="D", help="distance between kernel taps (default 1)")
    conv.add_argument("--bias", default="0", metavar="B", help="added to every output cell: one number, or one per filter "
                      "(\"0.5,0\") (default 0)")
    conv.add_argument("--flip", action="store_true", help="flip the kernel by 180 degrees first (true convolution)")
    conv.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_figure_flags(conv, "conv")

    pool = what.add_parser("pool", help="pool a matrix, window by window", description="Max, average or min pooling of one matrix.")
    pool.add_argument("--input", required=True, metavar="M", help=MATRIX_HELP)
    pool.add_argument("--size", type=int, required=True, metavar="F", help="window size")
    pool.add_argument("--stride", type=int, default=None, metavar="S", help="step between windows (default: the window size)")
    pool.add_argument("--mode", choices=("max", "avg", "min"), default="max", help="how a window becomes one number (default max)")
    pool.add_argument("--padding", type=int, default=0, metavar="P",
                      help="cells added on each side, at most half the window: -inf for max, +inf for min, 0 for avg "
                      "(counted in the divisor), as torch.nn.MaxPool2d/AvgPool2d (default 0)")
    pool.add_argument("--ceil-mode", action="store_true",
                      help="round the output size up, as torch's ceil_mode: a last window may hang over the edge")
    pool.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_figure_flags(pool, "pool")

    activation = what.add_parser("activation", help="apply an activation, each cell's formula with its numbers",
                                 description="ReLU, leaky ReLU, ELU, sigmoid, tanh, softmax (per row) or maxout, cell by cell.")
    activation.add_argument("name", metavar="NAME", help="relu, leakyrelu, elu, sigmoid, tanh, softmax or maxout")
    activation.add_argument("--input", required=True, metavar="M", help=MATRIX_HELP)
    activation.add_argument("--slope", type=float, default=0.1, metavar="A", help="leaky ReLU's negative slope (default 0.1, as the slides)")
    activation.add_argument("--alpha", type=float, default=1.0, metavar="A", help="ELU's alpha (default 1)")
    activation.add_argument("--pieces", type=int, default=2, metavar="K", help="maxout: pieces per unit, consecutive entries of a row (default 2)")
    activation.add_argument("--json", action="store_true", help="print JSON instead of text")

    dense = what.add_parser("dense", help="a fully connected layer, each unit's weighted sum written out",
                            description="y = W x + b: W has one row per output unit and one column per input value.")
    dense.add_argument("--input", required=True, metavar="V", help="the input vector, e.g. \"1 2 3\"")
    dense.add_argument("--weights", required=True, metavar="W", help=MATRIX_HELP + " (n_out x n_in)")
    dense.add_argument("--bias", default=None, metavar="B", help="one bias per output unit (default none)")
    dense.add_argument("--json", action="store_true", help="print JSON instead of text")

    softmax = what.add_parser("softmax", help="softmax: exponentials, their sum, each probability",
                              description="Softmax of a vector (or of each row of a matrix), the maximum subtracted first for stability.")
    softmax.add_argument("--input", required=True, metavar="V", help=MATRIX_HELP)
    softmax.add_argument("--json", action="store_true", help="print JSON instead of text")

    params = what.add_parser("params", help="count one layer's parameters, formula filled in",
                             description="Parameters per filter and in total of a convolution (1x1 too), a depthwise or "
                             "depthwise-separable convolution (compared with a standard one), or a dense layer.")
    params.add_argument("layer", choices=("conv", "dense", "depthwise", "separable"), help="the layer type")
    params.add_argument("--in-channels", type=int, default=None, metavar="C", help="input channels (conv, depthwise, separable)")
    params.add_argument("--filters", type=int, default=None, metavar="N", help="filters / output maps (conv, separable)")
    params.add_argument("--kernel", type=int, default=3, metavar="K", help="kernel side (default 3; 1 for a 1x1 convolution)")
    params.add_argument("--multiplier", type=int, default=1, metavar="M", help="depthwise filters per input channel (default 1)")
    params.add_argument("--in-features", type=int, default=None, metavar="N", help="dense: input values")
    params.add_argument("--units", type=int, default=None, metavar="N", help="dense: output units")
    params.add_argument("--no-bias", action="store_true", help="leave the biases out")
    params.add_argument("--json", action="store_true", help="print JSON instead of text")

    backprop = what.add_parser("backprop", help="gradients of a convolution or a pooling, worked and checked",
                               description="conv: dL/dK is the cross-correlation of the (padded) input with dL/dY; dL/dX the "
                               "full convolution of dL/dY (with stride - 1 zeros between its entries) with the kernel turned "
                               "180 degrees. pool: max pooling sends each window's gradient to its maximum, average pooling "
                               "spreads it over the window; where windows overlap the shares add up. Checked against the "
                               "reference backward.")
    backprop.add_argument("layer", choices=("conv", "pool"), help="the layer: conv or pool")
    backprop.add_argument("--input", required=True, metavar="M", help=MATRIX_HELP)
    backprop.add_argument("--kernel", default=None, metavar="K", help="conv: the kernel, " + MATRIX_HELP)
    backprop.add_argument("--grad", default=None, metavar="G", help="dL/dY, the output's shape (default all ones: L = sum of Y)")
    backprop.add_argument("--stride", type=int, default=None, metavar="S",
                          help="step between windows (default 1 for conv, the window size for pool)")
    backprop.add_argument("--padding", default="0", metavar="P",
                          help="cells added on each side: conv an int, 'same' or 'valid'; pool an int, at most half the window (default 0)")
    backprop.add_argument("--dilation", type=int, default=1, metavar="D", help="distance between taps: conv, or max pool (default 1)")
    backprop.add_argument("--size", type=int, default=None, metavar="F", help="pool: the window size")
    backprop.add_argument("--mode", choices=("max", "avg"), default=None, help="pool: max or avg (default max)")
    backprop.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_figure_flags(backprop, "backprop")

    loss = what.add_parser("loss", help="cross-entropy or MSE per example, and the mini-batch cost J, worked",
                           description="Cross-entropy with softmax (the exponentials, their sum, the probabilities, -log p "
                           "of the true class) or mean squared error, one example per row, then the cost J = (1/m) * sum "
                           "of L over the m examples: torch's cross_entropy and mse_loss with reduction 'mean'.")
    loss.add_argument("kind", choices=("cross-entropy", "mse"), help="cross-entropy (logits and labels) or mse (predictions and targets)")
    loss.add_argument("--logits", default=None, metavar="M", help='cross-entropy: one row of class scores per example, e.g. "2 1 0.1; 0.5 2.5 0.3"')
    loss.add_argument("--labels", default=None, metavar="L", help='cross-entropy: the true class of each example, e.g. "0 1"')
    loss.add_argument("--predictions", default=None, metavar="M", help='mse: one row of predicted values per example, e.g. "1.5 2; 0 1"')
    loss.add_argument("--targets", default=None, metavar="M", help="mse: the true values, the shape of --predictions")
    loss.add_argument("--json", action="store_true", help="print JSON instead of text")

    update = what.add_parser("update", help="a few optimizer steps (sgd, momentum, adagrad, rmsprop, adam), every number",
                             description="Step an optimizer a few times, exactly as torch.optim does, on the quadratic f(w) "
                             "= 0.5*sum(a_i*w_i^2) (default a = 1 5, w = 1 1) or on least squares J(w) = (1/m)*sum((x.w - "
                             "y)^2) with --inputs and --targets: each step's gradient, velocity / accumulated squares / "
                             "moments with bias correction, the step and the new weights; says where textbooks differ.")
    update.add_argument("--optimizer", default="sgd", metavar="NAME", help="sgd, momentum, adagrad, rmsprop or adam (default sgd)")
    update.add_argument("--steps", type=int, default=3, metavar="N", help="how many updates (default 3)")
    update.add_argument("--weights", default=None, metavar="W", help="the starting weights (default 1s for the quadratic, 0s for least squares)")
    update.add_argument("--curvature", default=None, metavar="A", help='the a_i of f(w) = 0.5*sum(a_i*w_i^2) (default "1 5")')
    update.add_argument("--inputs", default=None, metavar="X", help="least squares: one example per row, one column per weight")
    update.add_argument("--targets", default=None, metavar="Y", help="least squares: one target per example")
    update.add_argument("--lr", type=float, default=None, metavar="LR",
                        help="learning rate (default 0.1; rmsprop 0.01, torch's default)")
    update.add_argument("--momentum", type=float, default=None, metavar="MU", help="momentum's mu (default 0.9)")
    update.add_argument("--alpha", type=float, default=None, metavar="A", help="rmsprop's decay (default 0.99, torch's)")
    update.add_argument("--beta1", type=float, default=None, metavar="B", help="adam's first-moment decay (default 0.9, torch's)")
    update.add_argument("--beta2", type=float, default=None, metavar="B", help="adam's second-moment decay (default 0.999, torch's)")
    update.add_argument("--eps", type=float, default=None, metavar="E",
                        help="added after the square root (default torch's: adagrad 1e-10, rmsprop and adam 1e-8)")
    update.add_argument("--json", action="store_true", help="print JSON instead of text")

    deconv = what.add_parser("deconv", help="transposed convolution: each input cell scattered through the kernel",
                             description="Transposed convolution (\"deconvolution\") of a matrix with a kernel: every "
                             "input cell adds value x kernel into the output, stride cells apart; overlaps add up; then "
                             "padding is cut from every side. Also worked as the equivalent ordinary convolution, and "
                             "checked against the reference conv_transpose2d.")
    deconv.add_argument("--input", required=True, metavar="M", help=MATRIX_HELP)
    deconv.add_argument("--kernel", required=True, metavar="K", help=MATRIX_HELP)
    deconv.add_argument("--stride", type=int, default=1, metavar="S", help="distance between the scattered copies (default 1)")
    deconv.add_argument("--padding", type=int, default=0, metavar="P", help="rows and columns cut from every side (default 0)")
    deconv.add_argument("--output-padding", type=int, default=0, metavar="Q",
                        help="rows and columns given back at the bottom and the right, less than the stride (default 0)")
    deconv.add_argument("--bias", type=float, default=0.0, metavar="B", help="added to every output cell (default 0)")
    deconv.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_figure_flags(deconv, "deconv")

    iou = what.add_parser("iou", help="intersection over union (and GIoU) of two boxes, worked",
                          description="IoU of two boxes given as x0 y0 x1 y1 (left, top, right, bottom): the areas, "
                          "the intersection, the union, the ratio, and GIoU; checked against the code detection runs "
                          "use.")
    iou.add_argument("--a", required=True, metavar="BOX", help='the first box, e.g. "10 10 50 60"')
    iou.add_argument("--b", required=True, metavar="BOX", help='the second box, e.g. "30 30 70 80"')
    iou.add_argument("--json", action="store_true", help="print JSON instead of text")

    nms = what.add_parser("nms", help="non-maximum suppression of scored boxes, step by step",
                          description="Class-wise non-maximum suppression: going down the scores, keep the best box "
                          "left and remove every box of its class that overlaps it by more than --iou. Without "
                          "--boxes, a detector's five boxes on a cat and a dog.")
    nms.add_argument("--boxes", default=None, metavar="LIST",
                     help='"x0 y0 x1 y1 score [class]; ..." (default: a worked example with a cat and a dog)')
    nms.add_argument("--iou", type=float, default=0.5, metavar="T", help="the IoU above which a box is removed "
                     "(default 0.5)")
    nms.add_argument("--json", action="store_true", help="print JSON instead of text")

    example = what.add_parser("example", help="recompute one slide example (or a file of your own) and check it",
                              description="Recompute one of the lecture slides' worked examples; where the slide "
                              "printed another number, say where and why. With --file, check your own examples, written "
                              "in the packaged examples' JSON format: one by NAME, or all of them.")
    example.add_argument("name", nargs="?", default=None, metavar="NAME",
                         help="the example's id (`cnnkit explain examples` lists them; with --file, optional)")
    example.add_argument("--file", default=None, metavar="JSON",
                         help="a JSON file of examples in the packaged format (cnnkit/data_files/deck_examples.json)")
    example.add_argument("--json", action="store_true", help="print JSON instead of text")

    examples = what.add_parser("examples", help="recompute every slide example", description="Recompute every slide example.")
    examples.add_argument("--json", action="store_true", help="print JSON instead of text")
    explain_quiz.add_quiz_parser(what)
    gradients_cmd.add_parser(what)
    return parser


def _padding(text: str) -> int | Literal["same", "valid"]:
    if text == "same":
        return "same"
    if text == "valid":
        return "valid"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"`--padding` must be a non-negative int, 'same' or 'valid'. Received: --padding={text!r}") from None
    if value < 0:
        raise ValueError(f"`--padding` must be a non-negative int, 'same' or 'valid'. Received: --padding={text!r}")
    return value


def _numbers(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in re.split(r"[\s,]+", text.strip()) if v]
    except ValueError:
        raise ValueError(f"`{name}` must be numbers separated by commas or spaces. Received: {name}={text!r}") from None


def _conv(args: argparse.Namespace) -> Any:
    from cnnkit import explain

    x, w = explain.parse_volume(args.input, "input"), explain.parse_filters(args.kernel, "kernel")
    bias = _numbers(args.bias, "--bias")
    if x.shape[0] == 1 and w.shape[:2] == (1, 1) and len(bias) == 1:
        return explain.explain_conv(x[0], w[0, 0], args.stride, _padding(args.padding), bias[0], args.flip, args.dilation)
    return explain.explain_conv_volume(x, w, bias[0] if len(bias) == 1 else bias, args.stride, _padding(args.padding),
                                       args.dilation, args.flip)


def _unused(args: argparse.Namespace, flags: tuple[str, ...], where: str) -> None:
    """A flag that the chosen sub-command does not read is an error, not silently ignored."""
    for flag in flags:
        value = getattr(args, flag)
        if value is not None:
            raise ValueError(f"`--{flag}` is not used by {where}. Received: --{flag}={value!r}")


def _required(args: argparse.Namespace, flags: tuple[str, ...], where: str) -> None:
    for flag in flags:
        if getattr(args, flag) is None:
            raise ValueError(f"`--{flag}` is required for {where}. Received: no --{flag}")


def _backprop(args: argparse.Namespace) -> Any:
    from cnnkit import explain

    padding = _padding(args.padding)
    if args.layer == "conv":
        _required(args, ("kernel",), "backprop conv")
        _unused(args, ("size", "mode"), "backprop conv (its window is the kernel)")
        return explain.explain_conv_backprop(args.input, args.kernel, args.grad, 1 if args.stride is None else args.stride,
                                             padding, args.dilation)
    _required(args, ("size",), "backprop pool")
    _unused(args, ("kernel",), "backprop pool (pooling has no weights)")
    if isinstance(padding, str):
        raise ValueError(f"`--padding` must be a non-negative int for backprop pool. Received: --padding={args.padding!r}")
    return explain.explain_pool_backprop(args.input, args.size, args.stride, padding, args.mode or "max", args.grad, args.dilation)


def _loss(args: argparse.Namespace) -> Any:
    from cnnkit import explain

    if args.kind == "cross-entropy":
        _required(args, ("logits", "labels"), "loss cross-entropy")
        _unused(args, ("predictions", "targets"), "loss cross-entropy (that is loss mse)")
        return explain.explain_cross_entropy(args.logits, args.labels)
    _required(args, ("predictions", "targets"), "loss mse")
    _unused(args, ("logits", "labels"), "loss mse (that is loss cross-entropy)")
    return explain.explain_mse(args.predictions, args.targets)


def _update(args: argparse.Namespace) -> Any:
    from cnnkit import explain

    return explain.explain_update(args.optimizer, args.weights, curvature=args.curvature, inputs=args.inputs,
                                  targets=args.targets, steps=args.steps, lr=args.lr, momentum=args.momentum,
                                  alpha=args.alpha, beta1=args.beta1, beta2=args.beta2, eps=args.eps)


def _calculate(args: argparse.Namespace) -> Any:
    """The explanation the sub-command asks for."""
    from cnnkit import explain

    if args.what == "conv":
        return _conv(args)
    if args.what == "pool":
        if args.padding < 0:
            raise ValueError(f"`--padding` must be a non-negative int. Received: --padding={args.padding}")
        return explain.explain_pool(args.input, args.size, args.stride, args.mode, args.padding, args.ceil_mode)
    if args.what == "activation":
        return explain.explain_activation(args.name, args.input, slope=args.slope, alpha=args.alpha, pieces=args.pieces)
    if args.what == "dense":
        return explain.explain_dense(args.input, args.weights, args.bias)
    if args.what == "softmax":
        return explain.explain_softmax(args.input)
    if args.what == "params":
        return explain.explain_params(args.layer, in_channels=args.in_channels, filters=args.filters, kernel=args.kernel,
                                      units=args.units, in_features=args.in_features, multiplier=args.multiplier,
                                      bias=not args.no_bias)
    if args.what == "iou":
        return explain.explain_iou(args.a, args.b)
    if args.what == "nms":
        return explain.explain_nms(args.boxes if args.boxes is not None else explain.NMS_EXAMPLE, args.iou)
    if args.what == "deconv":
        return explain.explain_deconv(args.input, args.kernel, args.stride, args.padding, args.output_padding, args.bias)
    if args.what == "loss":
        return _loss(args)
    if args.what == "update":
        return _update(args)
    return _backprop(args)


def run(args: argparse.Namespace) -> int:
    # imported here so that `cnnkit --help` stays light
    from cnnkit import explain

    if args.what == "quiz":
        return explain_quiz.run(args)
    if args.what == "gradients":
        return gradients_cmd.run(args)
    if args.what not in ("example", "examples"):
        check_flags(args)  # --figure and --cell fail before the work
        result = _calculate(args)
        figure = write_figure(args, result)  # None without --figure
        if args.json:
            print(json_text({**result.to_dict(), **({"figure": figure} if figure else {})}))
        else:
            print(explain.render_any(result) + (f"\nwrote the figure {figure}" if figure else ""))
        return 0
    if args.what == "example" and (args.name is not None or args.file is None):
        if args.name is None:
            raise ValueError("give an example NAME (`cnnkit explain examples` lists them) or --file JSON. Received: neither")
        one = explain.explain_example(args.name, None if args.file is None else explain.load_example_file(args.file))
        print(json_text(one.to_dict()) if args.json else explain.render_example(one))
        return 0 if one.ok else 1
    # `examples`, or `example --file JSON` without a NAME: every example of the set
    results = explain.explain_examples(None if args.what == "examples" else explain.load_example_file(args.file))
    if args.json:
        print(json_text({"ok": all(r.ok for r in results), "examples": [r.to_dict() for r in results]}))
    else:
        print(explain.render_examples(results))
    return 0 if all(r.ok for r in results) else 1
