"""open_lookup.py: peer side of "open a converted file and look up one word": gensim
KeyedVectors.load(KV, mmap='r') and one lookup, printed like `embt lookup`. Usage: open_lookup.py
KV WORD. The row is timed as a whole process (Python start and the gensim import included), as a
user runs it; the in-process part is reported as open_lookup_s."""
import sys

from common import clock

t0 = clock()
from gensim.models import KeyedVectors  # noqa: E402  (the import is part of what a user waits for)

t1 = clock()
kv = KeyedVectors.load(sys.argv[1], mmap="r")
row = kv[sys.argv[2]]
t2 = clock()
print(sys.argv[2] + "\t" + " ".join("%.9g" % v for v in row))
print("BENCH import_s=%.6f" % (t1 - t0))
print("BENCH open_lookup_s=%.6f" % (t2 - t1))
