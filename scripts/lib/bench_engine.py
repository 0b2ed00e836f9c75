#!/usr/bin/env python3
"""Engine benchmark: times JSON Lines patch appliers on the same corpus, interleaved, and checks
that they give the same results line for line.

Usage: bench_engine.py CORPUS ROUNDS NAME=COMMAND [NAME=COMMAND ...]
Each COMMAND reads the corpus on stdin and writes one line per input line. The first command is
the one measured; the others are compared against it. Results must match as JSON values; error
lines must be errors in both (their texts differ by design).
"""
import json, os, resource, statistics, subprocess, sys, tempfile, time


def run(cmd, corpus, out_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(corpus, "rb") as src, open(out_path, "wb") as dst:
        t0 = time.monotonic()
        subprocess.run(["sh", "-c", cmd], stdin=src, stdout=dst, check=True)
        wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def compare(a_path, b_path):
    mismatches = errors = lines = 0
    with open(a_path) as a, open(b_path) as b:
        for x, y in zip(a, b, strict=True):
            lines += 1
            x, y = json.loads(x), json.loads(y)
            if "result" in x and "result" in y and x["result"] == y["result"]:
                continue
            if "error" in x and "error" in y:
                errors += 1
                continue
            mismatches += 1
            if mismatches <= 3:
                print(f"  line {lines}: {str(x)[:200]} vs {str(y)[:200]}", file=sys.stderr)
    return lines, errors, mismatches


def main():
    corpus, rounds = sys.argv[1], int(sys.argv[2])
    commands = [arg.split("=", 1) for arg in sys.argv[3:]]
    size = os.path.getsize(corpus)
    tmp = tempfile.mkdtemp(prefix="bench-engine-")
    walls = {name: [] for name, _ in commands}
    cpus = {name: [] for name, _ in commands}
    for _ in range(rounds):
        for name, cmd in commands:  # interleaved, so drift hits every command alike
            wall, cpu = run(cmd, corpus, os.path.join(tmp, name + ".jsonl"))
            walls[name].append(wall)
            cpus[name].append(cpu)
    base = commands[0][0]
    failed = False
    print(f"corpus: {corpus}, {size / 1e6:.1f} MB, rounds: {rounds} (median)")
    print(f"| engine | wall s | CPU s | MB/s | speed-up of {base} | same results |")
    print("|---|---:|---:|---:|---:|---|")
    for name, _ in commands:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        if name == base:
            same = "-"
        else:
            lines, errors, mismatches = compare(os.path.join(tmp, base + ".jsonl"), os.path.join(tmp, name + ".jsonl"))
            same = f"{lines - mismatches}/{lines} lines ({errors} errors in both)"
            failed |= mismatches > 0
        speedup = statistics.median(walls[name]) / statistics.median(walls[base])
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {size / wall / 1e6:.0f} | {speedup:.2f}x | {same} |")
    # One row for the summary table of scripts/bench: ours (the first) against the last command.
    rows = os.environ.get("BENCH_ROWS")
    if rows and len(commands) > 1:
        ours, ref = statistics.median(walls[base]), statistics.median(walls[commands[-1][0]])
        with open(rows, "a") as out:
            out.write(f"engine: {size / 1e6:.1f} MB of patch lines|wall time|{ours:.3f} s|{ref:.3f} s ({commands[-1][0]})|{ref / ours:.1f}x faster\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
