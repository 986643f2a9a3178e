"""`skillmix doctor` and `skillmix doctor --gpu`: what the CPU can show of them.

A machine with NVIDIA GPUs and a CPU-only torch, or a driver older than torch's CUDA runtime,
FAILs (issue 19, item 11): a fake `nvidia-smi` on PATH plays the GPU machine. flash-attn absent
is a WARN, installed but broken a FAIL naming the error. The acceptance run (`--gpu`) exits
non-zero on a machine without CUDA, with a FAIL line rather than a traceback, and writes its
table as JSON; its checks that can run on a CPU run there through the `--device cpu` hook.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from skillmix_utils import doctor
from skillmix_utils.doctor import cuda as doctor_cuda
from skillmix_utils.doctor import quick

FAKE_SMI = """#!/bin/sh
case "$*" in
  *--query-gpu*) printf 'NVIDIA H200\\nNVIDIA H200\\n' ;;
  *) printf '| NVIDIA-SMI 520.61.05   Driver Version: 520.61.05   CUDA Version: %s |\\n' "{cuda}" ;;
esac
"""


@pytest.fixture
def gpu_machine(tmp_path, monkeypatch):
    """PATH with an nvidia-smi that reports two H200s on a driver for CUDA 11.8."""
    folder = tmp_path / "bin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text(FAKE_SMI.replace("{cuda}", "11.8"))
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return folder


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "doctor", *args],
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def _rows(out: str) -> dict[str, str]:
    return {line.split("  ")[0].strip(): line for line in out.splitlines()}


def test_gpu_acceptance_without_cuda_fails_with_a_line_not_a_traceback(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this checks a machine without CUDA")
    target = tmp_path / "doctor" / "gpu.json"
    done = _cli("--gpu", "--out", str(target))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert "FAIL" in rows["CUDA"] and "no CUDA device" in rows["CUDA"]
    assert "SKIP" in rows["trainer qlora"] and "FAILED: CUDA" in done.stdout
    table = json.loads(target.read_text())
    assert table["exit_status"] == 1 and table["checks"][0]["status"] == "FAIL"
    assert {c["name"] for c in table["checks"]} >= {"NCCL", "trainer full", "throughput"}


def test_a_gpu_machine_with_a_cpu_torch_fails(gpu_machine, tmp_path):
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    done = _cli("--gpu", "--out", str(tmp_path / "d.json"))
    assert done.returncode == 1
    line = _rows(done.stdout)["CUDA"]
    assert "FAIL" in line and "CPU-only build" in line and "NVIDIA H200" in line


def test_plain_doctor_fails_on_a_gpu_machine_with_a_cpu_torch(gpu_machine, monkeypatch, capsys):
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    # the model checks would SKIP for want of CUDA: they are not what decides here
    for name in ("check_flash", "check_packed_loss", "check_steps", "check_vllm"):
        monkeypatch.setattr(quick, name, lambda *a, **k: quick.Check("x", "SKIP", "no CUDA"))
    assert doctor.main() == 1
    assert "CPU-only build" in _rows(capsys.readouterr().out)["CUDA"]


def test_a_driver_older_than_the_cuda_runtime_fails(gpu_machine, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # torch refuses the driver
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(doctor_cuda.ctypes, "CDLL", lambda *a: (_ for _ in ()).throw(OSError()))
    check = doctor_cuda.check_cuda()
    assert check.status == "FAIL" and "driver supports CUDA 11.8" in check.detail
    assert doctor_cuda.check_driver().status == "FAIL"


def test_flash_attn_absent_is_a_warning_and_broken_a_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor_cuda.importlib.util, "find_spec", lambda name: None)
    check = quick.check_flash("smollm2-135m-instruct", cuda=True)
    assert check.status == "WARN" and "not installed" in check.detail
    monkeypatch.undo()

    broken = tmp_path / "site" / "flash_attn"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(
        "raise ImportError('flash_attn_2_cuda.so: undefined symbol: _ZN3c104cuda9SetDevice')")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    check = quick.check_flash("smollm2-135m-instruct", cuda=True)
    assert check.status == "FAIL" and "undefined symbol" in check.detail


def test_nf4_round_trip_on_the_cpu():
    from skillmix_utils.doctor.gpu import check_nf4

    check = check_nf4("cpu")
    assert check.status == "PASS", check.detail


def test_a_failed_check_exits_non_zero(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "run_checks", lambda *a, **k: [
        doctor.Check("packed loss", "FAIL", "leaks"), doctor.Check("vLLM parity", "SKIP", "x")])
    assert doctor.main() == 1
    assert "FAIL" in capsys.readouterr().out


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
    lines = _rows(out)
    assert "PASS" in lines["packed loss"] and "sdpa + block mask" in lines["packed loss"]
    assert "PASS" in lines["LoRA steps"] and "tokens/s" in lines["LoRA steps"]
    for skipped in ("CUDA", "QLoRA steps", "flash-attn 2 load", "vLLM parity"):
        assert "SKIP" in lines[skipped]
    assert "skipped: " in out


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_the_acceptance_run_on_the_cpu_hook(tmp_path, tiny_model):
    """The trainer in every mode (QLoRA saved and resumed), NF4, generation and throughput,
    through the same code as on a GPU, at the CPU hook's small sizes. On the tests' tiny model
    (`--model`; conftest.tiny_model): the code paths are the embedded model's, and what the
    embedded model learns in each mode is tests/stages/train/test_modes.py's."""
    target = tmp_path / "cpu.json"
    # five short training runs and a few model loads
    done = _cli("--gpu", "--device", "cpu", "--steps", "2", "--model", tiny_model,
                "--out", str(target), timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checks = {c["name"]: c for c in json.loads(target.read_text())["checks"]}
    for name in ("trainer lora", "trainer qlora", "trainer full", "NF4 round trip",
                 "HF generation", "throughput"):
        assert checks[name]["status"] == "PASS", checks[name]
    assert "resumed from step 1" in checks["trainer qlora"]["detail"]
    for name in ("NCCL", "paged 8-bit AdamW", "flash-attn varlen vs sdpa", "vLLM parity (LoRA)"):
        assert checks[name]["status"] == "SKIP"
