"""Read the results folder of the Skill-Mix reference code into skillmix records and tables.

    skillmix import-reference path/to/skill-mix outputs/reference [--scoring reference] [--setting all]

The folder is the reference repository (its results are in its `test/` folder) or the results
folder itself.

The reference code writes one folder per (k, seed, prompt version, generation round):

    k{k}_s{seed}_v{prompt}_r{round}/{student}/records.csv          the student's texts
    k{k}_s{seed}_v{prompt}_r{round}/{student}/conv/*.json          the same conversations
    k{k}_s{seed}_v{prompt}_r{round}/{student}/graded/by_{grader}_on_text_{col}_{grading round}_{grade prompt}/records.csv

`records.csv` has one row per combination (`k`, `skills` joined by ", \\n", `topic`, then per turn
i the prompt and reply under the conversation template's role names, e.g. `user_i` /
`assistant_i` or `[INST]_i` / `[/INST]_i`, and `text_i`, the text extracted from reply i). A
graded `records.csv` has the same rows in the same order with the grader's prompt and reply
(`user_0` / `assistant_0`), its `score_0` and the reference's own `points_0`.

What becomes of it (`OUT_DIR/eval/records.jsonl`, `OUT_DIR/config.yaml`, `OUT_DIR/eval/tables/`):
- one TextRecord per (student, seed, row, generation round): `answer` is the reference's
  `text_1` (the text of the second reply, which its graders graded), the four messages are the
  conversation, `extraction_rule` is `reference_text_1`; the model is `reference:<student>`.
- combinations are numbered by row, seed after seed (`index` = rows of earlier seeds + row); the
  same row of every round must name the same skills and topic, or the import stops.
- every grading of `text_1` becomes a Grading (`grader` = the folder's grader name, `round` =
  its grading round - 1, `method` the one its prompt used: `point_earned` for the "Point
  earned" prompt, `table` for the rubric-table prompt, whatever the folder's name says; the
  reference's published outputs graded with both under one folder name). Points are read from
  the reply by **this tool's parser**, which keeps the items of a partial reply; when it cannot
  read every point, the reference's own `points_0` is used if it holds k + 3 values, else the
  grading is `parse_failed` with the items it has (`Grading.parse` says what was missing).
  Gradings of `text_0` (the first reply) are counted and skipped.
- the records are scored with `scoring` (default the `reference` preset: the reference's
  zero-fill, its sentence counter, no explicit-name rule, so the numbers are the reference's
  own; `improved` or any preset name another), which the written config keeps, so
  `skillmix metrics OUT_DIR/config.yaml` scores again after an edit of its `scoring`.
- the setting is `--setting` (default `all`: the reference drew from every skill and topic).
  The metric table is printed.
"""
from __future__ import annotations

import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.grading import parse_grade, rubric_items
from skillmix_utils.core.numbers import plural, row_estimate
from skillmix_utils.core.records import Combination, Grading, RecordStore, TextRecord, record_id
from skillmix_utils.stages.scoring import score
from skillmix_utils.stages.tables import IMPORTED, write_metric_tables

RUN_DIR = re.compile(r"^k(?P<k>\d+)_s(?P<seed>-?\d+)_v(?P<prompt>.+)_r(?P<round>\d+)$")
GRADED_DIR = re.compile(r"^by_(?P<grader>.+)_on_text_(?P<col>\d+)(?:_(?P<round>\d+))?(?:_(?P<prompt>.+))?$")


def split_skills(value: str) -> tuple[str, ...]:
    """The reference's `skills` cell as names.

    >>> split_skills("spatial reasoning, \\nred herring, \\nmetaphor")
    ('spatial reasoning', 'red herring', 'metaphor')
    >>> split_skills("complex question (loaded question with implicit assumption ),  \\nmetaphor")
    ('complex question (loaded question with implicit assumption )', 'metaphor')
    """
    parts = re.split(r",\s*\n", value) if "\n" in value else value.split(",")
    return tuple(p.strip() for p in parts if p.strip())


def _read_csv(path: Path) -> list[dict]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SkillmixError(f"cannot read ({exc})", file=str(path)) from None


def _turns(row: dict) -> tuple[str, str]:
    """The (user, assistant) role names of a generation records.csv row."""
    for user, assistant in (("user", "assistant"), ("[INST]", "[/INST]"), ("USER", "ASSISTANT"),
                            ("Human", "Assistant"), ("0", "1")):
        if f"{user}_0" in row and f"{assistant}_0" in row:
            return user, assistant
    roles = [c[:-2] for c in row if c.endswith("_0") and not c.startswith(("model_input", "text"))]
    if len(roles) >= 2:
        return roles[0], roles[1]
    raise SkillmixError("no conversation columns (<role>_0, <role>_1)", field="records.csv")


