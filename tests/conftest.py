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

from skillmix_utils.llm.models import cache_dir  # noqa: E402  (light: no torch, no transformers)

os.environ["SKILLMIX_CACHE"] = str(_tests_cache(cache_dir()))


@pytest.fixture(scope="session")
def embedded_model() -> str:
    """Folder of the embedded SmolLM2-135M-Instruct in plain Hugging Face form."""
    from skillmix_utils.llm.models import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)


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
