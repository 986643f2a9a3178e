"""Who may know what on the grading page: the study's secret key and the raters' tokens.

- **Item keys** are an HMAC of what an item is (topic, skills, text) under a random key kept in
  `outputs/<study>/human/secret` (mode 600, made on first use). The page source alone (texts and
  keys) cannot tell which record, student or model a text belongs to: a key without the secret
  is as good as random.
- **Rater tokens** live in `outputs/<study>/human/raters.json` (mode 600). A rater's token is
  made the first time the operator names that rater (`skillmix human CONFIG --rater NAME`) and
  printed, as part of the rater's link, every time a server starts. Without it nobody reads or
  writes that rater's grades, and a name nobody made a token for is no rater at all.

Both files are secrets of the study's operator: they never reach the page, a log or a table.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from filelock import FileLock

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.present.human.store import check_rater

PRIVATE = 0o600


def human_dir(cfg) -> Path:
    """A study's human-grading folder: outputs/<study>/human/."""
    return cfg.out / "human"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 600 from the first byte (never world-readable, even for
    a moment), replacing it atomically."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_private(path: Path) -> str:
    # A copy that lost its mode (a backup restored by hand) is made private again on use.
    if path.stat().st_mode & 0o077:
        os.chmod(path, PRIVATE)
    return path.read_text(encoding="utf-8")


def _locked(cfg) -> FileLock:
    folder = human_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / ".access.lock"))


def study_secret(cfg) -> bytes:
    """The study's secret key (32 random bytes), made on first use."""
    path = human_dir(cfg) / "secret"
    if not path.exists():
        with _locked(cfg):
            if not path.exists():          # another process may have made it meanwhile
                _write_private(path, secrets.token_hex(32) + "\n")
    text = _read_private(path).strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise SkillmixError(f"{path} is not a key this tool wrote (64 hex digits); delete it "
                            "to make a new one (item keys change, saved grades are kept)",
                            field="human")
    return key


def item_key(secret: bytes, *parts) -> str:
    """An opaque key for an item: HMAC-SHA256 of its parts under the study's secret.

    >>> item_key(b"k" * 32, "Beekeeping", "metaphor", "a text")
    'fc98248740272152d26ab690'
    """
    msg = json.dumps([str(p) for p in parts], ensure_ascii=False).encode("utf-8")
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:24]


def rater_tokens(cfg, create=()) -> dict[str, str]:
    """rater -> token for every rater the operator has named; the names in `create` that have
    no token yet get one (and are saved) first."""
    path = human_dir(cfg) / "raters.json"
    names = [check_rater(n) for n in create]
    tokens = _load_tokens(path)              # written atomically: readable without the lock
    if all(n in tokens for n in names):
        return tokens
    with _locked(cfg):
        tokens = _load_tokens(path)
        for name in names:
            tokens.setdefault(name, secrets.token_urlsafe(24))
        _write_private(path, json.dumps(tokens, indent=1, sort_keys=True) + "\n")
    return tokens


def _load_tokens(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        tokens = json.loads(_read_private(path))
    except ValueError:
        tokens = None
    if not isinstance(tokens, dict) or not all(isinstance(t, str) for t in tokens.values()):
        raise SkillmixError(f"{path} is not a rater list this tool wrote; delete it and name "
                            "the raters again (their grades are kept, their links change)",
                            field="human")
    return tokens


def token_matches(expected: str, given: str | None) -> bool:
    """A constant-time comparison (a wrong token takes as long as a nearly right one)."""
    return bool(given) and hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