def method_of(prompt: str, folder_prompt: str | None) -> str:
    """The grading method a reference grading prompt used, read from the prompt itself (the
    folder's name, e.g. `..._gpt`, is the fallback: the published folders named `gpt` hold
    "Point earned" prompts too).

    >>> method_of("... include in your evaluation 'Point earned: 1' if ...", "gpt")
    'point_earned'
    >>> method_of("Using a rubric table format, please grade ...", "llama"), method_of("", "llama")
    ('table', 'point_earned')
    """
    if "Point earned" in prompt:
        return "point_earned"
    if "rubric table" in prompt:
        return "table"
    return "table" if (folder_prompt or "gpt") == "gpt" else "point_earned"


def _points(reply: str, ref_points: str, skills, topic: str, k: int, method: str = "table"):
    """(points, status, stated total, parse diagnostics) of one imported grading."""
    criterion = "Contains" if method == "point_earned" else "Correctly illustrates"
    parsed = parse_grade(reply, rubric_items(list(skills), topic, criterion))
    diagnostics = {"shape": parsed.shape, "matched_by": parsed.matched_by,
                   "missing": list(parsed.missing), "notes": list(parsed.notes)}
    if parsed.ok:
        return parsed.points, "ok", parsed.stated_total, diagnostics
    try:
        ref = [float(x) for x in (ref_points or "").split(",") if x.strip()]
    except ValueError:
        ref = []
    if len(ref) == k + 3:
        diagnostics["notes"].append("points: the reference's own points_0")
        return ref, "ok", parsed.stated_total, diagnostics
    return parsed.partial, "parse_failed", parsed.stated_total, diagnostics


def results_folder(folder: Path) -> Path:
    """The folder holding the k*_s*_v*_r* runs: `folder` itself, or the `test/` folder of the
    reference repository."""
    def has_runs(f: Path) -> bool:
        return f.is_dir() and any(RUN_DIR.match(p.name) and p.is_dir() for p in f.iterdir())
    if not has_runs(folder) and has_runs(folder / "test"):
        return folder / "test"
    return folder


def scan(folder: Path) -> dict:
    """{(student, seed, k): {round: (run dir, rows)}} and the graded folders found."""
    runs: dict = defaultdict(dict)
    for run in sorted(p for p in folder.iterdir() if p.is_dir()):
        m = RUN_DIR.match(run.name)
        if not m:
            continue
        for student in sorted(p for p in run.iterdir() if (p / "records.csv").exists()):
            key = (student.name, int(m["seed"]), int(m["k"]))
            runs[key][int(m["round"])] = student
    if not runs:
        raise SkillmixError("no k*_s*_v*_r*/<student>/records.csv below this folder "
                            "(is it the reference code's results folder?)", file=str(folder))
    return runs


