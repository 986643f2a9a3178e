"""The sqlite response cache: keys, and several processes writing one file at once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from skillmix_utils.llm.cache import ResponseCache, cache_key

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
sys.path.insert(0, {root!r})
from skillmix_utils.llm.cache import ResponseCache
c = ResponseCache({folder!r})
for i in range(300):
    c.put(f"{tag}-{{i}}", {{"text": str(i)}})
"""


def test_processes_share_one_cache(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT),
                                                                   folder=str(tmp_path), tag=t)])
             for t in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    cache = ResponseCache(tmp_path)
    assert len(cache) == 900
    assert cache.get("b-299") == {"text": "299"}
    got = cache.get_many([f"a-{i}" for i in range(600)])  # more keys than one SQL chunk
    assert len(got) == 300


def test_key_covers_every_part():
    base = dict(kind="openai", model="m", messages=[{"role": "user", "content": "x"}],
                temperature=0.0, max_tokens=5, seed=None, index=0, host="h")
    k = cache_key(**base)
    for part, other in [("kind", "anthropic"), ("model", "n"), ("temperature", 0.1),
                        ("max_tokens", 6), ("seed", 1), ("index", 1), ("host", "g"),
                        ("messages", [{"role": "user", "content": "y"}])]:
        assert cache_key(**{**base, part: other}) != k, part
