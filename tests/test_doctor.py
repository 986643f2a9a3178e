"""`skillmix doctor` on a CPU: versions, the checks it can run, and what it skipped."""
from __future__ import annotations

import pytest


@pytest.mark.slow
def test_doctor_on_the_cpu(capsys, embedded_model):
    import torch

    from skillmix_utils import cli

    if torch.cuda.is_available():
        pytest.skip("this checks the CPU path")
    rc = cli.main(["doctor", "--steps", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    for item in ("torch", "bitsandbytes", "deepspeed", "vllm", "flash-attn", "CUDA"):
        assert item in out
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert "PASS" in lines["packed loss"] and "sdpa + block mask" in lines["packed loss"]
    assert "PASS" in lines["LoRA steps"] and "tokens/s" in lines["LoRA steps"]
    for skipped in ("QLoRA steps", "flash-attn 2 load", "vLLM parity"):
        assert "SKIP" in lines[skipped]
    assert "skipped: " in out


def test_a_failed_check_exits_non_zero(monkeypatch, capsys):
    from skillmix_utils import doctor

    monkeypatch.setattr(doctor, "run_checks", lambda *a, **k: [
        doctor.Check("packed loss", "FAIL", "leaks"), doctor.Check("vLLM parity", "SKIP", "x")])
    assert doctor.main() == 1
    assert "FAIL" in capsys.readouterr().out
