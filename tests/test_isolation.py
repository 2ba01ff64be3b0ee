"""The autouse `isolated_home` fixture: no test touches the user's own cache entries."""

from __future__ import annotations

import json

from senti_edge.files import cache_home
from senti_edge.runtime import registry


def test_each_test_has_its_own_home(isolated_home, real_home):
    assert cache_home() == isolated_home != real_home
    assert registry.user_registry_path().parent == isolated_home


def test_registering_writes_to_the_isolated_home_only(isolated_home, real_home, tmp_path):
    before = (real_home / "registry.json").read_bytes() if (real_home / "registry.json").exists() else None
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    registry.register_local("isolation-test-model", gguf)
    assert "isolation-test-model" in json.loads((isolated_home / "registry.json").read_text())
    after = (real_home / "registry.json").read_bytes() if (real_home / "registry.json").exists() else None
    assert after == before


def test_the_real_models_stay_reachable(isolated_home, real_home):
    if (real_home / "models").is_dir():
        assert (isolated_home / "models").resolve() == (real_home / "models").resolve()
        assert registry.model_path(registry.get_entry("smollm2-135m")).parent.resolve() == (real_home / "models").resolve()
