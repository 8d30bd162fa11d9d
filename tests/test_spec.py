"""The layer-table format: the slides' tables, every layer word, round trips and error messages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit import spec
from cnnkit.spec.words import LAYER_WORDS

FIXTURES = {p["id"]: p for p in json.loads(
    (resources.files("cnnkit") / "data_files" / "seed_examples.json").read_text())["parameters"]}

EVERY_WORD = """\
input 3x32x32
conv 8 3x3 padding=same
batchnorm
relu
depthwise 3x3 multiplier=2 padding=1
leakyrelu
separable 12 3x3 stride=2 padding=same
elu 0.5
deconv 6 3x3 stride=2 padding=1 output_padding=1
sigmoid
conv 8 5x3 stride=2x1 dilation=2 groups=2 bias=false
tanh
maxpool 2
avgpool 3 stride=1 padding=1
minpool 2 ceil_mode=true
conv 16 1x1
globalavgpool
dense 40
maxout 4
dropout 0.3
batchnorm
dense 10 bias=false
softmax
"""


def _slide_shape(text: str) -> tuple[int, ...]:
    """The slides write HxWxC ('28x28x6') or a count ('120'); cnnkit writes CxHxW."""
    parts = tuple(int(p) for p in text.split("x"))
    return (parts[2], parts[0], parts[1]) if len(parts) == 3 else parts


@pytest.mark.parametrize(("table", "fixture"), [("lenet_slides", "lenet-table"), ("keras_slides", "keras-summary")])
def test_shipped_tables_reproduce_the_slides(table: str, fixture: str) -> None:
    parsed = spec.load_shipped(table)
    model = spec.build(parsed)
    expected = FIXTURES[fixture]
    assert parsed.input_shape == _slide_shape(expected["input"])
    # the LeNet slide folds flatten and softmax into neighbouring rows; Keras folds activations into their layer
    folded = {"lenet-table": ("flatten", "softmax"), "keras-summary": ("relu", "softmax")}[fixture]
    rows = iter(expected["layers"])
    for layer, shape, module in zip(parsed.layers, parsed.shapes, model, strict=True):
        if layer.kind in folded:
            continue
        row = next(rows)
        assert shape == _slide_shape(row["output"]), (layer.source, row)
        assert sum(p.numel() for p in module.parameters()) == row["params"], (layer.source, row)
        if "activation_size" in row:
            assert torch.Size(shape).numel() == row["activation_size"]
    assert next(rows, None) is None
    assert sum(p.numel() for p in model.parameters()) == expected["expected_total"]


def test_every_word_builds_and_torch_agrees_with_the_inferred_shapes() -> None:
    parsed = spec.parse(EVERY_WORD, "every.txt")
    model = spec.build(parsed)
    x = torch.randn(2, *parsed.input_shape)
    for module, shape in zip(model, parsed.shapes, strict=True):
        x = module(x)
        assert tuple(x.shape[1:]) == shape, module
    assert parsed.output_shape == (10,)


# a canonical line per word (options that differ from the defaults, so that reading back is tested) and inputs it fits
CONTRACT_CASES: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "conv": [("conv 8 5x3 stride=2x1 padding=same dilation=2 groups=2 bias=false", (4, 17, 16)),
             ("conv 6 3x3 padding=2x1", (3, 8, 9))],
    "depthwise": [("depthwise 3x3 stride=2 padding=1 multiplier=2", (3, 9, 9))],
    "separable": [("separable 12 3x3 stride=2 padding=same multiplier=2 bias=false", (3, 11, 10))],
    "deconv": [("deconv 6 3x3 stride=2 padding=1 output_padding=1 dilation=2 groups=2 bias=false", (4, 5, 7))],
    "maxpool": [("maxpool 3x3 stride=2 padding=1 ceil_mode=true", (2, 9, 8))],
    "avgpool": [("avgpool 2x3 stride=1 padding=1", (2, 7, 7))],
    "minpool": [("minpool 2x2 ceil_mode=true", (2, 7, 7))],
    "globalavgpool": [("globalavgpool", (5, 4, 3))],
    "relu": [("relu", (3, 4, 4))],
    "leakyrelu": [("leakyrelu 0.2", (6,))],
    "elu": [("elu 0.5", (2, 3, 3))],
    "sigmoid": [("sigmoid", (5,))],
    "tanh": [("tanh", (2, 3, 3))],
    "maxout": [("maxout 3", (12,)), ("maxout 2", (6, 4, 4))],
    "softmax": [("softmax", (10,))],
    "flatten": [("flatten", (3, 4, 5))],
    "dense": [("dense 7 bias=false", (20,))],
    "dropout": [("dropout 0.3", (4, 5, 5))],
    "batchnorm": [("batchnorm", (4, 5, 5)), ("batchnorm", (6,))],
}


@pytest.mark.parametrize("word", [w for w in spec.WORDS if w != "input"])
def test_every_word_keeps_its_contract(word: str) -> None:
    """Grammar, shape rule, module and read-back of one word agree: line -> shape == torch's shape -> same line."""
    assert word in CONTRACT_CASES, f"add a canonical line for the new layer word {word!r} to CONTRACT_CASES"
    for line, in_shape in CONTRACT_CASES[word]:
        table = f"input {'x'.join(map(str, in_shape))}\n{line}\n"
        parsed = spec.parse(table)
        (layer,) = parsed.layers
        assert layer.kind == word
        assert parsed.to_text() == table, "the case's line is not canonical"
        model = spec.build(parsed).eval()
        assert [name for name, _ in model.named_children()] == [f"{word}1"]
        with torch.no_grad():
            y = model(torch.randn(2, *in_shape))
        assert (2, *parsed.output_shape) == tuple(y.shape), line
        assert spec.to_text(model, in_shape) == table
        claimed_by = [w.name for w in LAYER_WORDS.values() if w.read_back(model[0]) is not None]
        assert claimed_by == [word], f"{type(model[0]).__name__} must read back as exactly one word"


