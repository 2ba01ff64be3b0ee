"""files.py: the cache home."""

from senti_edge.files import cache_home


def test_cache_home_respects_senti_edge_home_and_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SENTI_EDGE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_home() == tmp_path / "xdg" / "senti-edge"
    monkeypatch.setenv("SENTI_EDGE_HOME", str(tmp_path / "h"))
    assert cache_home() == tmp_path / "h"
