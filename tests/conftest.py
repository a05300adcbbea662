"""Shared fixtures: the real demo corpus (300 news articles, loads in 0.1 s), a tiny random BERT teacher, and the
environment that makes the app train in seconds."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_corpus():
    from bat_core.data.corpus import load_corpus

    return load_corpus("demo")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A randomly initialised 2-layer BERT with the MiniLM tokenizer, saved once per test session."""
    from teacher_fixtures import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, tiny_bert_dir):
    """Environment for the app: a fresh cache folder, the tiny teacher, small epochs."""
    from teacher_fixtures import FAST_ENV

    tmp = tmp_path_factory.mktemp("app")
    env = dict(FAST_ENV, BAT_CACHE_DIR=str(tmp / "cache"), BAT_TEACHER_MODEL=str(tiny_bert_dir))
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
