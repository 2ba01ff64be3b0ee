import hashlib
import json
import multiprocessing
import zipfile

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime import registry
from senti_edge.runtime.registry import ModelEntry, Source


def _wheel_entry(tmp_home, parts: list[bytes], sha=None, name="toy"):
    """A fake model split over parts, shipped as downloaded wheels in the cache."""
    wheels = tmp_home / "wheels"
    wheels.mkdir(parents=True)
    sources = []
    for i, data in enumerate(parts, 1):
        pkg = f"toy-model-part{i}"
        with zipfile.ZipFile(wheels / f"toy_model_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"toy_model_part{i}/data/part{i:02d}.bin", data)
        sources.append(Source(pkg, "1.0", f"toy_model_part{i}/data/part{i:02d}.bin"))
    joined = b"".join(parts)
    return ModelEntry(name=name, file=f"{name}.gguf", size=len(joined),
                      sha256=sha or hashlib.sha256(joined).hexdigest(), sources=tuple(sources))


def test_home_respects_senti_edge_home_and_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SENTI_EDGE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.home() == tmp_path / "xdg" / "senti-edge"
    monkeypatch.setenv("SENTI_EDGE_HOME", str(tmp_path / "h"))
    assert registry.home() == tmp_path / "h"


def test_materialise_joins_parts_in_order_and_checks_the_hash(tmp_home):
    entry = _wheel_entry(tmp_home, [b"GGUF-part-one|", b"part-two|", b"three"])
    path = registry.materialise(entry)
    assert path.read_bytes() == b"GGUF-part-one|part-two|three"
    assert registry.is_present(entry)
    assert registry.materialise(entry) == path  # idempotent


def test_wrong_hash_is_an_error_and_the_file_is_not_kept(tmp_home):
    entry = _wheel_entry(tmp_home, [b"abc", b"def"], sha="0" * 64)
    with pytest.raises(SentiEdgeError, match="was not kept"):
        registry.materialise(entry)
    assert not registry.model_path(entry).exists()
    assert not list((tmp_home / "models").glob("*.tmp"))


def test_a_changed_file_is_verified_again(tmp_home):
    entry = _wheel_entry(tmp_home, [b"abc"])
    path = registry.materialise(entry)
    path.write_bytes(b"tampered")
    assert not registry.is_present(entry)
    assert registry.materialise(entry).read_bytes() == b"abc"


def test_missing_parts_say_how_to_pull(tmp_home):
    entry = ModelEntry(name="ghost", file="ghost.gguf", sources=(Source("no-such-pkg-xyz", "1.0", "x.bin"),))
    with pytest.raises(SentiEdgeError, match="senti-edge models pull ghost"):
        registry.materialise(entry)


def _materialise_in_child(entry, home, q):
    import os
    os.environ["SENTI_EDGE_HOME"] = str(home)
    q.put(str(registry.materialise(entry)))


def test_two_processes_materialising_at_once_both_get_the_file(tmp_home):
    entry = _wheel_entry(tmp_home, [b"x" * (3 << 20), b"y" * (3 << 20)])
    q = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_materialise_in_child, args=(entry, tmp_home, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert q.get() == q.get()
    assert registry.is_present(entry)


def test_shipped_registry_is_complete():
    reg = {name: ModelEntry.from_dict(name, d) for name, d in registry._shipped().items()}  # not the user's entries
    assert registry.DEFAULT_MODEL in reg
    for e in reg.values():
        assert e.licence
        if e.base:  # distilled: a shipped base plus an adapter inside the package, hash-checked
            assert e.base in reg and not reg[e.base].base and len(e.adapter_sha256) == 64
            assert registry.shipped_adapter(e).stat().st_size < 20_000_000  # keep the repo small
        else:
            assert len(e.sha256) == 64 and e.size > 0 and e.sources


def test_resolve_paths_names_and_errors(tmp_home, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert registry.resolve(str(gguf)).path == gguf
    with pytest.raises(SentiEdgeError, match="model file not found"):
        registry.resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(SentiEdgeError, match="is a directory"):
        registry.resolve(str(tmp_path))
    with pytest.raises(SentiEdgeError, match="unknown model 'nope'"):
        registry.resolve("nope")
    lora = tmp_path / "lora.gguf"
    lora.write_bytes(b"GGUF")
    ref = registry.resolve(f"{gguf}+{lora}")
    assert ref.path == gguf and ref.adapter == lora


def test_register_local_adds_a_named_model(tmp_home, tmp_path):
    gguf = tmp_path / "student-q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    registry.register_local("my-student", gguf, quant="Q4_0")
    assert registry.resolve("my-student").path == gguf
    assert json.loads(registry.user_registry_path().read_text())["my-student"]["quant"] == "Q4_0"
    with pytest.raises(SentiEdgeError, match="taken by a shipped model"):
        registry.register_local("smollm2-135m", gguf)


def test_distilled_entries_pair_a_base_with_a_shipped_adapter(tmp_home, tmp_path, monkeypatch):
    parts = [b"GGUF" + b"\0" * 60]
    base = _wheel_entry(tmp_home, parts, name="toy")
    adapter = tmp_path / "toy-lora.gguf"
    adapter.write_bytes(b"GGUF lora")
    good = hashlib.sha256(adapter.read_bytes()).hexdigest()
    shipped = {"toy": {"file": base.file, "size": base.size, "sha256": base.sha256,
                       "sources": [s.__dict__ for s in base.sources], "licence": "x"},
               "toy-senti": {"file": base.file, "base": "toy", "adapter": str(adapter), "adapter_sha256": good,
                             "template": "chatml", "licence": "x"}}
    monkeypatch.setattr(registry, "_shipped", lambda: shipped)
    ref = registry.resolve("toy-senti")
    assert ref.path == registry.model_path(registry.get_entry("toy")) and ref.adapter == adapter
    assert ref.name == "toy-senti" and registry.is_present(registry.get_entry("toy-senti"))
    with pytest.raises(SentiEdgeError, match="already a base model with an adapter"):
        registry.resolve("toy-senti", str(adapter))
    shipped["toy-senti"]["adapter_sha256"] = "0" * 64
    with pytest.raises(SentiEdgeError, match="reinstall senti-edge"):
        registry.resolve("toy-senti")
    shipped["toy-senti"]["adapter"] = str(tmp_path / "gone.gguf")
    with pytest.raises(SentiEdgeError, match="missing from the package"):
        registry.resolve("toy-senti")


@pytest.fixture
def built_entry(tmp_home, tmp_path, monkeypatch):
    """A distilled entry with `build`: a toy base, a toy adapter, and a fake (fast) merge."""
    from senti_edge.runtime import build

    base = _wheel_entry(tmp_home, [b"GGUF-base"], name="toybase")
    adapter = tmp_path / "toy.lora.gguf"
    adapter.write_bytes(b"GGUF-lora")
    calls = []

    def fake_build(base_path, adapter_path, dst, quant, metadata=None):
        calls.append(quant)
        dst.write_bytes(base_path.read_bytes() + adapter_path.read_bytes() + quant.encode())

    monkeypatch.setattr(build, "build_merged", fake_build)
    monkeypatch.setattr(registry, "shipped_adapter", lambda entry: adapter)
    real_get = registry.get_entry
    monkeypatch.setattr(registry, "get_entry", lambda name: base if name == "toybase" else real_get(name))
    product = b"GGUF-baseGGUF-loraQ8_0"

    def make(sha=hashlib.sha256(product).hexdigest()):
        return ModelEntry(name="toy-distilled", file="toy-distilled.Q8_0.gguf", base="toybase", adapter="x",
                          build="Q8_0", sha256=sha, size=len(product)), calls
    return make


def test_a_built_entry_is_merged_once_checked_and_loaded_without_adapter(built_entry, tmp_home):
    entry, calls = built_entry()
    path = registry.materialise(entry)
    assert path == tmp_home / "models" / "toy-distilled.Q8_0.gguf"
    assert path.read_bytes() == b"GGUF-baseGGUF-loraQ8_0" and registry.is_present(entry)
    assert registry.materialise(entry) == path and calls == ["Q8_0"]  # built once


def test_a_build_that_does_not_reproduce_is_refused_and_not_kept(built_entry, tmp_home):
    entry, _ = built_entry(sha="0" * 64)
    with pytest.raises(SentiEdgeError, match="did not reproduce on this machine.*toy-distilled-lora"):
        registry.materialise(entry)
    assert not list((tmp_home / "models").glob("toy-distilled*")) and not list((tmp_home / "models").glob(".toy-distilled*.build"))


def test_the_shipped_default_is_built_and_its_adapter_form_stays_available():
    reg = registry.load_registry()
    default = reg[registry.DEFAULT_MODEL]
    assert default.build and default.sha256 and default.base
    lora = reg[registry.DEFAULT_MODEL + "-lora"]
    assert lora.adapter == default.adapter and not lora.build
