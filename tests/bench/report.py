"""report.py: turns the rows measured by tests/bench/run.sh (JSON Lines from peers/measure.py) into
results.md (Markdown tables), results.json (the same, machine-readable) and plot.png (embt vs peer
times per row, horizontal bars, log scale), each with the date and the machine's description.

Usage: report.py ROWS.jsonl OUTDIR [--mode full|smoke] [--runs N] [--blas TEXT] [--compiler TEXT]
                 [--remark TEXT]   (a paragraph about the run, printed under the machine line)
Standard library only; the plot uses matplotlib when it is there, else a small built-in PNG writer
(bars and decade grid lines, no text: the bars follow the order of the table, embt dark, peer light).
"""
import datetime
import json
import math
import os
import platform
import struct
import sys
import zlib


def machine(opts):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "uname": " ".join(platform.uname()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "blas": opts.get("blas", "unknown"),
        "compiler": opts.get("compiler", "unknown"),
        "mode": opts.get("mode", "full"),
        "runs": int(opts.get("runs", 0) or 0),
        "remark": opts.get("remark", ""),
    }


def fmt_time(s):
    if s is None:
        return ""
    if s >= 1:
        return "%.2f s" % s
    if s >= 1e-3:
        return "%.2f ms" % (s * 1e3)
    return "%.1f µs" % (s * 1e6)


def fmt_span(side):
    w = side["work"]
    if side.get("runs") and len(side["runs"]) > 1:
        return "%s (%s–%s)" % (fmt_time(w["median"]), fmt_time(w["min"]), fmt_time(w["max"]))
    return fmt_time(w["median"])


def fmt_rss(side):
    return "%.0f MiB" % (side["rss_kib"] / 1024.0) if "rss_kib" in side else ""


def pairs(rows):
    """(row, embt side, peer side, ratio) for every peer of every row, in order."""
    out = []
    for r in rows:
        embt = next((s for s in r["sides"] if s["kind"] == "embt"), None)
        peers = [s for s in r["sides"] if s["kind"] == "peer"] or [None]
        for p in peers:
            ratio = None
            if embt and p and "work" in embt and "work" in p and embt["work"]["median"] > 0:
                ratio = p["work"]["median"] / embt["work"]["median"]
            out.append((r, embt, p, ratio))
    return out


def markdown(m, rows, facts):
    lines = ["# embt benchmark results", ""]
    lines.append("Made by `tests/bench/run.sh`%s on %s. Machine: %s, %s cores, %s GiB; `%s`."
                 % (" --smoke" if m["mode"] == "smoke" else "", m["date"], m["cpu"], m["cores"],
                    m["memory_gib"], m["uname"]))
    lines.append("Compiler: %s. BLAS used by NumPy/gensim/PyTorch: `%s`. Runs per side: %s "
                 "(at most 3 for the slow rows, 1 for training), alternating embt and peers; "
                 "warm page cache." % (m["compiler"], m["blas"], m["runs"]))
    if m["remark"]:
        lines.append("")
        lines.append(m["remark"])
    lines.append("")
    lines.append("Times are medians (min–max). The ratio is peer / embt: above 1, embt is faster. "
                 "RSS is the peak resident memory of the whole process (GNU time %M).")
    lines.append("")
    lines.append("| work | embt | peer | peer time | ratio | embt RSS | peer RSS | timed |")
    lines.append("|---|---|---|---|---|---|---|---|")
    last = None
    for r, e, p, ratio in pairs(rows):
        first = r is not last
        last = r
        work = r["title"] if first else ""
        if e is None:
            et, er = "", ""
        elif "missing" in e:
            et, er = "missing: " + e["missing"], ""
        else:
            et, er = fmt_span(e), fmt_rss(e)
        if e is not None and not first:
            et, er = "″", ""
        if p is None:
            pn, pt, pr = "", "", ""
        elif "missing" in p:
            pn, pt, pr = p["name"], "missing: " + p["missing"], ""
        else:
            pn, pt, pr = p["name"], fmt_span(p), fmt_rss(p)
        rt = "%.1f×" % ratio if ratio is not None else ""
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |"
                     % (work, et, pn, pt, rt, er, pr, r["note"] if first else ""))
    lines.append("")
    if facts:
        lines.append("## Physical references, file sizes and quality figures")
        lines.append("")
        lines.append("| what | value | note |")
        lines.append("|---|---|---|")
        for f in facts:
            v = f["value"]
            if isinstance(v, float) and f["unit"] == "bytes":
                v = "{:,}".format(int(v))
            elif isinstance(v, float):
                v = "%.6g" % v
            unit = "" if f["unit"] == "bytes" else f["unit"]
            lines.append("| %s | %s %s | %s |" % (f["title"], v, unit, f["note"]))
        lines.append("")
    figs = []
    for r in rows:
        for s in r["sides"]:
            if s.get("figures"):
                figs.append("- %s, %s: %s" % (r["id"], s["name"], ", ".join(
                    "%s %s" % (k, ("%.6g" % v) if isinstance(v, float) else v)
                    for k, v in sorted(s["figures"].items()))))
    if figs:
        lines.append("## Figures printed by the commands")
        lines.append("")
        lines.extend(figs)
        lines.append("")
    return "\n".join(lines)


