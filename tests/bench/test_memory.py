"""The memory benchmark: streaming memory does not grow with the input size."""

from __future__ import annotations

import json

from senti_edge.bench import memory


def test_peak_rss_does_not_grow_with_the_input(tmp_path):
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    memory.make_input(small, 5_000_000)
    memory.make_input(large, 20_000_000)
    s, l = memory.measure_stream(small, runs=1), memory.measure_stream(large, runs=1)
    assert l["texts"] > 3.5 * s["texts"] > 100_000
    assert l["peak_rss_mb"] < s["peak_rss_mb"] + 4  # 15 MB more input, (almost) no more memory
    # the measure does see memory that the input costs: a 15 MB line is read whole (then cut)
    one_line = tmp_path / "one-line.txt"
    one_line.write_text("word " * 3_000_000 + "\n")
    assert memory.measure_stream(one_line, runs=1)["peak_rss_mb"] > s["peak_rss_mb"] + 15


def test_command_writes_json_and_removes_its_input(tmp_path):
    out = tmp_path / "mem.json"
    memory.main(["--size-mb", "2", "--runs", "2", "--format", "jsonl", "--to-file", "--dir", str(tmp_path),
                 "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["format"] == "jsonl" and len(r["stream"]["runs"]) == 2
    assert r["stream"]["bytes"] >= 2_000_000 and r["stream"]["texts"] > 10_000
    assert r["stream"]["peak_rss_mb"] > 0 and r["one_line_peak_rss_mb"] > 0 and "analyze" not in r
    assert [p.name for p in tmp_path.iterdir()] == ["mem.json"]  # input, output and temporary directory gone
