"""The compact teacher-logits store: top-k + one tail logit per document, fp16, memory-mapped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from bat_core.base.errors import BatError
from bat_core.teachers.store import TeacherLogits, compress


def _logits(n: int = 40, v: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, v)) * 3 + rng.normal(size=(1, v)) - 5).astype(np.float32)


def test_round_trip_keeps_top_k_and_tail_mass(tmp_path):
    z = _logits()
    k = 50
    store = TeacherLogits.from_dense(z, {"key": "abc", "dev_perplexity": 12.5}, k=k)
    store.save(tmp_path / "t")
    back = TeacherLogits.load(tmp_path / "t")
    assert (back.key, back.n_docs, back.vocab_size, back.k) == ("abc", 40, 300, k)
    assert back.indices.dtype == np.uint16 and back.values.dtype == np.float16
    for name in ("indices", "values", "shift", "tail"):  # the file keeps every array bit for bit
        np.testing.assert_array_equal(getattr(back, name), getattr(store, name))
    assert back.meta["dev_perplexity"] == 12.5
    d = back.dense(np.arange(40))
    assert d.dtype == np.float32 and d.shape == z.shape
    top = np.argsort(-z, axis=1)[:, :k]
    kept = np.take_along_axis(z, top, axis=1)
    # values are stored in fp16 relative to the row maximum: error ≤ half an fp16 step at |z − max|
    rel = kept - kept[:, :1]
    assert np.all(np.abs(np.take_along_axis(d, top, axis=1) - kept) <= np.abs(rel) * 2.0 ** -11 + 1e-6)
    # every other word gets one tail logit carrying exactly the tail's softmax mass at T = 1
    tail = np.ones_like(z, dtype=bool)
    np.put_along_axis(tail, top, False, axis=1)
    mass_true = np.where(tail, np.exp(z.astype(np.float64)), 0).sum(1)
    mass_back = np.where(tail, np.exp(d.astype(np.float64)), 0).sum(1)
    np.testing.assert_allclose(mass_back, mass_true, rtol=1e-5)
    assert np.all(d[tail].reshape(40, -1).max(1) <= np.take_along_axis(d, top, axis=1).min(1))
    # only the tail's shape changes: the total variation distance is at most the tail's probability mass
    p, q = softmax(z.astype(np.float64), 1), softmax(d.astype(np.float64), 1)
    tv = 0.5 * np.abs(p - q).sum(1)
    assert np.all(tv <= np.where(tail, p, 0).sum(1) + 1e-3)
    np.testing.assert_allclose(logsumexp(d, 1), logsumexp(z, 1), atol=2e-3)


def test_dense_rows_forms_and_top_words():
    z = _logits(10, 50)
    store = TeacherLogits.from_dense(z, {}, k=8)
    np.testing.assert_array_equal(store.dense([3, 1]), store.dense(np.arange(10))[[3, 1]])
    assert store.dense(slice(2, 5)).shape == (3, 50)
    assert store.dense(np.zeros(0, dtype=int)).shape == (0, 50)
    idx, val = store.top_words(4, n=3)
    np.testing.assert_array_equal(idx, np.argsort(-z[4])[:3])
    np.testing.assert_allclose(val, np.sort(z[4])[::-1][:3], atol=1e-2)
    with pytest.raises(IndexError):
        store.dense([10])


def test_k_at_least_vocab_is_lossless_up_to_fp16():
    z = _logits(5, 30)
    d = TeacherLogits.from_dense(z, {}, k=512).dense()
    assert TeacherLogits.from_dense(z, {}, k=512).k == 30
    np.testing.assert_allclose(d, z, atol=np.abs(z - z.max(1, keepdims=True)).max() * 2.0 ** -11 + 1e-6)


def test_large_vocabulary_uses_int32_indices(tmp_path):
    z = np.zeros((2, 70_000), dtype=np.float32)
    z[0, 69_999] = 5.0
    store = TeacherLogits.from_dense(z, {}, k=4)
    assert store.indices.dtype == np.int32
    store.save(tmp_path / "big")
    back = TeacherLogits.load(tmp_path / "big")
    assert back.indices[0, 0] == 69_999 and back.dense([0])[0, 69_999] == 5.0


def test_bytes_per_document_fit_100k_by_20k_in_well_under_1_gb():
    store = TeacherLogits.from_dense(_logits(100, 20_000), {}, k=512)
    per_doc = store.nbytes / store.n_docs
    assert per_doc == 512 * (2 + 2) + 4 + 4  # uint16 index + fp16 value per kept word, shift + tail per document
    assert per_doc * 100_000 < 0.25e9


def test_compress_block_equals_from_dense():
    z = _logits(12, 80)
    blocks = [compress(z[:5], 10), compress(z[5:], 10)]
    a = TeacherLogits.from_blocks(blocks, {}, 80).dense()
    np.testing.assert_array_equal(a, TeacherLogits.from_dense(z, {}, k=10).dense())


def test_bad_folder_is_a_bat_error(tmp_path):
    with pytest.raises(BatError, match="not a teacher logits folder"):
        TeacherLogits.load(tmp_path)
    TeacherLogits.from_dense(_logits(3, 20), {}, k=4).save(tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "meta.json").read_text())
    meta["format"] = 999
    (tmp_path / "t" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(BatError, match="unknown format"):
        TeacherLogits.load(tmp_path / "t")
    (tmp_path / "t" / "logits.safetensors").write_bytes(b"garbage")
    with pytest.raises(BatError):
        TeacherLogits.load(tmp_path / "t")
