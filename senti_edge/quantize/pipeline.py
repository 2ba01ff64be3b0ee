"""The quantize stage from end to end: merge, convert, quantize, verify, card, register.

    adapter + base -> merged-hf/ -> NAME-f16.gguf -> NAME-<type>.gguf ...   (+ NAME-lora-f16.gguf)

Each step reads the previous step's files. Checks run as the files appear; a file that misses
its threshold is reported in the card and `quantize.json`, is not registered, and (with
`strict`) makes the run fail after the card is written.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import logging
from pathlib import Path
from typing import Callable

from ..errors import SentiEdgeError
from ..jsonl import write_json
from ..runtime.chat import known_template
from ..runtime.engine import free_cores
from ..runtime.tasks import get_task
from . import convert, merge, verify
from .card import write_card
from .config import QUANT_TYPES, QuantizeConfig
from ..jsonl import ensure_space
from .files import make_public
from .quantize import fallback_note, quantize, tensor_types

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return importlib.metadata.version("senti-edge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run(cfg: QuantizeConfig, *, progress: Callable[[str], None] = lambda msg: None, verbose: bool = False) -> dict:
    """Run the whole stage; returns the report that is also written as `quantize.json`."""
    cfg.check_targets()
    if cfg.register:
        _check_names(cfg)
    if get_task(cfg.task).generative:
        raise SentiEdgeError(f"task {cfg.task!r} is generative; verification scores labels, choose a label task such as polarity")
    base = merge.locate_base(cfg.base)
    if cfg.adapter is not None:
        merge.read_adapter_config(cfg.adapter)
    texts = verify.load_probes(cfg.probes, cfg.max_probes)
    threads = cfg.n_threads or free_cores()
    conv = convert.ensure_converter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "config": cfg.to_dict(), "base": base.label, "converter": conv.info(),
        "runtime_version": convert.runtime_version(), "senti_edge_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "probes": {"n": len(texts), "source": cfg.probes or "built-in"}, "n_threads": threads,
        "quantized": [], "failures": [], "registered": [],
    }

    progress(f"merging {cfg.adapter} into {base.label}" if cfg.adapter else f"loading {base.label} (no adapter to merge)")
    report["merge"] = merge.merge(base, cfg.adapter, cfg.merged_dir, force=cfg.force)

    progress(f"converting to {cfg.f16_path.name} with {conv.describe()}")
    ensure_space(cfg.out, 2 * report["merge"]["n_params"], cfg.f16_path.name)
    meta = {
        "general.name": cfg.name,
        "general.description": f"senti-edge quantize: {base.label} + {cfg.adapter or 'no adapter'}; {conv.describe()}",
        "general.quantized_by": f"senti-edge {_version()} (llama_cpp.llama_model_quantize, {convert.PACKAGE} {report['runtime_version']})",
    }
    convert.convert_hf(conv, cfg.merged_dir, cfg.f16_path, outtype="f16", metadata=meta)

    progress(f"checking F16 against the merged model in torch on {len(texts)} probes")
    ref = verify.score_gguf(cfg.f16_path, texts, cfg.task, n_threads=threads, verbose=verbose)
    torch_logits = verify.score_torch(cfg.merged_dir, ref.token_ids, ref.label_ids, n_threads=threads)
    vs_torch = verify.compare(torch_logits, ref.logits)
    ok = vs_torch.max_logit_diff <= cfg.max_f16_logit_diff
    if not ok:
        report["failures"].append(f"F16: max label-logit difference {vs_torch.max_logit_diff:.3f} with the merged model "
                                  f"exceeds {cfg.max_f16_logit_diff} (conversion problem)")
    report["f16"] = {"path": str(cfg.f16_path), "size": cfg.f16_path.stat().st_size, "vs_torch": vs_torch.to_dict(),
                     "examples_per_s": ref.per_second, "status": "ok" if ok else "FAIL"}
    report["f16"]["label_counts"] = verify.label_counts(ref.logits, get_task(cfg.task).labels)

    imatrix = None
    if cfg.imatrix and any(QUANT_TYPES[t].imatrix for t in cfg.types):
        from .imatrix import CALIBRATION, calibration_token_ids, compute_imatrix

        progress("computing an importance matrix on the calibration prompts")
        imatrix = compute_imatrix(cfg.merged_dir, cfg.f16_path, calibration_token_ids(cfg.f16_path, cfg.task),
                                  n_threads=threads)
        report["imatrix"] = {"tensors": len(imatrix), "prompts": len(CALIBRATION)}

    for qtype in cfg.types:
        q = QUANT_TYPES[qtype]
        path = cfg.gguf_path(qtype)
        if qtype == "q8_0" and cfg.q8_direct:
            progress(f"converting to {path.name} directly from the merged weights")
            convert.convert_hf(conv, cfg.merged_dir, path, outtype="q8_0", metadata=meta)
            info = {"size": path.stat().st_size, "tensor_types": tensor_types(path), "imatrix": False, "made_by": "converter"}
        else:
            progress(f"quantizing to {path.name}")
            info = quantize(cfg.f16_path, path, qtype, n_threads=threads,
                            imatrix=imatrix if q.imatrix else None, verbose=verbose)
            info["made_by"] = "llama_model_quantize from F16"
        scores = verify.score_gguf(path, texts, cfg.task, n_threads=threads, verbose=verbose)
        cmp = verify.compare(ref.logits, scores.logits)
        ok = cmp.agreement >= q.min_agreement and cmp.mean_kl <= q.max_kl
        if not ok:
            report["failures"].append(f"{qtype.upper()}: agreement {cmp.agreement:.3f} (need >= {q.min_agreement}), "
                                      f"mean KL {cmp.mean_kl:.4f} (need <= {q.max_kl})")
        report["quantized"].append({"type": qtype, "path": str(path), **info, **cmp.to_dict(),
                                    "examples_per_s": scores.per_second, "fallback": fallback_note(qtype, info["tensor_types"]),
                                    "status": "ok" if ok else "FAIL"})
        progress(f"  {qtype}: {info['size'] / 1e6:.1f} MB, agreement {cmp.agreement:.3f}, mean KL {cmp.mean_kl:.4f}, "
                 f"{scores.per_second:.2f} ex/s")

    problem = convert.lora_export_problem(merge.read_adapter_config(cfg.adapter)) if cfg.export_lora else None
    if problem:
        progress(f"not exporting a GGUF LoRA: {problem}")
        report["lora_skipped"] = problem
    elif cfg.export_lora:
        report["lora"] = _export_lora(cfg, conv, base, texts, ref, threads, verbose, progress)
        if report["lora"]["status"] != "ok":
            report["failures"].append(f"base + GGUF LoRA: agreement {report['lora']['agreement']:.3f} with the merged F16 "
                                      f"(need >= {cfg.min_lora_agreement})")

    if cfg.register:
        report["registered"] = _register(cfg, report)
    write_json(cfg.report_path, report)
    make_public(cfg.report_path)
    write_card(cfg.card_path, report)
    if report["failures"] and cfg.strict:
        raise SentiEdgeError(f"verification failed: {report['failures'][0]}"
                             + (f" (+{len(report['failures']) - 1} more)" if len(report["failures"]) > 1 else "")
                             + f"; see {cfg.card_path}")
    return report


def _export_lora(cfg, conv, base, texts, ref, threads, verbose, progress) -> dict:
    """Write the adapter alone as a GGUF LoRA and check base GGUF + LoRA against the merged F16."""
    progress(f"exporting the adapter as {cfg.lora_path.name}")
    convert.convert_lora(conv, Path(cfg.adapter), cfg.merged_dir, cfg.lora_path)
    base_gguf = base.gguf
    if base_gguf is None:  # an HF base: ship its F16 conversion beside the adapter
        base_gguf = cfg.out / f"{Path(base.hf_dir).name}-base-f16.gguf"
        convert.convert_hf(conv, Path(base.hf_dir), base_gguf, outtype="f16")
    scores = verify.score_gguf(base_gguf, texts, cfg.task, adapter=cfg.lora_path, n_threads=threads, verbose=verbose)
    cmp = verify.compare(ref.logits, scores.logits)
    ok = cmp.agreement >= cfg.min_lora_agreement
    progress(f"  base + LoRA: agreement {cmp.agreement:.3f}, mean KL {cmp.mean_kl:.4f}")
    return {"path": str(cfg.lora_path), "base": str(base_gguf), "size": cfg.lora_path.stat().st_size,
            **cmp.to_dict(), "examples_per_s": scores.per_second, "status": "ok" if ok else "FAIL"}


def _check_names(cfg: QuantizeConfig) -> None:
    """Fail before any work when a registry name we would write belongs to a shipped model
    (the registry's own rule, the one `register_local` applies at the end)."""
    from ..runtime.registry import check_local_name

    for name in (cfg.name, *(f"{cfg.name}-{t}" for t in ("f16", *cfg.types))):
        try:
            check_local_name(name)
        except SentiEdgeError as exc:
            raise SentiEdgeError(f"{exc} (--name)") from None


def _register(cfg: QuantizeConfig, report: dict) -> list[str]:
    """Register every verified file as NAME-<type>, and NAME as the smallest verified one."""
    from ..runtime.registry import register_local

    template = known_template(report["merge"].get("template"))
    params = f"{report['merge']['n_params'] / 1e6:.0f}M"
    files = [("f16", report["f16"])] + [(q["type"], q) for q in report["quantized"]]
    good = [(t, r) for t, r in files if r["status"] == "ok"]
    names = []
    for qtype, r in good:
        agree = r["vs_torch"]["agreement"] if qtype == "f16" else r["agreement"]
        name = f"{cfg.name}-{qtype}"
        register_local(name, r["path"], description=f"{cfg.name} {qtype.upper()} (senti-edge quantize; agreement with merged F16 {agree:.3f})",
                       template=template, params=params, quant=qtype.upper(), role="student", size=r["size"])
        names.append(name)
    if good:
        qtype, r = min(good, key=lambda tr: tr[1]["size"])
        register_local(cfg.name, r["path"], description=f"{cfg.name}: the smallest verified file ({qtype.upper()})",
                       template=template, params=params, quant=qtype.upper(), role="student", size=r["size"])
        names.insert(0, cfg.name)
    return names
