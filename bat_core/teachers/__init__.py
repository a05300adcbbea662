"""The teachers: what predicts a document's bag of words for the student to distil. Kinds: nearest neighbours by
shared words (TF-IDF), by a transformer's embeddings, a mix, a random null control, or a fine-tuned encoder with a
bag-of-words head (the paper's mode). Also the choice among them on dev perplexity, the encoder side (windows,
pooling, embedding cache) and the compact on-disk store of teacher logits."""
