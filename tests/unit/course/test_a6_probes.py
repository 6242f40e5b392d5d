"""Assignment 6's probes, the parts that need no DVC run: wandb's transaction-log framing
(read against logs framed here, and against a real offline run when wandb is installed),
`dvc status --json` and `dvc repro` output parsing; the template carries the project
files with the solution's stages and remote stripped."""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from autograder.course.templates import check_template, generate_template

ROOT = Path(__file__).resolve().parents[3]
NAME = "a6_dvc_wandb"


def _probes():  # noqa: ANN202 - a module
    if "a6_probes" in sys.modules:  # registering its probes twice is an error
        return sys.modules["a6_probes"]
    spec = importlib.util.spec_from_file_location("a6_probes", ROOT / "solutions" / NAME / "probes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["a6_probes"] = module
    spec.loader.exec_module(module)
    return module


def _frame(records: list[bytes]) -> bytes:
    """Records in leveldb-log framing, as wandb writes a .wandb file."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for rec in records:
        rest, first = rec, True
        while True:
            room = 32768 - len(out) % 32768
            if room < 7:
                out += b"\0" * room
                continue
            chunk, rest = rest[: room - 7], rest[room - 7:]
            kind = (1 if first else 4) if not rest else (2 if first else 3)
            out += struct.pack("<IHB", zlib.crc32(chunk, zlib.crc32(bytes([kind]))), len(chunk), kind)
            out += chunk
            first = False
            if not rest:
                break
    return bytes(out)


def test_transaction_log_records_across_blocks(tmp_path: Path) -> None:
    probes = _probes()
    records = [b"a" * 10, os.urandom(70_000), b"", b"z" * 32_700, b"tail"]
    path = tmp_path / "run-x.wandb"
    path.write_bytes(_frame(records))
    assert probes.read_transaction_log(path) == records


def test_transaction_log_torn_tail_ends_the_list(tmp_path: Path) -> None:
    probes = _probes()
    data = _frame([b"one", b"two" * 100])
    path = tmp_path / "run-x.wandb"
    path.write_bytes(data[:-5])  # a run killed while writing
    assert probes.read_transaction_log(path) == [b"one"]
    path.write_bytes(data[:15] + b"X" + data[16:])  # a flipped byte of "one": its CRC stops it
    assert probes.read_transaction_log(path) == []
    path.write_bytes(b"not a wandb log")
    with pytest.raises(ValueError, match="not a wandb transaction log"):
        probes.read_transaction_log(path)


def test_status_and_repro_output_parsing() -> None:
    probes = _probes()
    out = '{"train": [{"changed deps": {"params.yaml": {"train": "modified"}}}]}\n'
    assert probes.changed_stages(out) == ["train"]
    assert probes.changed_stages("{}\n") == []
    assert probes.changed_stages("ERROR: dvc.yaml is broken") is None
    repro = ("Stage 'prepare' didn't change, skipping\nRunning stage 'train':\n> python "
             "train.py\nRunning stage 'evaluate':\n")
    assert probes.ran_stages(repro) == ["train", "evaluate"]


def test_real_offline_run_is_read(tmp_path: Path) -> None:
    """A finished offline run and one killed before finish (no exit record)."""
    pytest.importorskip("wandb")
    probes = _probes()
    script = ("import os, sys, wandb\n"
              "run = wandb.init(project='p', config={'lr': 0.5, 'epochs': 2})\n"
              "for e in (1, 2):\n    run.log({'epoch': e, 'loss': 1.0 / e})\n"
              "if sys.argv[1] == 'kill':\n    os._exit(0)\nrun.finish()\n")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_DIR": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path / "cfg"),
           "WANDB_CACHE_DIR": str(tmp_path / "cache"), "WANDB_DISABLE_GIT": "true"}
    for how in ("finish", "kill"):
        subprocess.run([sys.executable, "-c", script, how], cwd=tmp_path, env=env,
                       check=True, timeout=120)
    runs = probes.wandb_runs(tmp_path)
    assert [r["finished"] for r in runs] == [True, False]
    done = runs[0]
    assert done["config"] == {"lr": 0.5, "epochs": 2} and done["exit_code"] == 0
    assert [(h["epoch"], h["loss"]) for h in done["history"]] == [(1, 1.0), (2, 0.5)]
    assert done["summary"]["loss"] == 0.5


def test_template_strips_the_pipeline_and_remote() -> None:
    assert check_template(ROOT, NAME) == []
    files = generate_template(ROOT, NAME)
    dvc_yaml = files[Path("dvc.yaml")].decode()
    assert "cmd:" not in dvc_yaml and "# TODO: prepare, train and evaluate" in dvc_yaml
    config = files[Path(".dvc/config")].decode()
    assert "no_scm = True" in config and "url" not in config and "# TODO" in config
    assert files[Path("params.yaml")] == (ROOT / "solutions" / NAME / "params.yaml").read_bytes()
