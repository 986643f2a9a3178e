"""The record store: durable appends, last version wins, torn lines from killed writers ignored."""
from __future__ import annotations

from skillmix_utils.core.records import Combination, Grading, RecordStore, TextRecord, record_id


def make(i, **kw):
    combo = Combination(skills=("metaphor", "red herring"), topic="Beekeeping", k=2,
                        setting="train", index=i)
    return TextRecord(id=record_id("eval", "train", 2, i, 0, student="base"), stage="eval",
                      model="hf:x", combination=combo, **kw)


def test_round_trip_and_last_version_wins(tmp_path):
    store = RecordStore(tmp_path / "r.jsonl")
    store.append([make(0, answer="first"), make(1)])
    updated = make(0, answer="first")
    updated.gradings.append(Grading(grader="openai:g", points=[1, 1, 1, 1, 1], round=0))
    store.append(updated)
    recs = store.load()
    assert list(recs) == ["eval/base/train/k2/c0/g0", "eval/base/train/k2/c1/g0"]
    assert recs["eval/base/train/k2/c0/g0"].gradings[0].points == [1, 1, 1, 1, 1]
    assert recs["eval/base/train/k2/c0/g0"].combination.skills == ("metaphor", "red herring")
    store.compact()
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2
    assert store.load() == recs


def test_torn_line_is_skipped_and_next_append_survives(tmp_path):
    path = tmp_path / "r.jsonl"
    store = RecordStore(path)
    store.append(make(0))
    with open(path, "a") as fh:
        fh.write('{"id": "eval/base/train/k2/c1/g0", "stage": "ev')  # writer killed here
    store.append(make(2))
    assert [r.combination.index for r in store.records()] == [0, 2]


def test_move_out_keeps_every_record_somewhere(tmp_path):
    """Records a config no longer plans leave the study's store for another file, whole."""
    from skillmix_utils.core.records import Combination, RecordStore, TextRecord

    def rec(i):
        return TextRecord(id=f"r{i}", stage="eval", model="m",
                          combination=Combination(skills=("metaphor",), topic="Knots", k=1))
    store = RecordStore(tmp_path / "records.jsonl")
    store.append([rec(0), rec(1), rec(2)])
    store.append(rec(1))                                   # a second version of r1
    assert store.move_out(["r1", "nope"], tmp_path / "aside.jsonl") == 1
    assert [r.id for r in store.records()] == ["r0", "r2"]
    assert [r.id for r in RecordStore(tmp_path / "aside.jsonl").records()] == ["r1"]
    assert store.move_out(["r0"], None) == 1 and [r.id for r in store.records()] == ["r2"]


def test_a_record_from_before_finish_reasons_reads_as_unknown(tmp_path):
    """Old stores stay readable: no finish reasons means "not known", never "cut off"."""
    import json

    from skillmix_utils.core.records import truncated

    old = json.loads(make(0, answer="Bees hum.").model_dump_json())
    old.pop("finish_reasons")
    for g in old["gradings"]:
        g.pop("finish_reason", None)
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(old) + "\n")
    rec = RecordStore(path).records()[0]
    assert rec.answer == "Bees hum." and rec.finish_reasons == [] and not truncated(rec)
    cut = make(1, answer="Bees hum and", finish_reasons=["stop", "length"])
    RecordStore(path).append(cut)
    assert truncated(RecordStore(path).load()[cut.id])