def plot_matplotlib(path, bars, m):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(bars)
    fig, ax = plt.subplots(figsize=(10, 0.55 * n + 1.6))
    ys = list(range(n))[::-1]
    for y, (label, et, pt, pname) in zip(ys, bars):
        if et:
            ax.barh(y + 0.2, et, height=0.38, color="#1f4e79", label="embt" if y == ys[0] else None)
            ax.text(et, y + 0.2, " " + fmt_time(et), va="center", fontsize=7)
        if pt:
            ax.barh(y - 0.2, pt, height=0.38, color="#f4a261",
                    label="peer" if y == ys[0] else None)
            ax.text(pt, y - 0.2, " %s %s" % (pname, fmt_time(pt)), va="center", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels([b[0] for b in bars], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (median, log scale; shorter is faster)")
    ax.set_title("embt vs peers, %s, %s (%s cores), %s" % (m["mode"], m["cpu"], m["cores"],
                                                            m["date"]), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_plain(path, bars):
    """A bar chart without text, written with zlib: one pair of bars per table line."""
    width, bar_h, gap = 800, 10, 8
    height = max(1, len(bars)) * (2 * bar_h + gap) + gap
    times = [t for b in bars for t in (b[1], b[2]) if t]
    lo = math.floor(math.log10(min(times))) if times else -6
    hi = math.ceil(math.log10(max(times))) if times else 2
    hi = max(hi, lo + 1)

    def x_of(t):
        return int((math.log10(t) - lo) / (hi - lo) * (width - 1))
    img = [[(255, 255, 255)] * width for _ in range(height)]
    for d in range(lo, hi + 1):
        x = x_of(10.0 ** d)
        for y in range(height):
            img[y][min(x, width - 1)] = (200, 200, 200)
    for i, (_, et, pt, _) in enumerate(bars):
        y0 = gap + i * (2 * bar_h + gap)
        for t, dy, color in ((et, 0, (31, 78, 121)), (pt, bar_h, (244, 162, 97))):
            if t:
                for y in range(y0 + dy, y0 + dy + bar_h - 1):
                    for x in range(0, max(1, x_of(t))):
                        img[y][x] = color
    raw = b"".join(b"\x00" + bytes(c for px in line for c in px) for line in img)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                          0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, outdir = sys.argv[1], sys.argv[2]
    opts, args = {}, sys.argv[3:]
    for i in range(0, len(args) - 1, 2):
        opts[args[i].lstrip("-")] = args[i + 1]
    rows, facts = [], []
    with open(src, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                (rows if rec["type"] == "row" else facts).append(rec)
    m = machine(opts)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown(m, rows, facts))
    table = []
    for r, e, p, ratio in pairs(rows):
        table.append({"id": r["id"], "work": r["title"], "peer": p["name"] if p else None,
                      "embt_median_s": e["work"]["median"] if e and "work" in e else None,
                      "peer_median_s": p["work"]["median"] if p and "work" in p else None,
                      "ratio": ratio,
                      "embt_rss_kib": e.get("rss_kib") if e else None,
                      "peer_rss_kib": p.get("rss_kib") if p else None,
                      "embt_missing": e.get("missing") if e else None,
                      "peer_missing": p.get("missing") if p else None})
    with open(os.path.join(outdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"machine": m, "table": table, "rows": rows, "facts": facts}, f, indent=1)
        f.write("\n")
    bars = []
    for r, e, p, _ in pairs(rows):
        et = e["work"]["median"] if e and "work" in e else None
        pt = p["work"]["median"] if p and "work" in p else None
        if et or pt:
            label = r["title"] if len(r["title"]) <= 48 else r["title"][:46] + "…"
            bars.append((label + (" / " + p["name"] if p else ""), et, pt,
                         p["name"] if p else ""))
    png = os.path.join(outdir, "plot.png")
    try:
        plot_matplotlib(png, bars, m)
    except ImportError:
        plot_plain(png, bars)
    print("report.py: wrote results.md, results.json and plot.png in %s" % outdir)


if __name__ == "__main__":
    main()
