"""cnnkit explore without a browser: every unit it works out is PyTorch's value (and cnnkit.reference's and cnnkit
explain's), its prediction is the run's, and its HTTP API answers bad requests with one-line JSON errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnkit.explore import unit as units
from cnnkit.explore.session import MAX_UPLOAD_BYTES, Explorer
from cnnkit.layers import Conv2dSame, MinPool2d
from cnnkit.runs import load_run
from tests.conftest import TrainedRun

pytest.importorskip("starlette", reason="cnnkit explore serves with starlette")


@pytest.fixture(scope="module")
def explorer(digits_run: TrainedRun) -> Explorer:
    return Explorer.open(digits_run.folder)


def _activations(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every named layer's output for ``x``, taken by hand with hooks: what the explorer must agree with."""
    found: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda m, i, o, name=name: found.setdefault(name, o.detach().clone()))
               for name, m in model.named_modules() if name]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return found


def test_every_worked_unit_is_the_networks_own_value(explorer: Explorer, digits_run: TrainedRun) -> None:
    from cnnkit.explain import explain_conv
    from cnnkit.reference import conv2d

    network = load_run(digits_run.folder).network()  # loaded independently of the explorer
    image = next(iter(explorer.pictures))
    truth = _activations(network, explorer.pictures[image].x)
    generator = torch.Generator().manual_seed(0)
    columns = explorer.layers(image)["layers"]
    assert [c["type"] for c in columns] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                                            "Linear"]
    kinds = set()
    for column in columns:
        shape = column["output_shape"]
        for _ in range(6):
            at = [int(torch.randint(0, s, (1,), generator=generator)) for s in shape]
            worked = explorer.unit(image, column["id"], at)
            expected = float(truth[column["name"]][(0, *at)])
            assert worked["pytorch"] == pytest.approx(expected, abs=1e-6)
            kinds.add(worked["kind"])
            if worked["kind"] != "other":
                assert worked["total"] == pytest.approx(expected, abs=1e-5), (column["id"], at)
            if worked["kind"] == "conv":
                module = network.get_submodule(column["name"])
                layer_input = worked["channels"]
                # each channel's sum is `cnnkit explain conv` of its window and kernel
                for channel in layer_input:
                    explained = explain_conv(np.array(channel["window"]), np.array(channel["kernel"]))
                    assert float(explained.output[0][0]) == pytest.approx(channel["sum"], abs=1e-9)
                # and the total is cnnkit.reference's convolution at that cell
                before = truth[columns[columns.index(column) - 1]["name"]] if columns.index(column) else \
                    explorer.pictures[image].x
                reference = conv2d(before.numpy(), module.weight.detach().numpy(), module.bias.detach().numpy(),
                                   padding=1)
                assert worked["total"] == pytest.approx(float(reference[(0, *at)]), abs=1e-5)
                if column["id"] == "conv1":  # conv, then batch norm and ReLU: the map the page shows after them
                    assert [s["type"] for s in worked["then"]] == ["BatchNorm2d", "ReLU"]
                    assert worked["final"] == pytest.approx(float(truth["relu1"][(0, *at)]), abs=1e-6)
                box = worked["receptive_field"]["box"]
                size = 3 if column["id"] == "conv1" else 5  # 3x3, then 3x3 on it: 5x5 (cut at the border)
                assert box[2] - box[0] + 1 <= size and box[3] - box[1] + 1 <= size
                assert box[0] <= at[1] <= box[2] and box[1] <= at[2] <= box[3]
    assert kinds == {"conv", "pointwise", "pool", "dense", "other"}


