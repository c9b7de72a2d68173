"""similar.py: peer side of the top-10 neighbour rows. Usage: similar.py gensim|numpy single|batch KV.
Queries are the rows of the ids tests/bench/similar_rate.c draws (same xorshift64 sequence).
single: mean time of one top-10 cosine query over 50 queries, the query row excluded (gensim:
most_similar(word, topn=10); numpy: unit(table) @ unit(q), argpartition, sort).
batch: time of 1,000 queries (gensim: most_similar calls, since gensim has no batch query; measured
on the first GENSIM_BATCH = 200 and multiplied by 5, reported as estimated; numpy: all 1,000, in
10 blocks of 100 queries, one matrix product each, argpartition per row).
Norms / the unit copy are computed before timing, as similar_rate.c times its index build apart."""
import sys

import numpy as np
from gensim.models import KeyedVectors

from common import clock, report, xorshift_ids

SINGLE, BATCH, K, GENSIM_BATCH = 50, 1000, 10, 200
peer, what, path = sys.argv[1], sys.argv[2], sys.argv[3]
kv = KeyedVectors.load(path, mmap="r")
rows = kv.vectors.shape[0]
ids = xorshift_ids(BATCH, rows)
words = [kv.index_to_key[i] for i in ids]

if peer == "gensim":
    kv.fill_norms()
    kv.most_similar(words[0], topn=K)
    if what == "single":
        t0 = clock()
        for w in words[:SINGLE]:
            kv.most_similar(w, topn=K)
        report(seconds=(clock() - t0) / SINGLE)
    else:
        t0 = clock()
        for w in words[:GENSIM_BATCH]:
            kv.most_similar(w, topn=K)
        report(seconds=(clock() - t0) * BATCH / GENSIM_BATCH, estimated_from=GENSIM_BATCH)
else:
    table = np.asarray(kv.vectors, dtype=np.float32)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True).clip(min=1e-30)
    queries = unit[ids]

    def top(scores, exclude):
        if exclude is not None:
            scores[exclude] = -np.inf
        best = np.argpartition(-scores, K)[:K]
        return best[np.argsort(-scores[best])]

    if what == "single":
        t0 = clock()
        for i in range(SINGLE):
            top(unit @ queries[i], ids[i])
        report(seconds=(clock() - t0) / SINGLE)
    else:
        t0 = clock()
        for b in range(0, BATCH, 100):
            scores = queries[b:b + 100] @ unit.T
            best = np.argpartition(-scores, K, axis=1)[:, :K]
            part = np.take_along_axis(scores, best, axis=1)
            np.take_along_axis(best, np.argsort(-part, axis=1), axis=1)
        report(seconds=clock() - t0)
