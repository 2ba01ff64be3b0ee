"""Memory on a large input: `python benchmarks/memory.py [--size-mb 1000] [--out FILE]`.

`analyze` streams its input, so its memory should not depend on the size of the file. This
measures it on a generated file (about --size-mb MB of review-like lines, in a temporary
directory that is deleted afterwards unless --keep):

- stream: a fresh process reads the file with `inputs.read_texts` and writes every row with the
  `output.RowWriter` that `analyze` uses (to /dev/null, or with --to-file to a file through
  `jsonl.atomic_open`), without the model, which would take days over 1 GB. Its peak RSS is the
  child's own high-water mark (VmHWM, read as it exits; `ru_maxrss` would also count the memory
  of the process that forked it), with MB/s and texts/s; medians of --runs runs;
- the same process on a one-line file, so any growth with the input size shows;
- analyze (--analyze-seconds N > 0): a real `senti-edge analyze` over the large file, stopped
  with SIGTERM after N seconds, against the same command on the one-line file.

The input is made of `runtime_speed.py`'s review-like texts. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs a module as `python -m` would (or a .py file as `python FILE` would), and writes the process's
# peak RSS (kB) to $SENTI_EDGE_PEAK_FILE as it exits (also after SIGTERM, which the CLI turns into SystemExit).
_WITH_PEAK = """import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as fh:
        kb = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    with open(os.environ["SENTI_EDGE_PEAK_FILE"], "w") as out:
        out.write(kb)
atexit.register(report)
del sys.argv[0]
if sys.argv[0].endswith(".py"):
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def make_input(path: Path, size: int, seed: int = 0) -> int:
    """Write about `size` bytes (whole lines) of made-up reviews, one a line (.txt) or as
    {"text": ...} records (.jsonl); returns the bytes written."""
    make_texts = runpy.run_path(str(Path(__file__).with_name("runtime_speed.py")))["make_texts"]
    texts = make_texts(1500, 1, seed) + make_texts(400, 4, seed + 1) + make_texts(100, 30, seed + 2)
    texts[::7] = [t + " Très bien 👍" for t in texts[::7]]  # some multi-byte UTF-8
    if path.suffix == ".jsonl":
        texts = [json.dumps({"text": t}, ensure_ascii=False) for t in texts]
    block = ("\n".join(texts) + "\n").encode("utf-8")
    written = 0
    with open(path, "wb") as fh:
        while written < size:
            fh.write(block)
            written += len(block)
    return written


def stream(path: str, sink: str = os.devnull) -> dict:
    """What `analyze` does with its input and output, minus the model: read, make rows, write."""
    from senti_edge.inputs import read_texts
    from senti_edge.jsonl import atomic_open
    from senti_edge.output import RowWriter

    t0 = time.perf_counter()
    n = 0
    with (open(sink, "w", encoding="utf-8") if sink == os.devnull else atomic_open(sink)) as fh:
        writer = RowWriter(fh, "jsonl")
        for rec in read_texts([path], max_file_bytes=0):  # the size cap is not what is measured
            writer.write({"id": rec.id, "source": rec.source, "line": rec.line, "text": rec.text,
                          "label": "neutral", "confidence": 1.0})
            n += 1
        writer.close()
    return {"texts": n, "bytes": os.path.getsize(path), "seconds": time.perf_counter() - t0}


def peak_rss_mb(module: str, *args: str, stop_after: float = 0, stdout=subprocess.PIPE) -> tuple[float, int, str]:
    """Run `python -m module args` (or `python module args` for a .py file; SIGTERM it after
    `stop_after` s if > 0); return its peak RSS in MB, exit code and stdout."""
    with tempfile.NamedTemporaryFile("r") as peak:
        proc = subprocess.Popen([sys.executable, "-c", _WITH_PEAK, module, *args], stdout=stdout, text=True,
                                env={**os.environ, "SENTI_EDGE_PEAK_FILE": peak.name})
        try:
            out, _ = proc.communicate(timeout=stop_after or None)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate()
        kb = peak.read()
    if not kb:
        raise RuntimeError(f"{module} exited with {proc.returncode} without reporting its peak RSS")
    return int(kb) / 1024, proc.returncode, out or ""


