"""train_sg.py: peer side of "skip-gram training": gensim Word2Vec(sg=1, vector_size=100, window=5,
negative=5, sample=1e-4, epochs=3, min_count=5, workers=2) on a corpus file. The vocabulary scan
is not timed; the timed work is model.train() over the file (corpus_file mode, gensim's fastest:
each worker reads its own part of the file, as word2vec.c and embt do).

Usage: train_sg.py CORPUS.txt [OUT.txt]   (OUT: the vectors as word2vec text, written untimed)
Prints BENCH seconds=, train_words= (corpus words in the vocabulary, per epoch, line ends not
counted: embt's count) and words_per_sec_thread= (train_words * epochs / seconds / workers)."""
import logging
import sys

from gensim.models import Word2Vec

from common import clock, report

EPOCHS, WORKERS = 3, 2

logging.disable(logging.CRITICAL)
corpus = sys.argv[1]
model = Word2Vec(sg=1, vector_size=100, window=5, negative=5, hs=0, sample=1e-4, min_count=5,
                 workers=WORKERS, seed=1)
model.build_vocab(corpus_file=corpus)
train_words = sum(model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key)
t0 = clock()
model.train(corpus_file=corpus, total_examples=model.corpus_count,
            total_words=model.corpus_total_words, epochs=EPOCHS)
seconds = clock() - t0
report(seconds=seconds, train_words=train_words,
       words_per_sec_thread=train_words * EPOCHS / seconds / WORKERS)
if len(sys.argv) > 2:
    model.wv.save_word2vec_format(sys.argv[2], binary=False)
