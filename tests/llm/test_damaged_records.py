"""A damaged records.jsonl (invalid UTF-8, a garbage line, NUL bytes) is read with one warning
that counts and locates what was skipped, through the command line; the lost items are made
again, and nothing ends in a traceback."""
from __future__ import annotations

from .test_loud_failures import cli, srv, write_cfg  # noqa: F401


def test_damaged_lines_are_warned_about_and_remade(tmp_path, srv):
    cfg = write_cfg(tmp_path, srv, counts={1: 4})
    assert cli(tmp_path, "generate-data", str(cfg)).returncode == 0
    path = tmp_path / "out" / "data" / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    first_ids = {ln.split(b'"id":"')[1].split(b'"')[0] for ln in lines}
    # Damage three of the four records' last versions: drop their good lines and add bad ones.
    keep = [ln for ln in lines if b"c0/" in ln]
    bad = [b"\xff\xfe not utf-8 {\n", b"garbage, not json\n", b'{"id": "x"\x00\x00}\n',
           b'{"id": "no other field"}\n']
    path.write_bytes(b"".join(keep[:1] + bad + keep[1:]))
    before = srv.successes
    again = cli(tmp_path, "generate-data", str(cfg))
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    warnings = [ln for ln in again.stderr.splitlines() if "damaged line" in ln]
    assert len(warnings) == 1, again.stderr
    w = warnings[0]
    assert "skipped 4 damaged lines" in w and "line 2 (invalid UTF-8)" in w
    assert "(not JSON)" in w and "(NUL bytes)" in w and "(not a record)" in w
    assert "made again" in w
    from skillmix_utils.core.records import RecordStore
    ids = {r.id.encode() for r in RecordStore(path).records()}
    assert first_ids <= ids                     # the lost items were made again
    assert srv.successes == before              # from the response cache: nothing paid twice


def test_a_record_of_another_schema_version_is_never_taken_as_current(tmp_path, srv):
    cfg = write_cfg(tmp_path, srv, counts={1: 2})
    assert cli(tmp_path, "generate-data", str(cfg)).returncode == 0
    path = tmp_path / "out" / "data" / "records.jsonl"
    lines = path.read_text().splitlines()
    assert all('"schema_version":1' in ln for ln in lines)      # every record says its version
    # a later skillmix's version of the last record: a field this one does not know of
    newer = lines[-1].replace('"schema_version":1', '"schema_version":2')
    newer = newer.replace('"kept":', '"verdict_v2":"keep","kept":')
    path.write_text("\n".join(lines + [newer]) + "\n")
    before = srv.successes
    again = cli(tmp_path, "generate-data", str(cfg))
    assert again.returncode == 0, again.stderr
    warnings = [ln for ln in again.stderr.splitlines() if "schema version" in ln]
    assert len(warnings) == 1, again.stderr
    assert f"line {len(lines) + 1} (version 2)" in warnings[0] and "reads version 1" in warnings[0]
    from skillmix_utils.core.records import RecordStore
    assert all(r.schema_version == 1 for r in RecordStore(path).records())
    assert srv.successes == before              # the item's own version stands; nothing paid