@pytest.mark.parametrize("module", [
    nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2),
    nn.Conv2d(3, 5, (3, 2), stride=(1, 2), padding=(2, 0), dilation=2),
    nn.Conv2d(3, 4, 4, padding="same"),
    nn.Conv2d(4, 4, 3, groups=4, bias=False),  # depthwise
    Conv2dSame(3, 4, 3, stride=2),  # TensorFlow's asymmetric "same"
    nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
    nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False),
    MinPool2d(2),
    nn.Linear(12, 5),
], ids=lambda m: repr(m)[:60])
def test_any_layers_units_are_worked_to_pytorchs_value(module: nn.Module) -> None:
    torch.manual_seed(1)
    shape = (12,) if isinstance(module, nn.Linear) else (4 if getattr(module, "in_channels", 4) == 4 else 3, 9, 10)
    x = torch.randn(*shape)
    with torch.no_grad():
        out = module(x[None])[0]
    for at in np.ndindex(*out.shape):
        worked = units.work(module, "layer", x, out, at)
        assert worked["total"] == pytest.approx(float(out[at]), abs=1e-5), at
    if isinstance(module, nn.Conv2d):
        spec = units.page_spec(module, x, out)
        assert spec is not None and spec["padding"] == units.work(module, "l", x, out, (0, 0, 0))["padding"]
    with pytest.raises(ValueError, match="inside it"):
        units.work(module, "layer", x, out, tuple(s for s in out.shape))


def test_the_prediction_is_the_runs_and_the_images_are_its_held_out_ones(explorer: Explorer,
                                                                         digits_run: TrainedRun) -> None:
    run = load_run(digits_run.folder)
    network = run.network()
    held_out, _ = run.held_out()
    images = explorer.images()
    assert len(images) == 24 and {i["label_name"] for i in images} == set(run.card.class_names)
    right = 0
    for item in images:
        index = int(item["id"].split("-")[1])
        assert item["label"] == int(held_out.labels[index])
        prediction = explorer.predict(item["id"])
        with torch.no_grad():
            probabilities = torch.softmax(network(run.card.prep().normalise(held_out.images[index:index + 1]))[0], 0)
        assert prediction["predicted"] == int(probabilities.argmax())
        assert prediction["classes"][0]["probability"] == pytest.approx(float(probabilities.max()), abs=1e-6)
        right += prediction["predicted"] == item["label"]
    assert right >= 12  # a trained run: most of them right


@pytest.fixture(scope="module")
def client(explorer: Explorer) -> Any:
    from starlette.testclient import TestClient

    from cnnkit.explore.app import create_app

    return TestClient(create_app(explorer))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_api_answers_what_the_explorer_computes(client: Any, explorer: Explorer) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "cnnkit explore" in page.text and "CNNKIT_STATIC = null" in page.text
    about = client.get("/api/model").json()
    assert about["input_shape"] == [1, 8, 8] and about["classes"] == 5
    image = client.get("/api/images").json()[0]["id"]
    assert client.get("/api/predict", params={"image": image}).json() == json.loads(json.dumps(explorer.predict(image)))
    layers = client.get("/api/layers", params={"image": image}).json()
    assert sum(layer["params"] for layer in layers["layers"]) == layers["total_params"]
    maps = client.get("/api/maps", params={"image": image, "layer": "conv1", "start": 2, "count": 3}).json()
    assert [m["channel"] for m in maps["maps"]] == [2, 3, 4] and maps["shape"] == [8, 8, 8]
    unit = client.get("/api/unit", params={"image": image, "layer": "conv2", "at": "1,2,3"}).json()
    assert unit["total"] == pytest.approx(unit["pytorch"], abs=1e-5) and len(unit["channels"]) == 8
    cam = client.get("/api/attribution", params={"image": image, "method": "saliency", "target": 1}).json()
    assert cam["target"] == 1 and cam["png"].startswith("data:image/png;base64,")
    filters = client.get("/api/filters", params={"layer": "conv1"}).json()
    assert filters["shape"] == [8, 1, 3, 3] and len(filters["filters"]) == 8

    # an upload (a drawn digit) goes through the same preparation as a file
    drawn = np.zeros((80, 80), dtype=np.uint8)
    drawn[10:70, 35:45] = 255
    added = client.post("/api/images", content=_png(drawn), headers={"X-Filename": "one.png"}).json()
    assert added["title"] == "one.png"
    assert client.get("/api/predict", params={"image": added["id"]}).json()["classes"]


