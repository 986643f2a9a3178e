"""The response cache: one sqlite file (WAL mode) shared by processes and studies.

Each entry is one sample of one request, keyed by a hash of everything that determines the
answer (see `cache_key`). Only the reply text, usage and cost are stored; never a key, header
or the request itself. The same file holds the ids of submitted batch jobs so that a
restarted process resumes polling instead of paying again.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL);
CREATE TABLE IF NOT EXISTS batch_jobs (batch_id TEXT PRIMARY KEY, provider TEXT, status TEXT,
                                       created REAL, meta TEXT);
CREATE TABLE IF NOT EXISTS batch_items (key TEXT PRIMARY KEY, batch_id TEXT, custom_id TEXT);
"""


def cache_key(**parts) -> str:
    """A stable sha256 over the given parts (JSON with sorted keys).

    >>> cache_key(model="m", index=0) == cache_key(index=0, model="m")
    True
    >>> cache_key(model="m", index=0) == cache_key(model="m", index=1)
    False
    """
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """sqlite-backed key -> reply store, safe for several threads and processes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "responses.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def _exec(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def get(self, key: str) -> dict | None:
        """The stored value of a key, or None."""
        rows = self._exec("SELECT value FROM responses WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """{key: value} for the keys that are stored."""
        out: dict[str, dict] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._exec(f"SELECT key, value FROM responses WHERE key IN "
                              f"({','.join('?' * len(chunk))})", chunk)
            out.update((k, json.loads(v)) for k, v in rows)
        return out

    def put(self, key: str, value: dict) -> None:
        """Store one value (committed at once: a killed process keeps what it finished)."""
        self._exec("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                   (key, json.dumps(value, ensure_ascii=False), time.time()))

    def __len__(self) -> int:
        return self._exec("SELECT COUNT(*) FROM responses")[0][0]

    # --- batch bookkeeping -------------------------------------------------------------
    def save_batch(self, batch_id: str, provider: str, items: dict[str, str], meta: dict) -> None:
        """Remember a submitted batch and which cache keys (custom ids) it answers."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, 'submitted', ?, ?)",
                             (batch_id, provider, time.time(), json.dumps(meta)))
            self._db.executemany("INSERT OR REPLACE INTO batch_items VALUES (?, ?, ?)",
                                 [(k, batch_id, c) for k, c in items.items()])
            self._db.execute("COMMIT")

    def pending_batches(self, keys: list[str], provider: str) -> dict[str, list[str]]:
        """{batch_id: [keys]} of batches still open that answer some of `keys`."""
        out: dict[str, list[str]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._exec(
                "SELECT i.key, i.batch_id FROM batch_items i JOIN batch_jobs j USING (batch_id) "
                f"WHERE j.status = 'submitted' AND j.provider = ? AND i.key IN "
                f"({','.join('?' * len(chunk))})", [provider, *chunk])
            for key, bid in rows:
                out.setdefault(bid, []).append(key)
        return out

    def close_batch(self, batch_id: str, status: str) -> None:
        """Mark a batch collected (or failed): its items are no longer waited for."""
        self._exec("UPDATE batch_jobs SET status = ? WHERE batch_id = ?", (status, batch_id))

    def batches(self) -> list[dict]:
        """Every batch job this cache knows, oldest first."""
        rows = self._exec("SELECT batch_id, provider, status, created FROM batch_jobs "
                          "ORDER BY created")
        return [dict(zip(("batch_id", "provider", "status", "created"), r)) for r in rows]


class NullCache(ResponseCache):
    """`use_cache=False`: nothing is read or written (batch ids are kept in memory only)."""

    def __init__(self):  # noqa: D107 - deliberately no file
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)
        self.path = None

    def get_many(self, keys):
        return {}

    def get(self, key):
        return None

    def put(self, key, value):
        return None
