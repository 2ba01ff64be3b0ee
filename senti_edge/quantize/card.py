"""The model card (README.md) written next to the GGUF files, from the run's report dict."""

from __future__ import annotations

import json
from pathlib import Path

from ..distill.config import PROVENANCE
from ..jsonl import atomic_open
from .files import make_public


def _mb(n: int | None) -> str:
    return f"{n / 1e6:.1f}" if n else "-"


def _pct(x: float | None) -> str:
    return f"{100 * x:.1f}%" if x is not None else "-"


def _training_data(adapter: str | None) -> str:
    """What the adapter directory says about its training data, if anything."""
    if not adapter:
        return "none (no adapter)"
    if (Path(adapter) / PROVENANCE).is_file():
        return _distilled_from(Path(adapter) / PROVENANCE)
    for fname in ("config.json", "train_config.json"):
        p = Path(adapter) / fname
        if p.is_file():
            try:
                cfg = json.loads(p.read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            keys = [k for k in ("data", "records", "dataset", "datasets", "teacher", "task") if k in cfg]
            if keys:
                return "; ".join(f"{k}: {cfg[k]}" for k in keys) + f" (from `{p}`)"
            return f"see `{p}`"
    return "not recorded in the adapter directory"


def _distilled_from(path: Path) -> str:
    """One line from the file `senti-edge distill train` writes into the adapter directory."""
    try:
        prov = json.loads(path.read_text("utf-8"))
        cfg, data = prov["distill_config"], prov["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"see `{path}` (unreadable)"
    corpus = cfg.get("corpus", {})
    sources = [f"SentiBench train splits ({', '.join(corpus.get('datasets') or ['all 12'])})"] if corpus.get("sentibench_dir") else []
    sources += [f"`{f}`" for f in corpus.get("files", [])]
    records = ", ".join(f"{stage} {m.get('done')} records from {m.get('teacher')}" for stage, m in data.items())
    return (f"distilled ({prov.get('stage')} stage) from {records or 'no recorded teacher data'}; "
            f"texts: {', '.join(sources) or 'none recorded'}; student {cfg.get('student')}, seed {cfg.get('seed')} (from `{path}`)")


def results_table(report: dict) -> str:
    """Markdown table: one row per file, F16 first (reference), then each quantized type."""
    rows = ["| file | type | size (MB) | agreement with merged F16 | mean KL (nats) | examples/s | status |",
            "|---|---|---|---|---|---|---|"]
    f16 = report["f16"]
    rows.append(f"| `{Path(f16['path']).name}` | F16 | {_mb(f16['size'])} | {_pct(f16['vs_torch']['agreement'])} vs torch "
                f"(max logit diff {f16['vs_torch']['max_logit_diff']:.3f}) | {f16['vs_torch']['mean_kl']:.2e} | "
                f"{f16['examples_per_s']:.2f} | {f16['status']} |")
    for q in report["quantized"]:
        im = " (imatrix)" if q.get("imatrix") else " (converter)" if q.get("made_by") == "converter" else ""
        rows.append(f"| `{Path(q['path']).name}` | {q['type'].upper()}{im} | {_mb(q['size'])} | {_pct(q['agreement'])} | "
                    f"{q['mean_kl']:.2e} | {q['examples_per_s']:.2f} | {q['status']} |")
    lora = report.get("lora")
    if lora:
        rows.append(f"| `{Path(lora['base']).name}` + `{Path(lora['path']).name}` | base + LoRA | {_mb(lora['size'])} (adapter) | "
                    f"{_pct(lora['agreement'])} | {lora['mean_kl']:.2e} | {lora['examples_per_s']:.2f} | {lora['status']} |")
    return "\n".join(rows)


def render(report: dict) -> str:
    cfg = report["config"]
    lora = report.get("lora")
    merge = report["merge"]
    conv = report["converter"]
    lines = [
        f"# {cfg['name']}",
        "",
        "GGUF files made by `senti-edge quantize`: a LoRA adapter merged into its base, converted with "
        "llama.cpp's own converter and quantized with `llama_model_quantize`, each file checked against "
        "the merged model on a fixed probe set through the senti-edge runtime.",
        "",
        "## Provenance",
        "",
        f"- Base: `{report['base']}` ({merge['architecture']}, {merge['n_params'] / 1e6:.1f}M parameters)",
        (f"- Adapter: `{cfg['adapter']}`" if cfg["adapter"] else "- Adapter: none (the base converted as is)") + (f" (LoRA r={merge['lora_r']}, alpha={merge['lora_alpha']}, "
                                            f"{merge['lora_matrices']} matrices, targets {merge['target_modules']})"
                                            if cfg["adapter"] else ""),
        f"- Training data: {_training_data(cfg['adapter'])}",
        f"- Converter: llama.cpp `convert_hf_to_gguf.py` / `convert_lora_to_gguf.py` from the "
        f"{conv['package']} {conv['version']} sdist (sha256 `{conv['sdist_sha256'][:16]}…`); quantizer: "
        f"`llama_cpp.llama_model_quantize` ({conv['package']} {report['runtime_version']})",
        f"- Made with senti-edge {report['senti_edge_version']} on {report['created']}",
        "",
        "## Files and checks",
        "",
        f"Probe set: {report['probes']['n']} texts ({report['probes']['source']}), task `{cfg['task']}`, zero-shot "
        f"label-logit scoring, {report['n_threads']} thread(s). Agreement is the share of probes whose top label "
        "matches the merged F16 file (for F16 itself: the merged model in torch, float32).",
        "",
        results_table(report),
        "",
    ]
    notes = [q["fallback"] for q in report["quantized"] if q.get("fallback")]
    if notes:
        lines += ["Fallbacks:", "", *[f"- {n}" for n in notes], ""]
    if report.get("imatrix"):
        lines += [f"Importance matrix: {report['imatrix']['tensors']} tensors, from {report['imatrix']['prompts']} "
                  "built-in calibration prompts (not the probe texts), used for the types below 8 bits.", ""]
    if report.get("lora_skipped"):
        lines += [f"No GGUF LoRA was written: {report['lora_skipped']}.", ""]
    failed = report.get("failures") or []
    if failed:
        lines += ["**Checks that failed:**", "", *[f"- {f}" for f in failed], ""]
    lines += [
        "## Use",
        "",
        "```",
        *[f"senti-edge analyze reviews.txt --model {n}" for n in report.get("registered", [])[:2]],
        f"senti-edge analyze reviews.txt --model {report['quantized'][-1]['path'] if report['quantized'] else report['f16']['path']}",
    ]
    if lora:
        lines.append(f"senti-edge analyze reviews.txt --model {lora['base']}+{Path(lora['path']).name}")
    lines += ["```", ""]
    return "\n".join(lines)


def write_card(path: Path, report: dict) -> None:
    with atomic_open(path) as fh:
        fh.write(render(report))
    make_public(path)
