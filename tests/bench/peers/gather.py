"""gather.py: peer side of "10,000 random-id gathers": NumPy fancy indexing `table[ids]` or
torch.nn.functional.embedding(ids, table) on a ROWS x DIM f32 table, fresh random ids each call,
median of REPS calls, as tests/bench/gather_rate.c measures embt_gather.
Usage: gather.py numpy|torch [ROWS DIM N REPS] (default 341479 100 10000 41)."""
import sys

import numpy as np

from common import clock, report

mode = sys.argv[1]
rows, dim, n, reps = (int(x) for x in (sys.argv[2:6] if len(sys.argv) > 5
                                       else (341479, 100, 10000, 41)))
rng = np.random.default_rng(1)
table = rng.random((rows, dim), dtype=np.float32)
ids = [rng.integers(0, rows, n, dtype=np.int64) for _ in range(reps)]
times = []
if mode == "torch":
    import torch
    import torch.nn.functional as F

    weight = torch.from_numpy(table)
    tids = [torch.from_numpy(i) for i in ids]
    with torch.no_grad():
        for i in tids:
            t0 = clock()
            out = F.embedding(i, weight)
            times.append(clock() - t0)
    threads = torch.get_num_threads()
else:
    for i in ids:
        t0 = clock()
        out = table[i]
        times.append(clock() - t0)
    threads = 1
med = float(np.median(times))
report(seconds=med, rows_per_s=n / med, threads=threads)
