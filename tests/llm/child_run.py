"""A stage run in a child process, for the kill-and-resume tests.

    python tests/llm/child_run.py SPEC BASE_URL CACHE_DIR N_CONVERSATIONS [batch]

Keys and everything else come from the environment, like a real run.
"""
from __future__ import annotations

import sys


def conversations(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"Write about item {i}."}] for i in range(n)]


def main(argv: list[str]) -> int:
    from skillmix_utils.llm import get_backend

    spec, url, cache, n = argv[:4]
    batch = len(argv) > 4 and argv[4] == "batch"
    be = get_backend(spec, base_url=url, cache_dir=cache, concurrency=4, timeout=5,
                     batch=batch, poll_interval=0.05, progress=False)
    res = be.chat(conversations(int(n)), temperature=0.7, max_tokens=50)
    print(sum(r.ok for r in res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
