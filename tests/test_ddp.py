"""Data-parallel teacher under torchrun (2 CPU processes, gloo) gives the single-process teacher.

Tolerance: both runs do the same arithmetic (each rank sums its slice of every global batch, gradients are summed
across ranks, the loss is divided by the global batch size), so they differ only by float32 summation order and
padding widths: ~1e-6 relative per step, over a few dozen steps. The store then rounds each logit to fp16 relative
to its row maximum (a step of 2^-11·|z − max| ≤ 0.01 here). So dense logits must agree to 0.02 and perplexities
(computed from the exact logits) to 1e-3 relative; a real bug (a lost shard, unsummed gradients, a wrong row order)
moves logits by whole units.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from teacher_fixtures import corpus_config, topic_docs

from bat_core.cli import build_parser, configs
from bat_core.config import TeacherConfig
from bat_core.data.corpus import load_corpus
from bat_core.teachers.build import build_teacher
from bat_core.teachers.store import TeacherLogits

ROOT = Path(__file__).resolve().parents[1]
TEACHER_ARGS = ["--device", "cpu", "--teacher-mode", "top-n", "--teacher-top-n-layers", "1", "--teacher-epochs", "2",
                "--teacher-batch-size", "8", "--teacher-lr", "1e-3", "--teacher-head-lr", "1e-2",
                "--teacher-max-length", "48", "--teacher-encode-batch-size", "5"]
CORPUS_ARGS = ["--vocab-size", "500", "--min-df", "1", "--max-df", "1.0", "--no-remove-boilerplate",
               "--dev-frac", "0.2", "--test-frac", "0.2"]


def _configs(*argv: str):
    return configs(build_parser().parse_args(["teacher", *argv]))


def test_cli_options_map_to_configs(tiny_bert_dir):
    cfg = _configs("demo", "--out", "x", "--teacher-model", str(tiny_bert_dir), *TEACHER_ARGS, *CORPUS_ARGS)
    assert cfg.teacher == TeacherConfig(model=str(tiny_bert_dir), device="cpu", mode="top-n", top_n_layers=1,
                                        epochs=2, batch_size=8, lr=1e-3, head_lr=1e-2, max_length=48,
                                        encode_batch_size=5)
    assert cfg.corpus == corpus_config()
    # every teacher setting but the device has a flag, generated from the dataclass
    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["teacher"]._actions}
    from dataclasses import fields

    assert {f"teacher__{f.name}" for f in fields(TeacherConfig) if f.name != "device"} <= flags


FROZEN_CROSS_FIT = ["--device", "cpu", "--teacher-mode", "frozen", "--teacher-head", "linear", "--cross-fit", "3",
                    "--teacher-head-epochs", "20", "--teacher-head-lr", "1e-2", "--teacher-max-length", "48",
                    "--teacher-encode-batch-size", "5", "--teacher-head-batch-size", "7"]


@pytest.mark.slow
@pytest.mark.parametrize("teacher_args", [TEACHER_ARGS, FROZEN_CROSS_FIT], ids=["top-n", "frozen-cross-fit"])
def test_two_process_teacher_matches_one_process(tmp_path, tiny_bert_dir, teacher_args):
    docs, _ = topic_docs()
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(docs))
    out = tmp_path / "ddp_teacher"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "bat_core", "teacher", str(path), "--out", str(out), "--teacher-model", str(tiny_bert_dir), "--quiet",
           *teacher_args, *CORPUS_ARGS]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    ddp = TeacherLogits.load(out)
    printed = json.loads(res.stdout)  # rank 0 alone prints the store's metadata
    assert ddp.meta["world_size"] == 2 and printed["key"] == ddp.key and printed["world_size"] == 2

    cfg = _configs(str(path), "--out", "unused", "--teacher-model", str(tiny_bert_dir), *teacher_args, *CORPUS_ARGS)
    corpus = load_corpus(path, cfg.corpus)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = build_teacher(corpus, cfg.teacher)
    finally:
        torch.set_num_threads(before)
    assert single.meta["corpus_hash"] == ddp.meta["corpus_hash"] and single.key == ddp.key
    assert ddp.n_docs == single.n_docs == corpus.n_docs
    for name in ("dev_perplexity", "train_perplexity", "test_perplexity"):
        assert ddp.meta[name] == pytest.approx(single.meta[name], rel=1e-3)
    assert [h["dev_perplexity"] for h in ddp.meta["history"]] == pytest.approx(
        [h["dev_perplexity"] for h in single.meta["history"]], rel=1e-3)
    a, b = ddp.dense(), single.dense()
    assert np.abs(a - b).max() < 0.02
    assert np.abs(a - a.mean(1, keepdims=True)).max() > 1.0  # the teacher is not trivially flat
    if single.fold is not None:  # cross-fitting: the same folds, every train document out of fold
        np.testing.assert_array_equal(np.asarray(ddp.fold), np.asarray(single.fold))
