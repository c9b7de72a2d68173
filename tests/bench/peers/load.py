"""load.py: peer side of the "text/binary file to a loaded table" rows. Usage: load.py MODE PATH with
MODE gensim-text (load_word2vec_format(no_header=True)), gensim-bin (binary=True) or numpy-text.

numpy-text is the simple fast loader a NumPy user writes (pandas is not installed here): read the
whole file, split each line once at its first space into token and values, then parse all values
in one call of np.fromstring(sep=" ") (C parsing, no per-value Python objects) and reshape."""
import sys

from common import clock, report

mode, path = sys.argv[1], sys.argv[2]
if mode == "numpy-text":
    import numpy as np

    t0 = clock()
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens, rests = [], []
    for line in lines:
        token, rest = line.split(" ", 1)
        tokens.append(token)
        rests.append(rest)
    values = np.fromstring(" ".join(rests), dtype=np.float32, sep=" ")
    table = values.reshape(len(tokens), -1)
    index = {t: i for i, t in enumerate(tokens)}
    seconds = clock() - t0
    rows, dim = table.shape
else:
    from gensim.models import KeyedVectors

    t0 = clock()
    kv = KeyedVectors.load_word2vec_format(path, binary=(mode == "gensim-bin"),
                                           no_header=(mode == "gensim-text"))
    seconds = clock() - t0
    rows, dim = kv.vectors.shape
report(seconds=seconds, rows=rows, dim=dim)
