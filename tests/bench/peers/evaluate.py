"""evaluate.py: peer side of the evaluation rows: gensim evaluate_word_analogies or
evaluate_word_pairs on a saved KeyedVectors file. Usage: evaluate.py analogies|pairs KV FILE [RESTRICT]
(default 300000). Prints the time and the figures embt eval reports (accuracy, correct, total;
pearson, spearman, pairs)."""
import logging
import sys

from gensim.models import KeyedVectors

from common import clock, report

logging.disable(logging.CRITICAL)
what, path, data = sys.argv[1], sys.argv[2], sys.argv[3]
restrict = int(sys.argv[4]) if len(sys.argv) > 4 else 300000
kv = KeyedVectors.load(path)
kv.fill_norms()
t0 = clock()
if what == "analogies":
    score, sections = kv.evaluate_word_analogies(data, restrict_vocab=restrict)
    seconds = clock() - t0
    total = sections[-1]
    report(seconds=seconds, accuracy=float(score), correct=len(total["correct"]),
           total=len(total["correct"]) + len(total["incorrect"]))
else:
    pearson, spearman, oov = kv.evaluate_word_pairs(data, restrict_vocab=restrict)
    report(seconds=clock() - t0, pearson=float(pearson[0]), spearman=float(spearman[0]),
           oov_ratio=float(oov))
