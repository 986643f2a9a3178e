"""The one record shape that flows through every stage, and the JSONL file that holds it.

A `TextRecord` is born when a model writes a skill-mix text (data generation or evaluation);
grading appends `Grading`s; scoring fills `derived`. Each stage adds fields and never
re-derives what an earlier one knew.

Storage: a stage's records live in one JSONL file. Every write appends one whole line (flushed
and fsync'd under a file lock), so a crash loses at most the line being written and a torn last
line is ignored on read. An updated record is appended again with the same `id`; readers keep
the last version of each id. `RecordStore.compact()` rewrites the file atomically when wanted.

Every record carries `schema_version` (a line without one is version 1, what skillmix wrote
before the field existed). A line of another version is migrated up (`MIGRATIONS`) when a
migration exists, else skipped with one warning: never read as a record of this version.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, Field

from skillmix_utils.core.errors import writing

Stage = Literal["datagen", "eval"]
SCHEMA_VERSION = 1
# version v -> a function turning a version-v record (a dict) into version v + 1
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}
Setting = Literal["train", "held_out", "all", "custom"]


class Combination(BaseModel):
    """k distinct skills and one topic, drawn for one setting."""
    skills: tuple[str, ...]
    topic: str
    k: int
    setting: str = "custom"
    index: int = 0          # position in the seeded draw; stable across rounds
    categories: tuple[str, ...] = ()
    excluded_draws: int = 0  # draws rejected before this one (they were training combinations)


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False


class Grading(BaseModel):
    """One grading round of one grader on one text."""
    grader: str                      # backend spec, e.g. "openai:gpt-4o" or "hf:smollm2-135m-instruct"
    method: str = "table"            # "table" | "point_earned" | "yes_no_logprob" (local judge)
    round: int = 0
    prompt: str | None = None        # the rendered grading prompt (no secrets: text only)
    raw_reply: str | None = None
    finish_reason: str | None = None # why the reply ended ("stop", "length": cut off); None: unknown
    points: list[float | None] | None = None   # k + 3, rubric order; None entries = unreadable
    status: Literal["ok", "parse_failed", "error"] = "ok"
    stated_total: float | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    identity: str | None = None      # grader, method, prompt and sampling (identity.py)
    parse: dict | None = None        # the parser's diagnostics: shape, matched_by, notes, ...


class Derived(BaseModel):
    """A text's points as `stages.scoring.score` derived them, per grader (keyed by label); the
    one stored result every table, figure and report reads."""
    sentence_count: int | None = None
    length_point: float | None = None            # replaces the graders' length verdict
    explicit_names: list[str] = Field(default_factory=list)  # skills named verbatim in the text
    # per rubric point (k + 3): the scoring rule that set it over every grader's verdict
    # ("length", "names the skill"), None where the graders' vote stands; None for a record
    # scored before skillmix stored it (`skillmix metrics` scores it again)
    point_rules: list[str | None] | None = None
    # grader -> {round: k + 3 corrected points} of the gradings that count (None = unreadable)
    round_points: dict[str, dict[int, list[float | None]]] = Field(default_factory=dict)
    voted_points: dict[str, list[float | None]] = Field(default_factory=dict)
    valid_rounds: dict[str, int] = Field(default_factory=dict)
    scoring: dict = Field(default_factory=dict)  # the scoring settings it was derived with


class TextRecord(BaseModel):
    """A generated skill-mix text and everything later stages learn about it."""
    schema_version: int = SCHEMA_VERSION          # the record shape (see MIGRATIONS)
    id: str
    stage: Stage
    study: str = ""
    model: str                                   # writer's backend spec
    adapter: str | None = None                   # LoRA adapter or checkpoint folder, if any
    weights: str | None = None                   # fingerprint of local weights (adapter/checkpoint)
    student: str | None = None                   # student name in an evaluation config
    identity: str | None = None                  # what the text was made from (identity.py)
    combination: Combination
    generation_round: int = 0
    sampling: dict = Field(default_factory=dict)  # temperature, max_tokens, seed, ...
    conversation: list[dict] = Field(default_factory=list)  # both turns, both replies
    # why each reply of `conversation` ended, in order ("stop"; "length": max_tokens cut it
    # off; None: not known). [] in a record written before skillmix kept it: read as unknown.
    # Not part of the identity: a stored text is reused whatever this says.
    finish_reasons: list[str | None] = Field(default_factory=list)
    answer: str | None = None
    extraction_rule: str | None = None
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    gradings: list[Grading] = Field(default_factory=list)
    derived: Derived = Field(default_factory=Derived)
    kept: bool | None = None                      # data generation: passed the full-marks filter


def truncated(rec: TextRecord) -> bool:
    """True when max_tokens cut off one of the record's replies (finish reason "length").

    >>> r = TextRecord(id="x", stage="eval", model="m", finish_reasons=["stop", "length"],
    ...                combination=Combination(skills=("metaphor",), topic="Knots", k=1))
    >>> truncated(r), truncated(r.model_copy(update={"finish_reasons": []}))
    (True, False)
    """
    return "length" in rec.finish_reasons


def record_id(stage: str, setting: str, k: int, index: int, generation_round: int,
              student: str | None = None) -> str:
    """A deterministic id, so that a resumed run finds what it already made.

    >>> record_id("eval", "held_out", 3, 7, 1, student="base")
    'eval/base/held_out/k3/c7/g1'
    """
    head = f"{stage}/{student}" if student else stage
    return f"{head}/{setting}/k{k}/c{index}/g{generation_round}"


_WARNED: set = set()


def _warn_damaged(path: Path, skipped: list[tuple[int, str]]) -> None:
    """One line on stderr per damaged file state (not once per read)."""
    import sys

    key = (str(path), tuple(skipped))
    if key in _WARNED:
        return
    _WARNED.add(key)
    where = ", ".join(f"line {n} ({why})" for n, why in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    print(f"skillmix: warning: {path}: skipped {len(skipped)} damaged line"
          f"{'s' * (len(skipped) > 1)}: {where}{more}; the items they held are made again",
          file=sys.stderr, flush=True)


def _warn_versions(path: Path, found: list[tuple[int, object]]) -> None:
    """One line on stderr per file state listing lines of a schema version this code can't read."""
    import sys

    key = ("versions", str(path), tuple(found))
    if key in _WARNED:
        return
    _WARNED.add(key)
    where = ", ".join(f"line {n} (version {v})" for n, v in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    print(f"skillmix: warning: {path}: skipped {len(found)} record line{'s' * (len(found) > 1)} "
          f"of another schema version: {where}{more}; this skillmix reads version "
          f"{SCHEMA_VERSION} and has no migration for them, so they are not taken as records "
          "(their items are made again; a newer skillmix reads them)",
          file=sys.stderr, flush=True)


def upgrade(data: dict) -> dict | None:
    """A record dict of any schema version as this version's (migrated), or None when no
    migration leads from its version to this one.

    >>> upgrade({"id": "x"})["id"], upgrade({"id": "x", "schema_version": 99})
    ('x', None)
    """
    version = data.get("schema_version", 1)
    while isinstance(version, int) and not isinstance(version, bool) and version in MIGRATIONS \
            and version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data if version == SCHEMA_VERSION else None


class RecordStore:
    """Append-only JSONL of TextRecords with last-write-wins reads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _lock(self):
        from filelock import FileLock
        return FileLock(str(self.path) + ".lock")

    def append(self, records: TextRecord | Iterable[TextRecord]) -> None:
        """Append records (new or updated) durably."""
        if isinstance(records, TextRecord):
            records = [records]
        lines = "".join(r.model_dump_json() + "\n" for r in records)
        if not lines:
            return
        # Unbuffered, so that a failed write leaves nothing queued to be flushed at close.
        with writing(self.path), self._lock(), open(self.path, "a+b", buffering=0) as fh:
            # A writer killed mid-line leaves a torn tail: start on a fresh line after it.
            size = fh.seek(0, os.SEEK_END)
            if size > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    lines = "\n" + lines
            data = memoryview(lines.encode("utf-8"))
            try:
                while data:
                    data = data[fh.write(data):]
                os.fsync(fh.fileno())
            except OSError:
                os.ftruncate(fh.fileno(), size)     # a full disk leaves no half line behind
                raise

    def load(self, warn: bool = True) -> dict[str, TextRecord]:
        """The latest version of every record, in first-seen order.

        Damaged lines (a line torn by a killed writer, invalid UTF-8, NUL bytes, anything that
        is not a record) are skipped with one warning on stderr that counts and locates them
        (`warn=False`: quietly, for a caller whose own error says it); the items they held are
        missing, so the stage makes them again.
        """
        out: dict[str, TextRecord] = {}
        if not self.path.exists():
            return out
        skipped: list[tuple[int, str]] = []
        other_versions: list[tuple[int, object]] = []
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    if b"\0" in raw:
                        raise ValueError("NUL bytes")
                    data = json.loads(raw.decode("utf-8"))
                    if isinstance(data, dict):
                        current = upgrade(data)
                        if current is None:
                            other_versions.append((number, data.get("schema_version")))
                            continue
                        data = current
                    rec = TextRecord.model_validate(data)
                except UnicodeDecodeError:
                    skipped.append((number, "invalid UTF-8"))
                    continue
                except ValueError as exc:   # JSON or validation error (both are ValueErrors)
                    why = "NUL bytes" if "NUL" in str(exc) else (
                        "not a record" if raw.lstrip().startswith(b"{") and raw.rstrip().endswith(b"}")
                        else "not JSON")
                    skipped.append((number, why))
                    continue
                out[rec.id] = rec
        if skipped and warn:
            _warn_damaged(self.path, skipped)
        if other_versions and warn:
            _warn_versions(self.path, other_versions)
        return out

    def records(self) -> list[TextRecord]:
        return list(self.load().values())

    def move_out(self, ids: Iterable[str], to: str | os.PathLike | None) -> int:
        """Move the records `ids` (every version) to the JSONL file `to`, appended there, and
        rewrite this file without them, atomically; returns how many records moved. Used for
        superseded records: kept for the record, never read as part of the study. `to=None`
        only drops them here (for records that live on in another store)."""
        ids = set(ids)
        if not ids or not self.path.exists():
            return 0
        with self._lock():
            recs = self.load()
            gone = [r for i, r in recs.items() if i in ids]
            if not gone:
                return 0
            if to is not None:
                with open(Path(to), "a", encoding="utf-8") as fh:
                    for r in gone:
                        fh.write(r.model_dump_json() + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                for i, r in recs.items():
                    if i not in ids:
                        fh.write(r.model_dump_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        return len(gone)

    def compact(self) -> None:
        """Rewrite the file with one line per record, atomically."""
        with self._lock():
            recs = self.load()
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in recs.values():
                    fh.write(r.model_dump_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
