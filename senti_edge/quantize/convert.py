"""llama.cpp's own converters, taken from the llama-cpp-python sdist of the installed version.

The installed llama-cpp-python has no converter; its sdist has `vendor/llama.cpp/
convert_hf_to_gguf.py` (a driver over the `conversion/` package beside it),
`convert_lora_to_gguf.py` and `gguf-py`. `ensure_converter` downloads that sdist once with
`pip download --no-deps --no-binary :all:` into `<home>/converter/` and extracts only those
files; after that everything is offline. Using the sdist of the runtime's own version keeps the
converter and the loader in step. Each conversion runs in a subprocess (`sys.executable`) and
writes to a temporary name that is renamed into place only on success.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SentiEdgeError
from ..files import cache_home, locked, sha256_file
from .files import atomic_path

log = logging.getLogger(__name__)

PACKAGE = "llama-cpp-python"
_KEEP_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "LICENSE")
_KEEP_DIRS = ("conversion/", "gguf-py/")


@dataclass(frozen=True)
class Converter:
    """An extracted converter: where it lives and which sdist it came from."""

    root: Path  # the extracted vendor/llama.cpp
    version: str  # llama-cpp-python version of the sdist
    sdist_sha256: str

    @property
    def hf_script(self) -> Path:
        return self.root / "convert_hf_to_gguf.py"

    @property
    def lora_script(self) -> Path:
        return self.root / "convert_lora_to_gguf.py"

    def describe(self) -> str:
        return f"llama.cpp convert_hf_to_gguf.py from the {PACKAGE} {self.version} sdist (sha256 {self.sdist_sha256[:12]})"

    def info(self) -> dict:
        return {"package": PACKAGE, "version": self.version, "sdist_sha256": self.sdist_sha256,
                "scripts": ["convert_hf_to_gguf.py", "convert_lora_to_gguf.py"]}


def converter_dir() -> Path:
    return cache_home() / "converter"


def runtime_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise SentiEdgeError(f"{PACKAGE} is not installed; run: pip install senti-edge") from None


def sdist_path(version: str) -> Path:
    return converter_dir() / f"{PACKAGE.replace('-', '_')}-{version}.tar.gz"


def download_sdist(version: str) -> Path:
    """`pip download` the sdist into the converter cache (the only network use; once)."""
    dest = sdist_path(version)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"{PACKAGE}=={version}", "-d", str(dest.parent)]
    log.info("downloading the llama.cpp converter (%s==%s sdist) from PyPI", PACKAGE, version)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise SentiEdgeError(f"pip download of the {PACKAGE}=={version} sdist timed out") from None
    if proc.returncode != 0 or not dest.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SentiEdgeError(
            f"could not download the llama.cpp converter ({PACKAGE}=={version} sdist): {tail[0]}; "
            f"without network, put {dest.name} into {dest.parent}"
        )
    return dest


def ensure_converter(version: str | None = None, *, download: bool = True) -> Converter:
    """The extracted converter for `version` (default: the installed runtime's), fetched if needed."""
    version = version or runtime_version()
    root = converter_dir() / f"llama.cpp-{version}"
    stamp = root / ".senti-edge.json"
    if stamp.is_file():
        info = json.loads(stamp.read_text("utf-8"))
        return Converter(root, version, info["sdist_sha256"])
    with locked(converter_dir() / f".llama.cpp-{version}.lock"):
        if stamp.is_file():  # another process extracted it while we waited
            return ensure_converter(version)
        sdist = sdist_path(version)
        if not sdist.is_file():
            if not download:
                raise SentiEdgeError(f"the llama.cpp converter is not cached ({sdist} missing) and download is off")
            download_sdist(version)
        sha = sha256_file(sdist)
        tmp = Path(tempfile.mkdtemp(prefix=f".llama.cpp-{version}.", dir=converter_dir()))
        try:
            _extract(sdist, tmp, version)
            (tmp / ".senti-edge.json").write_text(json.dumps({"version": version, "sdist_sha256": sha}), "utf-8")
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("llama.cpp converter %s extracted to %s", version, root)
    return Converter(root, version, sha)


def _extract(sdist: Path, dest: Path, version: str) -> None:
    prefix = f"{PACKAGE.replace('-', '_')}-{version}/vendor/llama.cpp/"
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = []
            for m in tar.getmembers():
                if not m.name.startswith(prefix) or not (m.isfile() or m.isdir()):
                    continue
                rel = m.name[len(prefix):]
                if rel in _KEEP_FILES or rel.startswith(_KEEP_DIRS):
                    m.name = rel
                    members.append(m)
            if not any(m.name == "convert_hf_to_gguf.py" for m in members):
                raise SentiEdgeError(f"{sdist} has no vendor/llama.cpp/convert_hf_to_gguf.py; it is not a {PACKAGE} sdist")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SentiEdgeError(f"{sdist} is not a readable sdist ({exc}); delete it and run again") from None


def supported_architectures(conv: Converter) -> set[str]:
    """The Hugging Face architectures the converter knows, read from its source (no import)."""
    init = conv.root / "conversion" / "__init__.py"
    names: set[str] = set()
    if init.is_file():
        tree = ast.parse(init.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and node.keys and all(isinstance(k, ast.Constant) for k in node.keys):
                names |= {k.value for k in node.keys if isinstance(k.value, str)}
    return names


def check_architecture(conv: Converter, model_dir: Path) -> str:
    cfg = json.loads((model_dir / "config.json").read_text("utf-8"))
    archs = cfg.get("architectures") or []
    if not archs:
        raise SentiEdgeError(f"{model_dir}/config.json names no architecture; cannot convert it to GGUF")
    known = supported_architectures(conv)
    if known and archs[0] not in known:
        raise SentiEdgeError(f"architecture {archs[0]} is not supported by the llama.cpp converter ({conv.version})")
    return archs[0]


def _run(conv: Converter, args: list[str], out: Path, what: str) -> None:
    """Run a converter script writing to a temporary file, then rename it to `out`."""
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}  # use the sdist's own gguf-py
    out = Path(out).resolve()  # the script runs in the converter's folder: no relative paths past here
    with atomic_path(out) as tmp:
        cmd = [sys.executable, *args, "--outfile", str(tmp)]
        log.debug("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=conv.root)
        for line in (proc.stdout + proc.stderr).splitlines():
            log.debug("converter: %s", line)
        if proc.returncode != 0:
            lines = (proc.stderr + proc.stdout).strip().splitlines()
            errs = [ln for ln in lines if "Error" in ln or "ERROR" in ln] or lines[-1:] or ["no output"]
            raise SentiEdgeError(f"llama.cpp converter failed on {what}: {errs[-1].strip()[:300]}")


def convert_hf(conv: Converter, model_dir: Path, out: Path, *, outtype: str = "f16",
               metadata: dict | None = None) -> None:
    """A Hugging Face model directory -> one GGUF file (`outtype` f16, bf16, f32 or q8_0)."""
    model_dir = Path(model_dir).resolve()
    check_architecture(conv, model_dir)
    with tempfile.TemporaryDirectory() as td:
        args = [str(conv.hf_script), str(model_dir), "--outtype", outtype]
        if metadata:
            meta = Path(td) / "metadata.json"
            meta.write_text(json.dumps(metadata), "utf-8")
            args += ["--metadata", str(meta)]
        _run(conv, args, out, str(model_dir))


def lora_export_problem(adapter_cfg: dict) -> str | None:
    """Why an adapter cannot be written as a GGUF LoRA (llama.cpp applies one scale alpha/r to all)."""
    if adapter_cfg.get("use_dora"):
        return "DoRA adapters have no GGUF LoRA form (the merged files are unaffected)"
    if adapter_cfg.get("rank_pattern") or adapter_cfg.get("alpha_pattern"):
        return "per-module rank_pattern/alpha_pattern cannot be expressed with the single alpha of a GGUF LoRA"
    return None


def convert_lora(conv: Converter, adapter_dir: Path, base_dir: Path, out: Path, *, outtype: str = "f16") -> None:
    """A PEFT LoRA directory -> a GGUF LoRA; `base_dir` needs only the base's config and tokenizer.

    llama.cpp scales a GGUF LoRA by alpha/r. An rsLoRA adapter is scaled by alpha/sqrt(r), so it
    is converted from a staged copy whose config says alpha*sqrt(r) (the weights are linked).
    """
    adapter_dir, base_dir = Path(adapter_dir).resolve(), Path(base_dir).resolve()
    check_architecture(conv, base_dir)
    acfg = json.loads((adapter_dir / "adapter_config.json").read_text("utf-8"))
    with tempfile.TemporaryDirectory() as td:
        if acfg.get("use_rslora"):
            staged = Path(td) / "adapter"
            staged.mkdir()
            for f in adapter_dir.iterdir():
                if f.name != "adapter_config.json":
                    (staged / f.name).symlink_to(f.resolve())
            acfg.update(lora_alpha=float(acfg["lora_alpha"]) * math.sqrt(acfg["r"]), use_rslora=False)
            (staged / "adapter_config.json").write_text(json.dumps(acfg), "utf-8")
            adapter_dir = staged
        args = [str(conv.lora_script), str(adapter_dir), "--base", str(base_dir), "--outtype", outtype]
        _run(conv, args, out, str(adapter_dir))
