"""Multi-process training: two CPU processes under torchrun (gloo) against one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.data import batches
from cnnkit.training import TrainConfig, train
from cnnkit.training import distributed as D
from cnnkit.training.loop import seed_for

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")

# no batch norm and no dropout: with those, processes see per-process statistics and draws (documented)
TABLE = """\
input 1x8x8
conv 8 3x3 padding=same
relu
maxpool 2
flatten
dense 32
relu
dense 10
"""
ROOT = Path(__file__).resolve().parents[2]


def _options(table: Path, out: Path) -> list[str]:
    return ["--model", str(table), "--data", "digits", "--epochs", "2", "--batch-size", "64", "--precision", "fp32",
            "--optimizer", "sgd", "--lr", "0.1", "--seed", "5", "--out", str(out)]


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    table = tmp_path / "net.txt"
    table.write_text(TABLE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cnnkit",
               "train", *_options(table, tmp_path / "ddp"), "--no-report"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.count("run directory:") == 1, done.stdout  # only rank 0 reports
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic as each torchrun process: one thread
    try:
        config = TrainConfig.from_dict({"model": str(table), "data": "digits", "epochs": 2, "batch_size": 64,
                                        "precision": "fp32", "optimizer": "sgd", "lr": 0.1, "seed": 5,
                                        "out": str(tmp_path / "one")})
        single = train(config, quiet=True)
    finally:
        torch.set_num_threads(threads)
    ddp_history = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(ddp_history) == 2
    for mine, theirs in zip(ddp_history, single.history, strict=True):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    ddp_weights, one_weights = load_file(str(tmp_path / "ddp" / "model.safetensors")), load_file(str(single.run_dir / "model.safetensors"))
    assert ddp_weights.keys() == one_weights.keys()
    for name, tensor in one_weights.items():
        torch.testing.assert_close(ddp_weights[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert single.history[-1]["test_accuracy"] > 0.5  # it learned something: agreement of two broken runs proves nothing
    # rank 0's evaluation of the whole test split says what the shared in-loop evaluation said
    final = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert final["accuracy"] == round(ddp_history[-1]["test_accuracy"], 4)
    assert final["loss"] == pytest.approx(ddp_history[-1]["test_loss"], abs=1e-4)
    # what the command writes beside the run; the Python API evaluates nothing and times nothing
    command_only = {"timings.json", "metrics.json", "confusion_matrix.png", "mistakes.png"}
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir() if p.name not in command_only) == \
        sorted(p.name for p in single.run_dir.iterdir())


def test_shards_of_the_global_batch_are_exactly_the_single_process_batch() -> None:
    """Rank r's k-th local batch of size B/N holds positions kB + r, kB + r + N, ...: together, batch k of one process."""
    data = (torch.arange(20).view(20, 1, 1, 1).to(torch.uint8), torch.arange(20))
    one = [y for _, y in batches(data, 6, shuffle=True, generator=torch.Generator().manual_seed(1))]
    shards = [[y for _, y in batches(data, 3, shuffle=True, generator=torch.Generator().manual_seed(1), rank=r,
                                     world_size=2)] for r in range(2)]
    for k, expected in enumerate(one):
        assert sorted(torch.cat([shards[0][k], shards[1][k]]).tolist()) == sorted(expected.tolist())


def test_environment_and_batch_split() -> None:
    assert D.from_environment({}) == D.SINGLE
    assert D.from_environment({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == D.Distributed(1, 4, 1)
    assert D.from_environment({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) == D.SINGLE
    with pytest.raises(ValueError, match=r"need 0 <= RANK < WORLD_SIZE\. Received: RANK=4, WORLD_SIZE=4"):
        D.from_environment({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
    with pytest.raises(ValueError, match="must be integers"):
        D.from_environment({"RANK": "x", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert D.local_batch_size(256, D.Distributed(0, 4, 0)) == 64
    with pytest.raises(ValueError, match=r"--batch-size 30 is the global batch and must divide by the number of "
                                         r"processes \(4\); use e.g. --batch-size 28"):
        D.local_batch_size(30, D.Distributed(0, 4, 0))
    # rank 0 keeps the single-process seeds (exact resume of older runs); other ranks draw differently
    assert seed_for(3, 2, 7) == seed_for(3, 2, 7, 0) and seed_for(3, 2, 7, 1) != seed_for(3, 2, 7)


def test_two_nodes_on_loopback_train_a_pack_as_one_process_does(tmp_path: Path) -> None:
    """torchrun --nnodes=2: two launches (one process each) meeting on 127.0.0.1, as two machines would, each reading
    only its shard of a packed folder (memory-mapped: a rank touches only the pages of its own images)."""
    import socket

    from tests.data.test_packed import TABLE as PACKED_TABLE
    from tests.data.test_packed import _folder

    root = _folder(tmp_path / "photos", per_class=40)
    pack = tmp_path / "photos.cnnkit"
    from cnnkit.cli import main

    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(pack)]) == 0
    table = tmp_path / "net.txt"
    table.write_text(PACKED_TABLE)
    options = ["--model", str(table), "--data", f"packed:{pack}", "--epochs", "2", "--batch-size", "16",
               "--precision", "fp32", "--optimizer", "sgd", "--lr", "0.1", "--seed", "5"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                               f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}", "-m",
                               "cnnkit", "train", *options, "--out", str(tmp_path / "nodes"), "--no-report"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (out, err) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, out[-2000:] + err[-3000:]
    assert outputs[0][0].count("run directory:") == 1 and "run directory:" not in outputs[1][0]  # node 0 reports
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig.from_dict({"model": str(table), "data": f"packed:{pack}", "epochs": 2, "batch_size": 16,
                                        "precision": "fp32", "optimizer": "sgd", "lr": 0.1, "seed": 5,
                                        "out": str(tmp_path / "one")})
        single = train(config, quiet=True)
    finally:
        torch.set_num_threads(threads)
    history = [json.loads(line) for line in (tmp_path / "nodes" / "metrics.jsonl").read_text().splitlines()]
    for mine, theirs in zip(history, single.history, strict=True):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    for name, tensor in load_file(str(single.run_dir / "model.safetensors")).items():
        torch.testing.assert_close(load_file(str(tmp_path / "nodes" / "model.safetensors"))[name], tensor,
                                   rtol=1e-4, atol=1e-5, msg=name)
    assert single.history[-1]["test_accuracy"] > 0.6