def measure_stream(path: Path, runs: int = 3, to_file: bool = False) -> dict:
    """Median peak RSS, MB/s and texts/s of `runs` fresh stream processes over `path`."""
    sink = str(path.with_name(path.name + ".out.jsonl")) if to_file else os.devnull
    rows = []
    for _ in range(runs):
        rss, code, out = peak_rss_mb(str(Path(__file__).resolve()), "--stream", str(path), "--sink", sink)
        if code != 0:
            raise RuntimeError(f"stream child failed with exit code {code}")
        r = json.loads(out)
        rows.append({"peak_rss_mb": round(rss, 1), "seconds": round(r["seconds"], 2), "texts": r["texts"],
                     "mb_per_s": round(r["bytes"] / 1e6 / r["seconds"], 1), "texts_per_s": round(r["texts"] / r["seconds"])})
        if to_file:
            os.unlink(sink)
    med = {k: statistics.median(r[k] for r in rows) for k in ("peak_rss_mb", "seconds", "mb_per_s", "texts_per_s")}
    return {"bytes": path.stat().st_size, "texts": rows[0]["texts"], "runs": rows, **med}


def measure_analyze(big: Path, one: Path, model_path: str, seconds: float) -> dict:
    """Peak RSS of `senti-edge analyze` over `big` stopped after `seconds`, and over `one` to the end."""
    def args(p: Path) -> list[str]:
        return ["analyze", str(p), "-m", model_path, "--threads", "1", "-q", "-o", "jsonl"]

    out = big.with_name("analyze-out.jsonl")
    with open(out, "w") as fh:
        rss, code, _ = peak_rss_mb("senti_edge", *args(big), stop_after=seconds, stdout=fh)
    with open(out, "rb") as fh:
        labelled = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    out.unlink()
    one_rss, one_code, _ = peak_rss_mb("senti_edge", *args(one), stdout=subprocess.DEVNULL)
    return {"model_path": model_path, "threads": 1, "stopped_after_s": seconds, "exit_code": code, "texts_labelled": labelled,
            "peak_rss_mb": round(rss, 1), "one_line_peak_rss_mb": round(one_rss, 1), "one_line_exit_code": one_code}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000, help="size of the generated input (default 1000 MB)")
    ap.add_argument("--format", choices=["txt", "jsonl"], default="txt", help="one text a line, or JSONL records")
    ap.add_argument("--runs", type=int, default=3, help="stream runs (median)")
    ap.add_argument("--to-file", action="store_true", help="write rows to a file (atomic_open) instead of /dev/null")
    ap.add_argument("--analyze-seconds", type=float, default=0, help="also run `senti-edge analyze` this long (0: no)")
    ap.add_argument("--model", default="smollm2-135m", help="model for --analyze-seconds")
    ap.add_argument("--dir", type=Path, help="where to put the input (default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the generated input")
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    ap.add_argument("--stream", help=argparse.SUPPRESS)  # child mode: stream this file, print JSON
    ap.add_argument("--sink", default=os.devnull, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stream:
        print(json.dumps(stream(args.stream, args.sink)))
        return

    from senti_edge.runtime.cpu import machine

    work = Path(tempfile.mkdtemp(prefix="senti-memory-", dir=args.dir))
    big, one = work / f"input.{args.format}", work / f"one.{args.format}"
    try:
        t0 = time.perf_counter()
        make_input(big, int(args.size_mb * 1e6))
        gen_s = time.perf_counter() - t0
        one.write_text('{"text": "The battery lasts two full days."}\n' if args.format == "jsonl"
                       else "The battery lasts two full days.\n")
        result = {"command": "python benchmarks/memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "machine": {**machine(), "load_avg_at_start": list(os.getloadavg())}, "format": args.format,
                  "generate_s": round(gen_s, 1), "stream": measure_stream(big, args.runs, args.to_file),
                  "one_line_peak_rss_mb": measure_stream(one, 1)["peak_rss_mb"]}
        if args.analyze_seconds > 0:
            from senti_edge.runtime.fetch import resolve

            result["analyze"] = {"model": args.model,
                                 **measure_analyze(big, one, str(resolve(args.model).path), args.analyze_seconds)}
    finally:
        if args.keep:
            print(f"input kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work)
    if args.out:
        from senti_edge.jsonl import write_json

        write_json(args.out, result)
    print(render(result))


def render(r: dict) -> str:
    s = r["stream"]
    lines = [f"Input: {s['bytes'] / 1e6:,.0f} MB, {s['texts']:,} texts ({r['format']}); medians of {len(s['runs'])} runs.",
             (f"Stream (read_texts + RowWriter, no model): peak RSS {s['peak_rss_mb']:.1f} MB "
              f"(one-line file: {r['one_line_peak_rss_mb']:.1f} MB), {s['mb_per_s']:.1f} MB/s, {s['texts_per_s']:,.0f} texts/s.")]
    a = r.get("analyze")
    if a:
        lines.append(f"senti-edge analyze ({a['model']}, 1 thread) over the same file, stopped after {a['stopped_after_s']:.0f} s: "
                     f"peak RSS {a['peak_rss_mb']:.1f} MB, {a['texts_labelled']:,} texts labelled "
                     f"(one-line file: {a['one_line_peak_rss_mb']:.1f} MB).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
