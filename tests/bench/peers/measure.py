"""measure.py: the timing harness of tests/bench/run.sh: runs the embt command and the peer commands
of one benchmark row alternately (embt, peer 1, peer 2, embt, ...), records wall time, work time and
peak RSS of each run, and appends the row to a JSON Lines file that report.py turns into the tables.

Standard library only (it must run in smoke mode on machines without numpy).

  measure.py row  --jsonl F --id ID --title T --runs N [--wall] [--note TEXT]
                  (--embt CMD | --embt-missing REASON)
                  [--peer NAME CMD | --peer-missing NAME REASON]...
                  [--parse NAME REGEX SCALE]...
  measure.py fact --jsonl F --id ID --title T --value V [--unit U] [--note TEXT]

Work time: a command may print `BENCH seconds=X` (the timed work, without start-up and imports);
`--parse NAME REGEX SCALE` reads it from NAME's stdout instead (group 1 times SCALE); otherwise, or
with `--wall`, the work time is the whole-process wall time. Other `BENCH key=value` lines are kept
as the side's figures (accuracy, rows, GB/s ...), from the last run. Peak RSS: GNU time's %M
(wait4() when /usr/bin/time is missing, which also counts pages of this Python before exec).
Order: one run of each side under GNU time (peak RSS; it counts as run 1 when it takes a second
or more, else it is a warm-up, since GNU time adds about 6 ms), then the timed runs alternate.
Commands are split with shlex and run without a shell; a failing command fails the row (exit 1).
"""
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

GNU_TIME = "/usr/bin/time"


def parse_args(argv):
    mode, args = argv[0], argv[1:]
    opts = {"mode": mode, "sides": [], "parse": {}, "wall": False, "note": "", "unit": "",
            "runs": 1}
    i = 0
    while i < len(args):
        a = args[i]

        def take(n):
            if i + n >= len(args):
                sys.exit("measure.py: %s needs %d value(s)" % (a, n))
            return args[i + 1:i + 1 + n]
        if a in ("--jsonl", "--id", "--title", "--note", "--value", "--unit"):
            opts[a[2:]] = take(1)[0]
            i += 2
        elif a == "--runs":
            opts["runs"] = max(1, int(take(1)[0]))
            i += 2
        elif a == "--wall":
            opts["wall"] = True
            i += 1
        elif a == "--embt":
            opts["sides"].append({"name": "embt", "kind": "embt", "cmd": take(1)[0]})
            i += 2
        elif a == "--embt-missing":
            opts["sides"].append({"name": "embt", "kind": "embt", "missing": take(1)[0]})
            i += 2
        elif a == "--peer":
            name, cmd = take(2)
            opts["sides"].append({"name": name, "kind": "peer", "cmd": cmd})
            i += 3
        elif a == "--peer-missing":
            name, reason = take(2)
            opts["sides"].append({"name": name, "kind": "peer", "missing": reason})
            i += 3
        elif a == "--parse":
            name, regex, scale = take(3)
            opts["parse"][name] = (re.compile(regex), float(scale))
            i += 4
        else:
            sys.exit("measure.py: unknown argument %r" % a)
    for key in ("jsonl", "id", "title"):
        if key not in opts:
            sys.exit("measure.py: --%s is required" % key)
    return opts


def run_once(cmd, with_rss):
    """Runs one command; returns (wall seconds, peak RSS in KiB, stdout text, exit status).
    The peak RSS comes from GNU time when it is installed: wait4() of a child of this Python process
    would also count the parent's pages that the child held before exec (about 10 MiB)."""
    argv = shlex.split(cmd)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        if with_rss and os.access(GNU_TIME, os.X_OK):
            argv = [GNU_TIME, "-f", "%M", "-o", rss_file.name] + argv
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        rss = usage.ru_maxrss
        if argv[0] == GNU_TIME:
            lines = rss_file.read().split()
            rss = int(lines[-1]) if lines and lines[-1].isdigit() else rss
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            sys.stderr.write(err.read().decode("utf-8", "replace")[-2000:])
        return wall, rss, text, proc.returncode


def figures(text):
    found = {}
    for m in re.finditer(r"^BENCH ([A-Za-z0-9_@.]+)=(\S+)\s*$", text, re.M):
        try:
            found[m.group(1)] = float(m.group(2))
        except ValueError:
            found[m.group(1)] = m.group(2)
    return found


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure_one(opts, s, r, first):
    wall, rss, text, code = run_once(s["cmd"], first)
    if code != 0:
        sys.exit("measure.py: %s: %s (run %d) exited with %d: %s"
                 % (opts["id"], s["name"], r + 1, code, s["cmd"]))
    figs = figures(text)
    work = wall
    if s["name"] in opts["parse"]:
        regex, scale = opts["parse"][s["name"]]
        m = regex.search(text)
        if not m:
            sys.exit("measure.py: %s: %s: no match for %r in its output"
                     % (opts["id"], s["name"], regex.pattern))
        work = float(m.group(1)) * scale
    elif "seconds" in figs and not opts["wall"]:
        work = float(figs["seconds"])
    figs.pop("seconds", None)
    s["figures"] = figs
    if first:
        s["rss_kib"] = rss
        if wall < 1.0:
            print("  %-28s %-8s warm-up: wall %.3g s, rss %.1f MiB"
                  % (opts["id"], s["name"], wall, rss / 1024.0), flush=True)
            return
    s["runs"].append({"wall": wall, "work": work})
    print("  %-28s %-8s run %d: work %.4g s, wall %.3g s%s"
          % (opts["id"], s["name"], len(s["runs"]), work, wall,
             ", rss %.1f MiB" % (rss / 1024.0) if first else ""), flush=True)


def row(opts):
    live = [s for s in opts["sides"] if "cmd" in s]
    for s in live:
        s["runs"] = []
    # Run 1 of each side goes through GNU time for the peak RSS. GNU time adds about 6 ms, so when
    # that run is shorter than a second it is a warm-up and N more runs are timed without it.
    for s in live:
        measure_one(opts, s, 0, True)
    for r in range(opts["runs"]):
        for s in live:
            if len(s["runs"]) <= r:
                measure_one(opts, s, r, False)
    for s in live:
        s["work"] = summary([x["work"] for x in s["runs"]])
        s["wall"] = summary([x["wall"] for x in s["runs"]])
    return {"type": "row", "id": opts["id"], "title": opts["title"], "note": opts["note"],
            "timing": "wall" if opts["wall"] else "work", "runs": opts["runs"],
            "sides": opts["sides"]}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("row", "fact"):
        sys.exit(__doc__)
    opts = parse_args(sys.argv[1:])
    if opts["mode"] == "row":
        record = row(opts)
    else:
        value = opts.get("value", "")
        try:
            value = float(value)
        except ValueError:
            pass
        record = {"type": "fact", "id": opts["id"], "title": opts["title"], "value": value,
                  "unit": opts["unit"], "note": opts["note"]}
    with open(opts["jsonl"], "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
