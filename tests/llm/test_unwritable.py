"""Where skillmix cannot write, through the command line (issue 22): a full disk during a stage
is one line naming the file (exit 1), leaves no half line and a re-run continues; a read-only
response cache is refused before anything is written (exit 2), not a 32-line sqlite traceback."""
from __future__ import annotations

import ctypes
import os
import resource
from pathlib import Path

import yaml

from skillmix_utils.core.records import RecordStore
from skillmix_utils.llm.cache import ResponseCache

from .test_loud_failures import cli, error_lines, srv, write_cfg  # noqa: F401

LIMIT = 24_000   # bytes a file may reach: the config and logs fit, the records file does not


def _no_cache(cfg: Path) -> Path:
    tree = yaml.safe_load(cfg.read_text())
    for model in [tree["data"]["teacher"], *tree["data"]["graders"]]:
        model["options"]["use_cache"] = False     # sqlite would hit the limit first
    cfg.write_text(yaml.safe_dump(tree))
    return cfg


def test_a_full_disk_is_one_line_naming_the_file_and_a_rerun_continues(tmp_path, srv):
    cfg = _no_cache(write_cfg(tmp_path, srv, counts={1: 12}))
    records = tmp_path / "out" / "data" / "records.jsonl"

    def small_files():      # RLIMIT_FSIZE: a write past LIMIT bytes fails as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    full = cli(tmp_path, "generate-data", str(cfg), preexec_fn=small_files)
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    (line,) = error_lines(full)
    assert f"{records}: cannot write: File too large" in line and "re-run" in line
    kept = records.read_bytes()
    assert kept.endswith(b"\n") or not kept        # no half line left behind
    again = cli(tmp_path, "generate-data", str(cfg))
    assert again.returncode == 0, again.stderr
    assert "damaged" not in again.stderr
    assert len(RecordStore(records).records()) == 12


def _as_a_plain_user():
    """For root: drop the capabilities that let it write anywhere (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH, CAP_FOWNER) from the command, so file modes hold for it too."""
    if os.getuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):
            libc.prctl(24, cap, 0, 0, 0)          # PR_CAPBSET_DROP: gone after exec


def test_a_read_only_cache_is_refused_before_anything_is_written(tmp_path, srv):
    llm = tmp_path / "cache" / "llm"
    ResponseCache(llm)._db.close()                 # a cache from an earlier run, now read-only
    for f in llm.iterdir():
        f.chmod(0o444)
    llm.chmod(0o555)
    try:
        cfg = write_cfg(tmp_path, srv, counts={1: 2})
        before = sorted(tmp_path.rglob("*"))
        proc = cli(tmp_path, "generate-data", str(cfg), preexec_fn=_as_a_plain_user)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        (line,) = error_lines(proc)
        assert "SKILLMIX_CACHE: the response cache cannot be written" in line
        assert str(llm) in line and "read-only" in line
        assert sorted(tmp_path.rglob("*")) == before   # no output folder, no lock
        assert srv.attempts == 0
    finally:
        llm.chmod(0o755)
