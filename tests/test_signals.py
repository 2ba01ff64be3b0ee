"""SIGINT or SIGTERM during analyze leaves no half-written output and exits non-zero."""

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.model


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_analyze_leaves_no_partial_file(tmp_path, smollm2_path, sig, code):
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"text number {i}, rather good" for i in range(20000)) + "\n")
    out = tmp_path / "labels.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "senti_edge", "analyze", str(big), "-m", str(smollm2_path),
                             "--threads", "1", "--output", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:  # a failed check must not leave a model running
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code
    assert "Traceback" not in err and f"nothing was written ({out} was not created)" in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.txt"]