@pytest.mark.parametrize(("method", "path", "params", "status", "words"), [
    ("get", "/api/predict", {}, 400, "missing query parameter 'image'"),
    ("get", "/api/predict", {"image": "../../etc/passwd"}, 404, "no image"),
    ("get", "/api/images/..%2F..%2Fetc%2Fpasswd", {}, 404, "Not Found"),
    ("get", "/api/maps", {"image": "heldout-0", "layer": "nope"}, 404, "no layer 'nope'"),
    ("get", "/api/maps", {"image": "IMAGE", "layer": "conv1", "count": "x"}, 400, "must be a whole number"),
    ("get", "/api/maps", {"image": "IMAGE", "layer": "conv1", "count": "100000"}, 400, "count 1 to 256"),
    ("get", "/api/unit", {"image": "IMAGE", "layer": "conv1", "at": "0,99,0"}, 400, "inside it"),
    ("get", "/api/unit", {"image": "IMAGE", "layer": "conv1", "at": "a,b"}, 400, "channel,y,x"),
    ("get", "/api/attribution", {"image": "IMAGE", "method": "lime"}, 400, "gradcam or saliency"),
    ("get", "/api/attribution", {"image": "IMAGE", "target": "7"}, 400, "class index 0 to 4"),
    ("get", "/api/layers", {"depth": "9"}, 400, "depth must be 1 to 1"),
    ("get", "/api/filters", {"layer": "dense1"}, 400, "no convolution layer named 'dense1'"),
    ("get", "/nowhere", {}, 404, "/nowhere"),
    ("post", "/api/images", b"not an image", 400, "cannot be decoded"),
    ("post", "/api/images", b"", 400, "empty"),
])
def test_bad_requests_get_a_one_line_json_error(client: Any, method: str, path: str, params: Any, status: int,
                                                words: str) -> None:
    image = client.get("/api/images").json()[0]["id"]
    if isinstance(params, dict):
        params = {k: (image if v == "IMAGE" else v) for k, v in params.items()}
        response = getattr(client, method)(path, params=params)
    else:
        response = client.post(path, content=params, headers={"X-Filename": "x.png"})
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in response.text


