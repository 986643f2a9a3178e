"""Shared test fixtures.

The embedded model is converted once per machine into the cache the package resolves
(llm/models.cache_dir: SKILLMIX_CACHE, else .cache/ in this checkout, as for make and the CLI),
so a CI run converts it once and every test reuses it. The tests' responses go to a
cache of their own (`<cache>/tests/`, its `models/` a link to the converted model): sampled
texts depend on the batch they were made in, so a response cached by a test must never become
the answer `make demo` gets for the same request.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tests_cache(user_cache: Path) -> Path:
    folder = user_cache / "tests"
    (user_cache / "models").mkdir(parents=True, exist_ok=True)
    folder.mkdir(exist_ok=True)
    link = folder / "models"
    if not link.is_symlink() and not link.exists():
        link.symlink_to(user_cache / "models", target_is_directory=True)
    return folder


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# Under `make test` each xdist worker gets its share of the cores, and so does every process it
# starts (notebook kernels, CLI runs, the training launcher keeps a set value). Left at the
# default, each of them runs one OpenMP thread per core; on 2 cores with 2 workers and a
# two-process training test that is 6+ spinning threads, and the e2e run's generation went
# from seconds to minutes (measured: 4 texts of 32 tokens in 4 minutes).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _share = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _share)

from skillmix_utils.llm.models import cache_dir  # noqa: E402  (light: no torch, no transformers)

if not os.environ.get("SKILLMIX_TESTS_CACHE"):   # xdist workers inherit the controller's
    os.environ["SKILLMIX_CACHE"] = os.environ["SKILLMIX_TESTS_CACHE"] = str(_tests_cache(cache_dir()))


@pytest.fixture(scope="session")
def embedded_model() -> str:
    """Folder of the embedded SmolLM2-135M-Instruct in plain Hugging Face form."""
    from skillmix_utils.llm.models import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def tiny_model(embedded_model) -> str:
    """Folder of a tiny random model in the embedded model's architecture (Llama: grouped-query
    attention, tied embeddings) and with its tokenizer and chat template: 2 layers of width 64,
    3.2M parameters, seed 0; it writes (random) words. For the tests of *mechanics* (sharded and
    distributed training parity, logging, the doctor's code paths, the model stages' bookkeeping
    through the CLI), which compare runs with each other, not with what a trained model says:
    the sharded test took 75 s instead of 395 s, the CLI test of both stages 37 s instead of
    213 s (measured). Tests of what the embedded model does keep `embedded_model`. Made once per
    cache, shared by xdist workers under a lock."""
    from filelock import FileLock

    target = Path(os.environ["SKILLMIX_CACHE"]) / "tiny-random-llama"
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").exists():
            import torch
            from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

            config = AutoConfig.from_pretrained(embedded_model)
            # Weights drawn 10x wider than transformers' default (0.02): at 0.02 two thin layers
            # leave each position's own embedding on top, the tied head gives back the last
            # prompt token ("\n") and every greedy reply is empty.
            config.update(dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                               initializer_range=0.2))
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            model.save_pretrained(partial)
            AutoTokenizer.from_pretrained(embedded_model).save_pretrained(partial)
            for extra in ("generation_config.json", "chat_template.jinja"):
                if (Path(embedded_model) / extra).exists():
                    shutil.copy(Path(embedded_model) / extra, partial / extra)
            partial.rename(target)
    return str(target)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def headless_chromium():
    """A context manager giving a Selenium driver on Debian's headless Chromium with a
    throw-away profile (the flags keep it off this machine's closed network); the test is skipped,
    saying why, where Chromium is missing."""
    if not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()) or not (
            shutil.which("chromedriver") or Path("/usr/bin/chromedriver").exists()):
        pytest.skip("needs Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    @contextlib.contextmanager
    def start():
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
        drv = webdriver.Chrome(service=service, options=opts)
        try:
            yield drv
        finally:
            drv.quit()
            shutil.rmtree(profile, ignore_errors=True)

    return start


@pytest.hookimpl(optionalhook=True)   # an xdist hook: pytest without xdist must not refuse it
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (make test): one worker more than there are cores, at most 4. A quarter of the
    suite's time is spent waiting (on loopback servers, retry back-off, Chromium, SLURM, the
    processes a test starts); with one worker per core the cores idled through it (measured on
    2 cores: 30 CPU-minutes in 19.7 minutes of wall time). Each worker's threads are its share
    of the cores (top of this file), so the extra worker does not oversubscribe them."""
    return min(4, (os.cpu_count() or 1) + 1)


def pytest_collection_modifyitems(config, items):
    """Slow files first: under `make test` (pytest-xdist, `--dist loadfile`: a file's tests run on
    one worker, so a module's shared set-up is made once) the longest work starts while the quick
    files fill the gaps. (pytest 9 ignores the test-id suffix by which xdist's `loadgroup` puts
    marked tests together, so files are the unit.)"""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)   # stable


@pytest.fixture
def notebooks_lock():
    """Held while a test reads the committed notebooks as committed or edits them in place (the
    JupyterLab test): under `make test`'s workers the two never overlap."""
    from filelock import FileLock

    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:12]
    with FileLock(Path(tempfile.gettempdir()) / f"skillmix-tests-notebooks-{tag}.lock"):
        yield
