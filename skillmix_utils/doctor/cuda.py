"""Is CUDA usable here: the NVIDIA GPUs the machine has, the torch build, the driver against
torch's CUDA runtime, bf16, flash-attn; and the versions of what training and serving use.

A machine with NVIDIA GPUs and a CPU-only torch (the case requirements.txt warns about), or a
driver older than torch's CUDA runtime, is a FAIL: every GPU check would otherwise be skipped
and the doctor would say the machine is fine. The GPUs are found without torch: `nvidia-smi`
on PATH, or a /dev/nvidia<N> device.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from skillmix_utils.doctor.report import Check

PACKAGES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "flash-attn",
            "deepspeed", "vllm")


def nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output, or None when it is absent or fails (no GPU, no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def nvidia_gpus() -> list[str]:
    """The machine's NVIDIA GPUs by name (from nvidia-smi; a /dev/nvidia<N> device without it
    counts as one unnamed GPU)."""
    out = nvidia_smi("--query-gpu=name", "--format=csv,noheader")
    names = [line.strip() for line in (out or "").splitlines() if line.strip()]
    if not names and any(re.fullmatch(r"nvidia\d+", p.name) for p in Path("/dev").glob("nvidia*")):
        names = ["NVIDIA GPU (/dev/nvidia*)"]
    return names


def driver_cuda_version() -> str | None:
    """The newest CUDA version the installed driver supports ("12.4"), or None."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        v = ctypes.c_int()
        if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value:
            return f"{v.value // 1000}.{(v.value % 1000) // 10}"
    except (OSError, AttributeError):
        pass
    m = re.search(r"CUDA Version:\s*(\d+\.\d+)", nvidia_smi() or "")
    return m.group(1) if m else None


def driver_verdict(driver: str, runtime: str) -> tuple[str, str]:
    """(status, detail) of a driver supporting CUDA `driver` under torch's CUDA `runtime`.

    >>> driver_verdict("12.4", "12.1")[0], driver_verdict("12.2", "12.4")[0]
    ('PASS', 'WARN')
    >>> print(driver_verdict("11.8", "12.1")[1])
    the NVIDIA driver supports CUDA 11.8, older than torch's CUDA 12.1 runtime: update the driver, or install a torch built for CUDA 11.8 or older
    """
    d = tuple(int(x) for x in driver.split(".")[:2])
    r = tuple(int(x) for x in runtime.split(".")[:2])
    if d[0] < r[0]:
        return "FAIL", (f"the NVIDIA driver supports CUDA {driver}, older than torch's CUDA "
                        f"{runtime} runtime: update the driver, or install a torch built for "
                        f"CUDA {driver} or older")
    if d < r:
        return "WARN", (f"driver CUDA {driver} < torch's CUDA {runtime}: runs by minor-version "
                        "compatibility, but kernels shipped as PTX for newer CUDA cannot be "
                        "compiled (update the driver)")
    return "PASS", f"driver supports CUDA {driver}, torch's runtime is CUDA {runtime}"


def cuda_hidden() -> bool:
    """True when CUDA_VISIBLE_DEVICES hides every GPU on purpose."""
    return os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1")


def check_cuda(required: bool = False) -> Check:
    """PASS when torch sees a CUDA GPU; FAIL when the machine has NVIDIA GPUs that torch cannot
    use (a CPU-only build, a driver too old) or, `required`, when there is no GPU at all."""
    import torch

    built = torch.version.cuda
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return Check("CUDA", "PASS", f"{n} x {torch.cuda.get_device_name(0)}, torch "
                     f"{torch.__version__} built for CUDA {built}")
    gpus = [] if cuda_hidden() else nvidia_gpus()
    if gpus:
        names = ", ".join(sorted(set(gpus)))
        if built is None:
            return Check("CUDA", "FAIL", f"this machine has {len(gpus)} NVIDIA GPU(s) ({names}) "
                         f"but torch {torch.__version__} is a CPU-only build: install torch built "
                         "for CUDA (see requirements.txt); nothing would run on the GPU")
        driver = driver_cuda_version()
        why = (driver_verdict(driver, built)[1] if driver else
               "the driver does not answer (nvidia-smi, libcuda.so.1)")
        return Check("CUDA", "FAIL", f"torch {torch.__version__} (CUDA {built}) cannot use the "
                     f"NVIDIA GPU(s) ({names}): {why}")
    detail = (f"no CUDA device: torch {torch.__version__} ("
              f"{'CUDA ' + built if built else 'CPU-only build'}), "
              + ("CUDA_VISIBLE_DEVICES hides the GPUs" if cuda_hidden()
                 else "no NVIDIA GPU found (nvidia-smi, /dev/nvidia*)"))
    return Check("CUDA", "FAIL" if required else "SKIP", detail)


def check_driver() -> Check:
    """The driver's CUDA version against the one torch was built for."""
    import torch

    runtime, driver = torch.version.cuda, driver_cuda_version()
    if runtime is None or driver is None:
        return Check("driver vs runtime", "SKIP",
                     "no CUDA build of torch" if runtime is None else "no NVIDIA driver found")
    return Check("driver vs runtime", *driver_verdict(driver, runtime))


def check_bf16() -> Check:
    """bf16 on this GPU, else the fp16 path (fp16 autocast with loss scaling, vLLM float16)."""
    import torch

    if not torch.cuda.is_available():
        return Check("bf16", "SKIP", "needs a CUDA GPU")
    cap = ".".join(map(str, torch.cuda.get_device_capability(0)))
    if torch.cuda.is_bf16_supported():
        return Check("bf16", "PASS", f"bf16 supported (compute capability {cap})")
    return Check("bf16", "WARN", f"no bf16 on {torch.cuda.get_device_name(0)} (compute "
                 f"capability {cap}): training and serving must take the fp16 path")


def flash_attn_state() -> tuple[str, str]:
    """(status, detail) of flash-attn: PASS when it imports, WARN when it is not installed
    (sdpa with a dense block mask is used: slower on packed batches), FAIL naming the error
    when it is installed but broken (e.g. built for another torch or CUDA)."""
    if importlib.util.find_spec("flash_attn") is None:
        return "WARN", ("flash-attn is not installed: attention falls back to sdpa with a dense "
                        "block mask on packed batches (pip install flash-attn --no-build-isolation)")
    try:
        import flash_attn
    except Exception as exc:  # noqa: BLE001 - any failure to import is a broken install
        return "FAIL", f"flash-attn is installed but broken: {type(exc).__name__}: {exc}"[:400]
    return "PASS", f"flash-attn {getattr(flash_attn, '__version__', '?')} imports"


def versions() -> dict[str, str]:
    """Installed versions of what training and serving depend on, and the GPU."""
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    import torch

    out["GPU"] = (f"CUDA {torch.version.cuda} ({torch.cuda.get_device_name(0)}, "
                   f"{torch.cuda.get_device_properties(0).total_memory / 1024 ** 3:.0f} GiB)"
                   if torch.cuda.is_available() else "no CUDA device")
    driver = driver_cuda_version()
    if driver:
        out["NVIDIA driver"] = f"supports CUDA {driver}"
    return out
