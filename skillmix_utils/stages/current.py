"""Which stored records are current: made the way the config makes them now.

Records are append-only and ids name neither the writer nor its settings, so a store may hold
texts from an earlier config (another seed, temperature, prompt version, weights...) or from
combinations the config no longer draws. Only current records reach a table, a mix or the data
card; the stages rewrite the others. A record is current when its id is planned by the config and
its identity (`identity.text_identity`) is the one the configured writer would give it now.

`retire` moves records that the config no longer plans (fewer combinations, a setting or a
student removed) out of records.jsonl into records.superseded.jsonl, so that nothing that reads
the store (the report's samples, the notebooks) shows them; nothing is deleted. Records of a
student whose weights cannot be resolved yet are left where they are. When the config plans
them again, made the same way, `revive` brings them back instead of paying for them twice.

`current_records(cfg, stage)` is the one reader of a stage's records for everything that shows
results: the metric tables, the report (tables, sample browser, failure gallery, costs), the
partition gain, the human sample (and so `skillmix push`, whose report and mixes are made from
them). A record made otherwise but still planned (a student setting changed) stays in
records.jsonl until the stage rewrites it; this reader never returns it. Only the stages that
resume, grade or rewrite a store read it whole (they must see what is there to redo it).
"""
from __future__ import annotations

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import RecordStore, TextRecord
from skillmix_utils.stages.draws import data_items, eval_items, training_keys
from skillmix_utils.stages.generate import Writer
from skillmix_utils.stages.students import resolve_student, weights_fingerprint

IMPORTED = "imported.json"   # written by reference_import: the store holds imported records
STORES = {"eval": "eval", "datagen": "data"}   # stage -> its folder under the study's output


def data_identities(cfg, catalog, items) -> dict[str, str]:
    """{record id: identity} of the config's data generation texts."""
    writer = Writer(cfg.data.teacher, catalog)
    return {p.id: writer.identity(p) for p in items}


def current_data_records(cfg, catalog, store, items=None) -> list:
    """The data records of the config that are current (see the module docstring)."""
    items = data_items(cfg, catalog) if items is None else items
    want = data_identities(cfg, catalog, items)
    return [r for r in store.records() if want.get(r.id) is not None and r.identity == want[r.id]]


SUPERSEDED = "records.superseded.jsonl"


def retire(store, planned_ids, keep=lambda rec: False) -> int:
    """Move the store's records whose id is not in `planned_ids` (and not `keep(rec)`) to
    `records.superseded.jsonl` beside it; returns how many moved."""
    gone = [r.id for r in store.records() if r.id not in planned_ids and not keep(r)]
    return store.move_out(gone, store.path.with_name(SUPERSEDED)) if gone else 0


def revive(store, want: dict[str, str]) -> int:
    """Bring back from records.superseded.jsonl the records the config plans again, made the
    way it makes them now (`want`: {id: identity}), unless the store already holds a successful
    one: a setting dropped and restored costs nothing. Returns how many came back."""
    aside_path = store.path.with_name(SUPERSEDED)
    if not aside_path.exists():
        return 0
    aside = RecordStore(aside_path)
    have = store.load()
    back = [r for r in aside.records() if want.get(r.id) is not None and r.identity == want[r.id]
            and not (r.id in have and have[r.id].status == "ok")]
    if back:
        store.append(back)
        aside.move_out([r.id for r in back], None)   # they live on in the store
    return len(back)


def eval_planned_ids(cfg, catalog) -> set[str]:
    """Every evaluation record id the config plans, for all its students."""
    train = training_keys(cfg, catalog)
    return {p.id for s in cfg.evaluation.students for p in eval_items(cfg, catalog, s, train)}


def eval_identities(cfg, catalog, notes: list | None = None) -> dict[str, str]:
    """{record id: identity} of every planned evaluation text. A student whose weights cannot be
    resolved (e.g. "@train" before training) has none, and a note says so."""
    train = training_keys(cfg, catalog)
    out: dict[str, str] = {}
    for student in cfg.evaluation.students:
        try:
            spec, adapter = resolve_student(cfg, student)
        except SkillmixError as exc:
            if notes is not None:
                notes.append(f"student {student.name}: {exc.reason}")
            continue
        writer = Writer(spec, catalog, adapter=adapter, weights=weights_fingerprint(spec, adapter))
        for p in eval_items(cfg, catalog, student, train):
            out[p.id] = writer.identity(p)
    return out


def current_eval_records(cfg, catalog, records, notes: list | None = None) -> list:
    """The evaluation records that are current (see the module docstring)."""
    want = eval_identities(cfg, catalog, notes)
    return [r for r in records if want.get(r.id) is not None and r.identity == want[r.id]]


def current_records(cfg, stage: str = "eval", catalog=None, notes: list | None = None
                    ) -> list[TextRecord]:
    """The records of `stage` ("eval" or "datagen") under `cfg.out` that count now: planned by
    the config and made the way it makes them now (see the module docstring); every record of
    an imported store (`skillmix import-reference`: no config draws them). [] when the stage
    has no store or the config no section for it. `notes` collects why a student's texts are
    left out (weights not resolvable yet).

    Example: ``current_records(load_study_config("configs/demo.yaml"), "eval")``.
    """
    folder = cfg.out / STORES[stage]
    path = folder / "records.jsonl"
    if not path.exists():
        return []
    store = RecordStore(path)
    if stage == "eval" and (folder / IMPORTED).exists():
        return store.records()
    if (cfg.evaluation if stage == "eval" else cfg.data) is None:
        return []
    catalog = cfg.catalog.load() if catalog is None else catalog
    if stage == "eval":
        return current_eval_records(cfg, catalog, store.records(), notes)
    return current_data_records(cfg, catalog, store)
