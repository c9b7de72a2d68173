"""prepare.py: makes the gensim KeyedVectors file (KV, with its .vectors.npy beside it) that the
mmap/lookup, similarity, evaluation and export peers load, from word2vec binary or GloVe text.
Usage: prepare.py INPUT.bin|INPUT.txt OUT.kv. Not timed."""
import sys

from gensim.models import KeyedVectors

src, out = sys.argv[1], sys.argv[2]
if src.endswith(".bin"):
    kv = KeyedVectors.load_word2vec_format(src, binary=True)
else:
    kv = KeyedVectors.load_word2vec_format(src, binary=False, no_header=True)
kv.save(out)
