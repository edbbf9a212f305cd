"""Summarises bench_world_family --jsonl files (one world per line; several partial runs may be concatenated; a
world appearing twice keeps its last line): per modality pair the mean class-level precision@1 of the best single
space, uniform and learned routing for the C++ trainer and the PyTorch baseline; per implementation the mean gain of
learned over uniform (mean over pairs per world), the worst world, how often learned beats uniform, train seconds.
Prints Markdown.   world_family_summary.py RUN.jsonl [MORE.jsonl ...]"""
import json
import sys

PAIRS = ["audio-text", "image-text", "point-text", "audio-image", "image-point", "audio-point"]


def mean(v):
    return sum(v) / len(v) if v else None


def f(x, sign=False):
    return "-" if x is None else ("%+.3f" % x if sign else "%.3f" % x)


def main():
    worlds = {}
    for path in sys.argv[1:]:
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    w = json.loads(line)
                    worlds[w["index"]] = w
    ws = [worlds[k] for k in sorted(worlds)]
    print("Worlds: %s (%d)\n" % (", ".join(str(w["index"]) for w in ws), len(ws)))
    print("| class-level precision@1, mean over worlds | " + " | ".join(PAIRS) + " |")
    print("|---|" + "---|" * len(PAIRS))
    rows = [("best single space", "cpp", "best_single"), ("C++ trainer, uniform routing", "cpp", "uniform"),
            ("C++ trainer, learned routing", "cpp", "learned"), ("PyTorch baseline, uniform routing", "pytorch", "uniform"),
            ("PyTorch baseline, learned routing", "pytorch", "learned")]
    for name, impl, kind in rows:
        cells = []
        for p in PAIRS:
            v = [w[impl]["pairs"][p][kind] for w in ws if impl in w and "pairs" in w[impl] and p in w[impl]["pairs"]
                 and kind in w[impl]["pairs"][p]]
            cells.append(f(mean(v)) + ("" if len(v) in (0, len(ws)) else " (%d)" % len(v)))
        print("| %s | %s |" % (name, " | ".join(cells)))
    print("\n(n) = number of worlds where the pair has a single space covering it.\n")
    print("| implementation | worlds | mean learned | mean uniform | mean gain | worst world (gain) | learned > uniform | "
          "learned >= uniform - 0.01 | train s, sum (mean) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, impl in [("C++ trainer", "cpp"), ("PyTorch baseline", "pytorch")]:
        got = [w for w in ws if impl in w and "mean_learned" in w[impl]]
        if not got:
            continue
        gains = [(w[impl]["mean_learned"] - w[impl]["mean_uniform"], w["index"]) for w in got]
        worst = min(gains)
        secs = [w[impl]["seconds_train"] for w in got]
        print("| %s | %d | %s | %s | %s | %d (%s) | %d | %d | %.0f (%.0f) |" % (
            name, len(got), f(mean([w[impl]["mean_learned"] for w in got])), f(mean([w[impl]["mean_uniform"] for w in got])),
            f(mean([g for g, _ in gains]), True), worst[1], f(worst[0], True), sum(g > 0 for g, _ in gains),
            sum(g >= -0.01 for g, _ in gains), sum(secs), mean(secs)))
    both = [w for w in ws if "mean_learned" in w.get("cpp", {}) and "mean_learned" in w.get("pytorch", {})]
    if both:
        print("\nPer world (mean over pairs; C++ / PyTorch):\n")
        print("| world | shape | classes | spaces | tuples | C++ uniform | C++ learned | PyTorch uniform | PyTorch learned | "
              "C++ train s | PyTorch train s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for w in both:
            c, p = w["cpp"], w["pytorch"]
            print("| %d | %s | %d | %d | %d | %s | %s | %s | %s | %.1f | %.1f |" % (
                w["index"], w["shape"], w["classes"], w["spaces"], w["tuples"], f(c["mean_uniform"]), f(c["mean_learned"]),
                f(p["mean_uniform"]), f(p["mean_learned"]), c["seconds_train"], p["seconds_train"]))


if __name__ == "__main__":
    main()
