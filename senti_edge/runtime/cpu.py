"""The CPU at hand, and the one llama.cpp setting that must be chosen per CPU: extra buffer types.

llama.cpp copies weights into "extra" buffer types at load time (CPU_REPACK's interleaved
layouts; AMX tiles on Intel Xeons) to reach its fastest matrix kernels. On some AMX machines
that path segfaults in the first `llama_decode` (upstream: "segfault in ggml_backend_amx_mul_mat",
machine-dependent), which kills the whole process: nothing in Python can catch it.

So the choice is made by running llama.cpp where a crash is harmless: a child process
(`runtime/probe.py`) loads the model with extra buffer types on and decodes the batches `analyze`
will send (several sequences sharing a prefix, then single tokens). If the child survives, extra
buffer types stay on (fast repacked kernels); if it dies, they are turned off after a second child
confirms that works. The decision is remembered in `<home>/cpu.json`, keyed by the llama.cpp
version, the CPU's model and flags and the model file, so it costs one child (about a second) per
model and machine.
`SENTI_EDGE_EXTRA_BUFTS=0|1` overrides it without any child.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import SentiEdgeError
from ..files import locked
from ..jsonl import write_json
from ..files import cache_home

ENV = "SENTI_EDGE_EXTRA_BUFTS"
# CPU features that select llama.cpp kernels (x86 and ARM names as /proc/cpuinfo spells them).
FEATURES = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
            "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm")
PROBE_TIMEOUT = 300.0  # seconds; a child that hangs counts as a failure


@dataclass(frozen=True)
class CPU:
    """What the machine says about its processor (Linux: /proc/cpuinfo; elsewhere what Python knows)."""

    model: str
    arch: str
    flags: tuple[str, ...]
    cores: int

    @property
    def flags_sha(self) -> str:
        return hashlib.sha256(" ".join(self.flags).encode()).hexdigest()[:16]

    def has(self, *flags: str) -> list[str]:
        return [f for f in flags if f in self.flags]


def cpu() -> CPU:
    model, flags = platform.processor() or platform.machine(), ()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "Hardware") and model == (platform.processor() or platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = tuple(sorted(value.split()))
    except OSError:
        if sys.platform == "darwin":
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True)
            model = out.stdout.strip() or model
    return CPU(model=model, arch=platform.machine(), flags=flags, cores=usable_cores())


def machine(threads: int | None = None) -> dict:
    """The machine a measurement ran on, for its result file: the CPU and the features llama.cpp's
    kernels depend on (every benchmark records this same dict)."""
    c = cpu()
    return {"cpu": c.model, "cores": c.cores, "features": c.has(*FEATURES), "python": platform.python_version(),
            "platform": platform.platform(), **({"threads": threads} if threads else {})}


def usable_cores() -> int:
    """CPUs this process may run on (its affinity on Linux, all of them elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def llama_version() -> str:
    import llama_cpp

    return llama_cpp.__version__


def llama_system_info() -> str:
    """llama.cpp's own line: the SIMD features it was built with and the backends it found."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class Decision:
    extra_bufts: bool
    reason: str


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "ok", "killed by signal 11 (SIGSEGV)", "exit 1: <last stderr line>", "timed out"


def _key(model: Path, adapter: Path | None) -> str:
    c = cpu()
    st = model.stat()
    parts = [llama_version(), c.arch, c.model, c.flags_sha, model.name, str(st.st_size)]
    if adapter is not None:
        parts += [adapter.name, str(adapter.stat().st_size)]
    return "|".join(parts)


def probe_command(model: Path, adapter: Path | None, extra_bufts: bool) -> list[str]:
    cmd = [sys.executable, "-m", "senti_edge.runtime.probe", str(model), "--extra-bufts", str(int(extra_bufts))]
    return cmd + (["--adapter", str(adapter)] if adapter is not None else [])


def probe(cmd: list[str], timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Run one probe child; whatever happens to it, report it as a result, never raise."""
    import signal

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, ENV: "probe"})
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"timed out after {timeout:.0f} s")
    except OSError as exc:
        return ProbeResult(False, f"could not start: {exc.strerror or exc}")
    if proc.returncode == 0:
        return ProbeResult(True, "ok")
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = "unknown"
        return ProbeResult(False, f"killed by signal {-proc.returncode} ({name})")
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return ProbeResult(False, f"exit {proc.returncode}: {tail}")


def decide(model: Path, adapter: Path | None = None, *, runner=probe) -> Decision:
    """Whether to load `model` with llama.cpp's extra buffer types on this machine (see module doc).

    `runner` runs a probe command and returns a `ProbeResult` (tests give one that crashes)."""
    env = os.environ.get(ENV, "").strip()
    if env in ("0", "1"):
        return Decision(env == "1", f"set by {ENV}={env}")
    if env == "probe":  # inside a probe child: the parent chose explicitly
        raise SentiEdgeError(f"{ENV}=probe is only for the probe child")
    key = _key(model, adapter)
    path = cache_home() / "cpu.json"
    with locked(path.with_name(".cpu.json.lock")):
        known = _read(path)
        if key in known:
            return _decision(known[key])
        on = runner(probe_command(model, adapter, True))
        if on.ok:
            decision = Decision(True, "a probe child decoded with extra buffer types (repacked kernels) and survived")
        else:
            off = runner(probe_command(model, adapter, False))
            if not off.ok:
                raise SentiEdgeError(
                    f"llama.cpp fails on this CPU with {model.name} with and without extra buffer types "
                    f"(with: {on.detail}; without: {off.detail}); run `senti-edge doctor` and include its "
                    "output in a bug report")
            decision = Decision(False, f"with extra buffer types a probe child was {on.detail}; without, it ran")
        known[key] = {**asdict(decision), "cpu": cpu().model, "model": str(model)}
        write_json(path, known)
    return decision


def known_decision(model: Path, adapter: Path | None = None) -> Decision | None:
    """The decision already made for this model on this machine, without probing (None if none)."""
    d = _read(cache_home() / "cpu.json").get(_key(model, adapter))
    return _decision(d) if d else None


def _decision(d: dict) -> Decision:
    return Decision(bool(d["extra_bufts"]), d["reason"])


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}
