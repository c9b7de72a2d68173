"""export.py: peer side of "export to word2vec text": gensim save_word2vec_format(binary=False) of a
loaded KeyedVectors (loaded before timing). Usage: export.py KV OUT.txt."""
import sys

from gensim.models import KeyedVectors

from common import clock, report

kv = KeyedVectors.load(sys.argv[1])
t0 = clock()
kv.save_word2vec_format(sys.argv[2], binary=False)
report(seconds=clock() - t0)
