"""The response cache: one sqlite file (WAL mode) shared by processes and studies.

Each entry is one sample of one request, keyed by a hash of everything that determines the
answer (see `cache_key`). Only the reply text, usage and cost are stored; never a key, header
or the request itself. The same file holds the ids of submitted batch jobs so that a
restarted process resumes polling instead of paying again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError

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


def check_writable(folder: str | Path) -> None:
    """Raise SkillmixError naming the path when the cache in `folder` cannot be written (a
    read-only folder or database, a file in the way); creates nothing that is not there."""
    folder = Path(folder)
    db = folder / "responses.sqlite"
    problem = None
    for p in (db, folder, *folder.parents):
        if p.exists():
            if p != db and not p.is_dir():
                problem = f"{p} is a file, not a folder"
            elif not os.access(p, os.W_OK) or (p == db and not os.access(folder, os.W_OK)):
                problem = f"{p} is read-only"
            elif p == db:
                try:      # a write transaction, rolled back: what a run's first reply needs
                    con = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=60)
                    try:
                        con.execute("BEGIN IMMEDIATE")
                        con.execute("ROLLBACK")
                    finally:
                        con.close()
                except sqlite3.Error as exc:
                    problem = f"{db} cannot be written ({exc})"
            break
    if problem:
        raise SkillmixError(f"the response cache cannot be written: {problem}; make it writable "
                            "or set SKILLMIX_CACHE to another folder", field="SKILLMIX_CACHE")


class ResponseCache:
    """sqlite-backed key -> reply store, safe for several threads and processes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / "responses.sqlite"
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SkillmixError(f"the response cache {self.path} cannot be opened for writing "
                                f"({exc}); make it writable or set SKILLMIX_CACHE to another "
                                "folder", field="SKILLMIX_CACHE") from None

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
