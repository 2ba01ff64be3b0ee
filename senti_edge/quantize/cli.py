"""`senti-edge quantize`: parses options, builds a QuantizeConfig, calls the pipeline, prints.

torch, transformers and peft are imported only inside the library calls.
"""

from __future__ import annotations

import click

from ..clitools import friendly_errors
from ..runtime.tasks import TASKS
from .config import QUANT_TYPES

TYPE_NAMES = ", ".join(QUANT_TYPES)
LABEL_TASKS = sorted(name for name, task in TASKS.items() if not task.generative)


@click.command("quantize")
@click.argument("adapter", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("base", "-m", "--model", default="smollm2-135m", show_default=True,
              help="Base model the adapter was trained on: registry name, .gguf file, or Hugging Face model directory.")
@click.option("out_dir", "--out", required=True, type=click.Path(file_okay=False),
              help="Output directory for the merged model, the GGUF files, README.md and quantize.json.")
@click.option("--name", default="", help="Model name for file names and the registry.  [default: the --out directory name]")
@click.option("--types", default="all", show_default=True,
              help=f"Comma-separated quantization types made from F16 ({TYPE_NAMES}) or all.")
@click.option("-t", "--task", type=click.Choice(LABEL_TASKS), default="polarity", show_default=True,
              help="Task whose labels the probe texts are scored on.")
@click.option("--probes", type=click.Path(exists=True, dir_okay=False),
              help="Probe texts: .txt (one per line) or .jsonl (field text).  [default: 64 built-in texts]")
@click.option("--max-probes", type=click.IntRange(min=4), default=64, show_default=True, help="Use at most this many probe texts.")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), default=None, help="CPU threads.  [default: free cores]")
@click.option("--imatrix/--no-imatrix", default=True, show_default=True,
              help="Compute an importance matrix on built-in calibration prompts for the types below 8 bits.")
@click.option("--q8-direct", is_flag=True,
              help="Make Q8_0 with llama.cpp's converter straight from the merged weights, not from F16.")
@click.option("--lora/--no-lora", "export_lora", default=True, show_default=True,
              help="Also export the adapter alone as a GGUF LoRA and check base + LoRA against the merged F16.")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Add the verified files to the user registry as NAME and NAME-<type>.")
@click.option("--strict/--no-strict", default=True, show_default=True,
              help="Exit with an error when a file misses its verification threshold.")
@click.option("--max-f16-diff", type=float, default=0.25, show_default=True,
              help="Largest allowed label-logit difference between the F16 GGUF and the merged model in torch.")
@click.option("--force", is_flag=True, help="Overwrite outputs that already exist.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@friendly_errors
def quantize(adapter, base, out_dir, name, types, task, probes, max_probes, n_threads, imatrix, q8_direct, export_lora, register,
             strict, max_f16_diff, force, quiet) -> None:
    """Merge a LoRA ADAPTER into its base, convert to GGUF, quantize, verify, register.

    Writes NAME-f16.gguf and NAME-<type>.gguf for each type, NAME-lora-f16.gguf (the adapter
    alone), README.md (model card with sizes and agreement figures) and quantize.json. Every
    file is scored on a fixed probe set and compared with the merged model; a file past its
    threshold fails the run. Without ADAPTER the base itself is converted. The first run
    downloads the llama.cpp converter (the llama-cpp-python sdist) from PyPI and caches it.

    \b
    Examples:
      senti-edge quantize runs/smollm2/adapter --out models/smollm2-senti --types q8_0,q4_0
      senti-edge quantize runs/smollm2/adapter -m smollm2-135m --out out/s2 --name s2 --types all
      senti-edge analyze reviews.txt --model s2            # the smallest verified file
      senti-edge bench --model s2-q8_0 --limit 100
    """
    from .config import QuantizeConfig
    from .pipeline import run

    ctx = click.get_current_context()
    verbose = bool(ctx.find_root().params.get("verbose"))
    cfg = QuantizeConfig(adapter=adapter, base=base, out_dir=out_dir, name=name, types=types, imatrix=imatrix, q8_direct=q8_direct,
                         export_lora=export_lora, register=register, force=force, task=task, probes=probes,
                         max_probes=max_probes, n_threads=n_threads or 0, max_f16_logit_diff=max_f16_diff,
                         strict=strict)
    report = run(cfg, progress=(lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True)),
                 verbose=verbose)
    from .card import results_table

    click.echo(results_table(report))
    if report["registered"]:
        click.echo(f"registered: {', '.join(report['registered'])}")
    click.echo(f"model card: {cfg.card_path}")


COMMANDS = [quantize]