def test_uploads_are_limited_in_bytes_and_pixels(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    too_big = client.post("/api/images", content=b"0" * (MAX_UPLOAD_BYTES + 1), headers={"X-Filename": "big.png"})
    assert too_big.status_code == 413 and "more than" in too_big.json()["error"]
    monkeypatch.setattr("cnnkit.explore.session.MAX_UPLOAD_PIXELS", 100)
    wide = client.post("/api/images", content=_png(np.zeros((20, 20), dtype=np.uint8)), headers={"X-Filename": "w.png"})
    assert wide.status_code == 400 and "allowed" in wide.json()["error"] and "/tmp" not in wide.json()["error"]


def test_uploads_need_the_header_keep_their_names_and_make_room(client: Any, explorer: Explorer) -> None:
    digit = _png(np.full((8, 8), 200, dtype=np.uint8))
    bare = client.post("/api/images", content=digit)  # what a cross-site form could send: refused
    assert bare.status_code == 400 and "X-Filename" in bare.json()["error"]
    named = client.post("/api/images", content=digit, headers={"X-Filename": "%E7%8C%AB.png"}).json()
    assert named["title"] == "\u732b.png"
    for _ in range(70):
        client.post("/api/images", content=digit, headers={"X-Filename": "d.png"})
    uploads = [i for i in client.get("/api/images").json() if i["id"].startswith("upload-")]
    assert len(uploads) == 64 and named["id"] not in {i["id"] for i in uploads}  # the oldest made room
    other = client.get("/api/model", headers={"Host": "evil.example:8765"})
    assert other.status_code == 400 and "127.0.0.1" in other.json()["error"]


def test_the_static_page_carries_the_answers_and_needs_no_network(digits_run: TrainedRun, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.cli import main

    digit = tmp_path / "digit.png"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(digit)
    out = tmp_path / "page.html"
    assert main(["explore", str(digits_run.folder), "--static", str(out), "--image", str(digit)]) == 0
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    data = json.loads(html.split("const CNNKIT_STATIC = ", 1)[1].split(";</script>", 1)[0])
    assert data["images"][0]["title"] == "digit.png"
    # a small network: every layer clickable (a flatten has no formula: its value is shown)
    assert set(data["units"]) == {"conv1", "batchnorm1", "relu1", "conv2", "relu2", "maxpool1", "dense1"}
    # refused: --image without --static, an unreadable image; nothing written
    assert main(["explore", str(digits_run.folder), "--image", str(digit)]) == 2
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["explore", str(digits_run.folder), "--static", str(tmp_path / "no.html"), "--image", str(bad)]) == 2
    assert "bad.png" in capsys.readouterr().err and not (tmp_path / "no.html").exists()


def test_in_place_layers_and_functional_steps_do_not_change_the_worked_numbers() -> None:
    """ReLU(inplace=True) overwrites its input, and a functional step between two layers breaks the chain of
    pointwise layers: the conv, batch norm and ReLU units are still PyTorch's, and the chain stops where it should."""
    from cnnkit.visualize.resolve import Subject, _untrained

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.relu = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)
            self.conv2, self.bn2, self.drop = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.Dropout()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.relu(self.bn(self.conv(x)))
            return self.drop(torch.relu(self.bn2(self.conv2(x))) * 2)

    torch.manual_seed(0)
    net = Net().eval()
    for bn in (net.bn, net.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
    explorer = Explorer(Subject(net, "net", "table", _untrained((1, 9, 9)), ()), [])
    from cnnkit.explore.session import Picture

    x = torch.randn(1, 1, 9, 9)
    explorer.pictures["a"] = Picture("a", "a", x)
    with torch.no_grad():
        conv = net.conv(x)
        bn = net.bn(conv)
    for at in ((0, 1, 1), (1, 3, 4), (3, 6, 0)):
        worked = explorer.unit("a", "conv", at)
        assert worked["total"] == pytest.approx(float(conv[(0, *at)]), abs=1e-5)
        steps = worked["then"]
        assert [s["type"] for s in steps] == ["BatchNorm2d", "ReLU"]
        assert steps[0]["input"] == pytest.approx(float(conv[(0, *at)]), abs=1e-6)
        assert steps[1]["input"] == pytest.approx(float(bn[(0, *at)]), abs=1e-6)  # before the in-place ReLU
        assert worked["final"] == pytest.approx(max(0.0, float(bn[(0, *at)])), abs=1e-6)
        assert worked["receptive_field"] is not None
    second = explorer.unit("a", "conv2", (0, 2, 2))
    assert [s["type"] for s in second["then"]] == ["BatchNorm2d"]  # torch.relu and *2 come between it and dropout


def test_a_localize_run_shows_its_class_scores_without_its_box(localize_run: TrainedRun) -> None:
    """A localize network outputs K class scores, then 4 box numbers: the bars and Grad-CAM use the K scores."""
    run = load_run(localize_run.folder)
    explorer = Explorer.open(localize_run.folder, samples=5)
    image = next(iter(explorer.pictures))
    prediction = explorer.predict(image)
    with torch.no_grad():
        output = run.network()(explorer.pictures[image].x)[0]
    k = len(run.card.class_names)
    assert len(prediction["classes"]) == k and prediction["predicted"] == int(output[:k].argmax())
    assert prediction["classes"][0]["probability"] == pytest.approx(float(torch.softmax(output[:k], 0).max()), abs=1e-6)
    assert explorer.attribution(image)["target"] == prediction["predicted"]