def import_reference(folder, out_dir, name: str | None = None, setting: str = "all",
                     scoring: str = "reference") -> dict[str, Path]:
    """Convert a reference results folder (or the repository holding it in `test/`); write
    records, config and metric tables to `out_dir`, scored with the `scoring` preset."""
    folder, out = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise SkillmixError("no such folder", file=str(folder))
    folder = results_folder(folder)
    runs = scan(folder)
    name = name or folder.resolve().name
    records, graders, skipped = [], {}, 0
    offsets: dict[tuple, int] = defaultdict(int)
    students, ks, n_rows, n_rounds = [], set(), 0, 1
    for (student, seed, k), rounds in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        if student not in students:
            students.append(student)
        ks.add(k)
        base = offsets[(student, k)]
        first = None
        n_rounds = max(n_rounds, len(rounds))
        for g_round, (rnd, sdir) in enumerate(sorted(rounds.items())):
            rows = _read_csv(sdir / "records.csv")
            combos = [(split_skills(r.get("skills", "")), (r.get("topic") or "").strip()) for r in rows]
            if first is None:
                first = combos
            elif combos[:len(first)] != first[:len(combos)]:
                raise SkillmixError(f"round r{rnd} does not hold the same combinations as the first "
                                    f"round (seed {seed}, k={k}, student {student})",
                                    file=str(sdir / "records.csv"))
            graded = []
            for gdir in sorted((sdir / "graded").glob("by_*")) if (sdir / "graded").is_dir() else []:
                m = GRADED_DIR.match(gdir.name)
                if not m or not (gdir / "records.csv").exists():
                    continue
                if m["col"] != "1":
                    skipped += 1
                    continue
                graders.setdefault(m["grader"], {"methods": [], "rounds": set()})
                graders[m["grader"]]["rounds"].add(int(m["round"] or 1))
                graded.append((m["grader"], int(m["round"] or 1) - 1, m["prompt"],
                               _read_csv(gdir / "records.csv")))
            for i, row in enumerate(rows):
                skills, topic = combos[i]
                if len(skills) != k:
                    raise SkillmixError(f"row {i + 2}: {len(skills)} skills where the folder says k={k}",
                                        file=str(sdir / "records.csv"))
                user, assistant = _turns(row)
                conversation = [{"role": role, "content": row.get(f"{col}_{t}") or ""}
                                for t in (0, 1) for role, col in (("user", user), ("assistant", assistant))]
                text = (row.get("text_1") or "").strip()
                gradings = []
                for grader, rnd_g, folder_prompt, grows in graded:
                    if i >= len(grows):
                        continue
                    g = grows[i]
                    reply = g.get("assistant_0") or g.get("[/INST]_0") or ""
                    prompt = g.get("user_0") or g.get("[INST]_0") or ""
                    method = method_of(prompt, folder_prompt)
                    graders[grader]["methods"].append(method)
                    pts, status, total, parse = _points(reply, g.get("points_0", ""), skills,
                                                        topic, k, method)
                    gradings.append(Grading(grader=grader, method=method, round=rnd_g,
                                            prompt=prompt, raw_reply=reply, points=pts,
                                            status=status, stated_total=total, parse=parse))
                comb = Combination(skills=skills, topic=topic, k=k, setting=setting, index=base + i)
                rec = TextRecord(id=record_id("eval", setting, k, base + i, g_round, student=student),
                                 stage="eval", study=name, model=f"reference:{student}",
                                 student=student, combination=comb, generation_round=g_round,
                                 sampling={"source": str(sdir.relative_to(folder))},
                                 conversation=conversation, answer=text,
                                 extraction_rule="reference_text_1", gradings=gradings,
                                 status="ok")
                records.append(rec)
        offsets[(student, k)] = base + len(first or [])
        n_rows = max(n_rows, offsets[(student, k)])

    tree = {"name": name, "output_dir": str(out),
            "description": f"imported from the Skill-Mix reference results in {folder}",
            "scoring": {"preset": scoring},
            "evaluation": {
                "students": [{"name": s, "model": {"spec": f"openai-compatible:reference-{s}"}}
                             for s in students],
                "settings": [setting], "ks": sorted(ks), "n_combinations": max(1, n_rows),
                "generation_rounds": n_rounds,
                # A grader asked with both prompts is listed with the one it used most; every
                # grading keeps its own method, and the tables show it per student.
                "graders": [{"spec": f"openai-compatible:{g}", "name": g,
                             "method": max(set(v["methods"]) or {"table"}, key=v["methods"].count),
                             "rounds": max(v["rounds"])} for g, v in graders.items()]
                or [{"spec": "openai-compatible:none", "name": "none"}]}}
    cfg = StudyConfig.model_validate(tree)
    for rec in records:
        rec.derived = score(rec, cfg.scoring)        # every grading counts: all were imported
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "eval" / "records.jsonl"
    for old in (store_path, out / "eval" / IMPORTED):
        if old.exists():
            old.unlink()               # an import is a snapshot of the folder: write it anew
    RecordStore(store_path).append(records)
    (out / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    # Tells write_metric_tables that these records are imported (no config draws them).
    (out / "eval" / IMPORTED).write_text(json.dumps({
        "source": str(folder.resolve()), "texts": len(records), "students": students,
        "graders": sorted(graders), "skipped_text_0_gradings": skipped}, indent=2) + "\n")
    paths = {"records": store_path, "config": out / "config.yaml"}
    paths.update(write_metric_tables(cfg))
    print(f"imported {plural(len(records), 'text')} of {plural(len(students), 'student')}, "
          f"{plural(sum(len(r.gradings) for r in records), 'grading')} by "
          f"{plural(len(graders), 'grader')}"
          + (f"; {plural(skipped, 'graded folder')} of text_0 skipped" if skipped else ""))
    print(f"scored with the {scoring!r} scoring preset; {paths['metrics']}:")
    print(metric_table(paths["metrics"]))
    return paths


def metric_table(path: Path) -> str:
    """The metric table of `metrics.csv` as text: per student, setting, k and grader, the three
    metrics, each "mean [95% interval]" (`numbers.row_estimate`), over how many combinations,
    and the unreadable gradings."""
    import pandas as pd  # heavy: only for printing the table

    df = pd.read_csv(path)
    if df.empty:
        return "(no graded text)"
    cols = ["student", "setting", "k", "grader", "grader_method", "n_combinations"]
    table = df[cols].copy()
    for metric in ("ratio_full_marks", "ratio_all_skills", "skills_fraction"):
        table[metric] = [row_estimate(r, metric, digits=3, with_n=False, with_sem=False)
                         for r in df.to_dict("records")]
    table["n_parse_failures"] = df["n_parse_failures"]
    return table.to_string(index=False)
