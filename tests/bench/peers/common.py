"""common.py: helpers shared by the peer timing scripts: a monotonic clock, the `BENCH key=value`
output lines that measure.py reads, and the deterministic xorshift64 ids of the embt bench programs."""
import time

clock = time.perf_counter


def report(**figures):
    """Prints one `BENCH key=value` line per figure (`seconds` is the timed work)."""
    for key, value in figures.items():
        if isinstance(value, float):
            value = "%.9g" % value
        print("BENCH %s=%s" % (key, value), flush=True)


def xorshift_ids(n, modulo, seed=0x9E3779B97F4A7C15):
    """n ids in [0, modulo), the same sequence as tests/bench/similar_rate.c draws."""
    mask = (1 << 64) - 1
    ids = []
    for _ in range(n):
        seed ^= (seed << 13) & mask
        seed ^= seed >> 7
        seed ^= (seed << 17) & mask
        ids.append(seed % modulo)
    return ids
