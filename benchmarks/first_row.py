"""How soon a pipe sees rows: `python benchmarks/first_row.py FILE -m MODEL [--threads 1]`.

Runs `senti-edge analyze FILE -o jsonl` (1 thread by default) as a child writing to a pipe and
records when each row arrives. Rows are flushed batch by batch (the first batch is 8 texts), so
the first row must arrive long before the run ends; prints the times of the first, the ninth and
the last row and of the exit, in seconds from the start (model load included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def measure(path: str, model: str, threads: int = 1) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "senti_edge", "analyze", path, "-m", model, "--threads", str(threads),
                             "-q", "-o", "jsonl"], stdout=subprocess.PIPE, text=True)
    times = [time.perf_counter() - t0 for _ in proc.stdout]
    if proc.wait() != 0:
        raise SystemExit(f"Error: senti-edge analyze exited with {proc.returncode}")
    return {"rows": len(times), "first_s": times[0], "ninth_s": times[8] if len(times) > 8 else None,
            "last_s": times[-1], "exit_s": time.perf_counter() - t0}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("-m", "--model", default="senti-smollm2-135m")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    r = measure(args.file, args.model, args.threads)
    ninth = f"{r['ninth_s']:.1f} s" if r["ninth_s"] is not None else "-"
    print(f"rows {r['rows']}; first row at {r['first_s']:.1f} s; row 9 at {ninth}; last row at {r['last_s']:.1f} s; "
          f"exit at {r['exit_s']:.1f} s")
    return r


if __name__ == "__main__":
    main()