def test_reading_a_table_does_not_import_torch() -> None:
    code = "import sys, cnnkit.spec; cnnkit.spec.load_shipped('lenet_slides'); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_round_trip_text_to_sequential_to_text() -> None:
    parsed = spec.parse(EVERY_WORD)
    canonical = parsed.to_text()
    assert spec.to_text(spec.build(parsed), parsed.input_shape) == canonical
    assert spec.parse(canonical).to_text() == canonical
    # the canonical text leaves out defaults, and keeps what differs
    assert "maxpool 2x2\n" in canonical and "avgpool 3x3 stride=1 padding=1\n" in canonical
    assert "leakyrelu\n" in canonical and "elu 0.5\n" in canonical
    assert "conv 8 5x3 stride=2x1 dilation=2 groups=2 bias=false\n" in canonical


def test_defaults_follow_the_slides() -> None:
    parsed = spec.parse("input 1x8x8\nmaxpool 2\nleakyrelu\ndropout\n")
    assert parsed.layers[0].args["stride"] == (2, 2)  # stride defaults to the pool size
    assert parsed.layers[1].args["slope"] == 0.1
    model = spec.build(parsed)
    assert isinstance(model[1], nn.LeakyReLU) and model[1].negative_slope == 0.1
    assert isinstance(model[2], nn.Dropout) and model[2].p == 0.5


def test_handwritten_sequential_writes_as_a_table() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
    text = spec.to_text(model, (1, 28, 28))
    assert text == "input 1x28x28\nconv 4 3x3 padding=1\nrelu\nmaxpool 2x2\nflatten\ndense 10\n"
    rebuilt = spec.build(spec.parse(text))
    assert [type(m) for m in rebuilt] == [type(m) for m in model]


def test_unsupported_module_is_named() -> None:
    with pytest.raises(TypeError, match=r"layer '1': GRU has no line in the layer-table format"):
        spec.to_text(nn.Sequential(nn.ReLU(), nn.GRU(3, 3)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input 6x3x3\nconv 16 5x5\n",
         r"^net\.txt:2: `conv 16 5x5`: convolution output height would be \(3 \+ 2\*0 - 5\)/1 \+ 1 = -1, which is not "
         r"positive.*Received: input_size=3, kernel=5, stride=1, padding=0, dilation=1$"),
        ("input 3x32x32\n\n# a comment\nconv 6 5x5 strde=2\n", r"^net\.txt:4: `conv 6 5x5 strde=2`: conv has no option 'strde'"),
        ("input 3x32x32\nconvv 3 3\n", r"^net\.txt:2: `convv 3 3`: unknown layer 'convv'\. Did you mean 'conv'"),
        ("input 3x32x32\nconv 6\n", r"net\.txt:2: `conv 6`: conv takes 2 values, got 1 \(6\)\. Usage: conv N KxK"),
        ("input 3x32x32\nconv six 5x5\n", r"net\.txt:2: .*`filters` must be a whole number\. Received: filters=six"),
        ("input 3x8x8\nconv 4 3x3\ndense 10\n", r"net\.txt:3: `dense 10`: dense needs a vector.*flatten"),
        ("input 3x8x8\nflatten\nmaxpool 2\n", r"net\.txt:3: `maxpool 2`: maxpool needs feature maps"),
        ("input 3x8x8\nconv 4 3x3 groups=2\n", r"net\.txt:2: .*`in_channels` \(=3\) must be divisible by `groups` \(=2\)"),
        ("input 10\ndense 6\nmaxout 4\n", r"net\.txt:3: `maxout 4`: .*6 input units must be divisible by 4"),
        ("input 3x8x8\ndropout 1.5\n", r"net\.txt:2: .*`rate` must be in \[0\.0, 1\.0\)\. Received: rate=1\.5"),
        ("conv 3 3\n", r"net\.txt: the table has no `input CxHxW` line"),
        ("input 3x8x8\nrelu\ninput 3x8x8\n", r"net\.txt:3: `input 3x8x8`: `input` must be the first layer"),
        ("input 3x8\n", r"net\.txt:1: `input 3x8`: .*CxHxW"),
        ("input 3x8x8\n", r"net\.txt: the table has no layers"),
        ("input 1x8x8\nmaxpool 3 padding=2\n", r"net\.txt:2: .*must be at most half the pool size"),
        ("input 1x8x8\nconv 1 3 stride=0\n", r"net\.txt:2: .*`stride` must be at least 1\. Received: stride=0"),
    ],
)
def test_bad_lines_give_one_message_with_file_line_and_layer(text: str, message: str) -> None:
    with pytest.raises(spec.SpecError, match=message) as caught:
        spec.parse(text, "net.txt")
    assert "\n" not in str(caught.value)


def test_input_override_and_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "lenet.txt"
    path.write_text(spec.shipped_tables()["lenet_slides"])
    assert spec.load(path, input_shape=(3, 36, 36)).shapes[5] == (16, 6, 6)
    with pytest.raises(FileNotFoundError, match="no such layer-table file"):
        spec.load(tmp_path / "missing.txt")
    binary = tmp_path / "net.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(spec.SpecError, match=re.escape(f"{binary}: not a text file")):
        spec.load(binary)
    with pytest.raises(ValueError, match=r"`--input` must be CxHxW"):
        spec.parse_input_shape("3x32")


def test_unknown_shipped_table_suggests() -> None:
    with pytest.raises(ValueError, match=r"no shipped layer table named 'lenet'\. Did you mean lenet_slides"):
        spec.load_shipped("lenet")
