"""From a user's files to a :class:`~bat_core.data.corpus.Corpus`: reading (txt, folders, zip, csv/tsv/json/jsonl),
tables and their text column, cleaning and boilerplate removal, vectorising, train/dev/test splits, and the corpora
that install offline (``demo``, ``mini20ng``, ``newsarticles``, …). A corpus is immutable; its hash names every cache
above it."""
