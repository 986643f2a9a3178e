"""The open catalog, its loaders and validation (docs/protocol.md §1), and `skillmix catalog`."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

from skillmix_utils.cli import main
from skillmix_utils.core.catalog import (
    Catalog,
    Skill,
    Topic,
    load_catalog,
    parse_skills_csv,
    parse_skills_yaml,
    parse_topics_text,
    split_topics,
    summary_table,
)
from skillmix_utils.core.errors import SkillmixError

DATA = Path(__file__).resolve().parents[1] / "data" / "catalog"

PUBLISHED_SKILLS = {
    "self serving bias": "reasoning",
    "accident (fallacy)": "rhetorical",
    "complex question (loaded question with implicit assumption)": "rhetorical",
    "red herring": "rhetorical",
    "metaphor": "literary",
    "spatial reasoning": "logical",
    "modus ponens": "logical",
    "statistical syllogism": "logical",
    "emotional self regulation": "theory of the mind",
    "folk physics (common knowledge physics)": "physical knowledge",
}
PUBLISHED_TOPICS = ["Sewing", "Dueling", "The Ottoman Empire", "Urbanism", "Beekeeping",
                    "Survivalism", "Guerilla warfare", "Triathlons", "Gardening", "Knots"]
HELD_OUT_CATEGORIES = {"reasoning", "logical", "theory of the mind", "pragmatics",
                       "common sense", "physical knowledge"}


def _builtin_text(name: str) -> str:
    return resources.files("skillmix_utils").joinpath("data", "catalog", name).read_text("utf-8")


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog()


# --- the built-in catalog -------------------------------------------------------------------

def test_builtin_counts_and_split(builtin):
    assert len(builtin.skills) == 101 and len(builtin.topics) == 100
    train, held = builtin.skills_in("train"), builtin.skills_in("held_out")
    assert len(train) == 53 and len(held) == 48
    assert {s.category for s in train} == {"literary", "rhetorical"}
    assert {s.category for s in held} == HELD_OUT_CATEGORIES     # every category present
    assert len(builtin.topics_in("train")) == 50 and len(builtin.topics_in("held_out")) == 50
    assert len(builtin.skills_in("all")) == 101 and len(builtin.topics_in("all")) == 100


def test_builtin_contains_published_skills_and_topics(builtin):
    for name, category in PUBLISHED_SKILLS.items():
        assert builtin.skill(name).name == name            # exact spelling
        assert builtin.skill(name).category == category
    names = [t.name for t in builtin.topics]
    assert set(PUBLISHED_TOPICS) <= set(names)


def test_builtin_entries_are_complete_and_distinct(builtin):
    keys = [s.name.casefold() for s in builtin.skills]
    assert len(set(keys)) == len(keys)
    assert len({t.name.casefold() for t in builtin.topics}) == 100
    for s in builtin.skills:
        assert s.name == s.name.strip() and s.split in ("train", "held_out")
        # one or two sentences of definition, one short example
        assert 20 <= len(s.definition) <= 220, s.name
        assert 10 <= len(s.example) <= 160, s.name
        assert s.definition.endswith("."), s.name


def test_builtin_files_carry_licence_provenance_and_rule():
    for name in ("skills.yaml", "topics.yaml"):
        head = _builtin_text(name)[:1500]
        assert "Licence: Apache-2.0" in head and "Provenance:" in head
    skills = yaml.safe_load(_builtin_text("skills.yaml"))
    assert skills["split"] == {"rule": "by_category", "train_categories": ["literary", "rhetorical"]}


def test_builtin_topic_split_recomputes_from_recorded_seed():
    """Re-derive the 50/50 draw from the seed and method written in topics.yaml, independently
    of the library, and find the split stored per topic."""
    data = yaml.safe_load(_builtin_text("topics.yaml"))
    assert data["split"]["rule"] == "seeded_draw" and data["split"]["method"] == "sha256_rank"
    seed = data["split"]["seed"]
    names = [t["name"] for t in data["topics"]]
    ranked = sorted(names, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    expected = {t: "train" if t in ranked[:50] else "held_out" for t in names}
    assert {t["name"]: t["split"] for t in data["topics"]} == expected
    assert split_topics(names, seed) == expected
    assert load_catalog().topic_seed == seed


def test_catalog_helpers(builtin):
    assert builtin.skill("  Metaphor ").name == "metaphor"
    with pytest.raises(SkillmixError, match="no skill named 'nonsense'"):
        builtin.skill("nonsense")
    with pytest.raises(SkillmixError) as err:
        builtin.skills_in("test")
    assert err.value.field == "pool"
    assert builtin.categories[:2] == ("literary", "rhetorical")
    with pytest.raises(AttributeError):
        builtin.skills[0].name = "x"                         # frozen
    assert isinstance(builtin.skills, tuple) and isinstance(builtin.topics, tuple)


def test_summary_table(builtin):
    table = summary_table(builtin)
    lines = table.splitlines()
    assert "catalog: built-in" in lines[0]
    row = {ln.split("  ")[0].strip(): ln.split()[-3:] for ln in lines if "  " in ln}
    assert row["literary"] == ["25", "0", "25"]
    assert row["theory of the mind"] == ["0", "7", "7"]
    assert row["total"] == ["53", "48", "101"]
    assert row["topics"] == ["50", "50", "100"]


# --- reference and user formats --------------------------------------------------------------

def test_skillmix_csv_drops_statuses_strips_names_and_splits_by_category():
    cat = load_catalog(skills=DATA / "skillmix_skills.csv", topics=DATA / "skillmix_topics.txt")
    assert [(s.name, s.split) for s in cat.skills] == [
        ("metaphor", "train"), ("simile", "train"), ("red herring", "train"),
        ("modus ponens", "held_out"), ("false belief", "held_out")]
    assert cat.skill("metaphor").definition == "Describes one thing as another, to suggest a likeness."
    assert "skillmix_skills.csv" in cat.source and "skillmix_topics.txt" in cat.source


def test_skillmix_csv_with_other_train_categories():
    cat = load_catalog(skills=DATA / "skillmix_skills.csv", train_categories=["logical"])
    assert [s.name for s in cat.skills_in("train")] == ["modus ponens"]
    with pytest.raises(SkillmixError) as err:
        load_catalog(skills=DATA / "skillmix_skills.csv", train_categories=["logic"])
    assert err.value.field == "train_categories"


def test_topics_text_seeded_draw():
    cat = load_catalog(topics=DATA / "skillmix_topics.txt")
    assert [t.name for t in cat.topics] == PUBLISHED_TOPICS           # blank lines, spaces gone
    assert len(cat.topics_in("train")) == 5 and cat.topic_seed == 0
    assert "seed 0" in cat.topic_split
    other = load_catalog(topics=DATA / "skillmix_topics.txt", topic_seed=3)
    assert other.topic_seed == 3 and len(other.topics_in("train")) == 5
    assert [t.split for t in other.topics] != [t.split for t in cat.topics]
    # the draw depends on the names only, not on their order in the file
    assert split_topics(PUBLISHED_TOPICS[::-1], 0) == split_topics(PUBLISHED_TOPICS, 0)
    # odd counts: train gets the smaller half
    assert list(split_topics(["a", "b", "c"], 0).values()).count("train") == 1


def test_user_yaml_and_simple_csv():
    cat = load_catalog(skills=DATA / "good_skills.yaml", topics=DATA / "good_topics.yaml")
    assert [s.split for s in cat.skills] == ["train", "held_out", "train", "held_out"]
    assert cat.skill_split.startswith("explicit") and cat.topic_seed == 7
    assert len(cat.topics_in("train")) == 3
    simple = load_catalog(skills=DATA / "simple_skills.csv")
    assert [s.split for s in simple.skills] == ["train", "train", "held_out"]
    explicit = load_catalog(skills=DATA / "simple_skills_split.csv")
    assert [s.split for s in explicit.skills] == ["held_out", "train", "train"]
    assert isinstance(explicit.skills[0], Skill) and isinstance(explicit.topics[0], Topic)


def test_by_category_rule_with_agreeing_split_is_accepted():
    skills, rule = parse_skills_yaml(
        "split: {rule: by_category, train_categories: [Literary]}\n"
        "skills: [{name: a, category: literary, definition: d., example: e., split: train}]\n")
    assert skills[0].split == "train" and "Literary" in rule


# --- validation: one SkillmixError naming file and field ------------------------------------

@pytest.mark.parametrize("fixture, field, message", [
    ("bad_duplicate.yaml", "skills[2].name", "duplicate skill name 'metaphor' (same as skills[0].name)"),
    ("bad_unknown_split.yaml", "skills[1].split", "unknown split 'test'"),
    ("bad_empty_definition.yaml", "skills[1].definition", "empty definition"),
    ("bad_empty_name.yaml", "skills[0].name", "empty name"),
    ("bad_rule.yaml", "split.rule", "unknown split rule 'by_vibes'"),
    ("bad_not_yaml.yaml", None, "not valid YAML at line 2"),
    ("bad_columns.csv", "header", "wrong columns: unexpected notes"),
    ("bad_duplicate.csv", "line 3, name", "duplicate skill name 'METAPHOR'"),
    ("missing.yaml", None, "no such file"),
])
def test_bad_skills_files(fixture, field, message):
    path = DATA / fixture
    with pytest.raises(SkillmixError) as err:
        load_catalog(skills=path)
    assert err.value.file == str(path) and err.value.field == field
    assert message in err.value.reason
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("fixture, field, message", [
    ("bad_topics_split.yaml", "topics[0].split", "disagrees with the seeded draw (seed 0)"),
    ("bad_duplicate_topics.txt", "line 3", "duplicate topic name 'sewing' (same as line 1)"),
    ("missing_topics.txt", None, "no such file"),
])
def test_bad_topics_files(fixture, field, message):
    path = DATA / fixture
    with pytest.raises(SkillmixError) as err:
        load_catalog(topics=path)
    assert err.value.file == str(path) and err.value.field == field and message in err.value.reason


@pytest.mark.parametrize("text, field, message", [
    ("skills: []", "split", "missing split rule"),
    ("[1, 2]", None, "must be a YAML mapping"),
    ("split: {rule: explicit}\nskills: [{name: a, category: c, definition: d, example: e}]",
     "skills[0].split", "missing split"),
    ("split: {rule: by_category, train_categories: [c]}\nskills: [{name: a, category: c, "
     "definition: d, example: e, split: held_out}]", "skills[0].split", "disagrees"),
    ("split: {rule: by_category}\nskills: [{name: a}]", "split.train_categories", "non-empty list"),
    ("split: {rule: explicit}\nskills: [{name: a, category: c, definition: d, example: e, "
     "split: train, colour: red}]", "skills[0].colour", "unknown key"),
    ("split: {rule: explicit}\nskils: []", "skils", "unknown key"),
    ("split: {rule: explicit}\nskills: [{name: 1984, category: c, definition: d, example: e, "
     "split: train}]", "skills[0].name", "must be text"),
    ("split: {rule: explicit}\nskills: [{name: a, category: c, definition: d, split: train}]",
     "skills[0].example", "empty example"),
])
def test_bad_yaml_texts(text, field, message):
    with pytest.raises(SkillmixError) as err:
        parse_skills_yaml(text, "u.yaml")
    assert err.value.file == "u.yaml" and err.value.field == field and message in err.value.reason


@pytest.mark.parametrize("text, field, message", [
    ("", "header", "empty file"),
    ("a,b,c\n1,2,3\n", "header", "wrong columns a,b,c"),
    ("name,category,definition\nx,y,z\n", "header", "missing example"),
    ("name,category,definition,example,name\n", "header", "repeated name"),
    ("name,category,definition,example\nx,y,z\n", "line 2", "3 fields where the header has 4"),
    ("name,category,definition,example,split\nx,y,z,w,\n", "line 2, split", "missing split"),
    ("name,category,definition,example,split\nx,y,z,w,dev\n", "line 2, split", "unknown split"),
    ("category,skill,definition,example,comments,status,added by\nc,s,,e,,,\n",
     "line 2, definition", "empty definition"),
    ("category,skill,definition,example,comments,status,added by\nc, ,d,e,,,\n",
     "line 2, skill", "empty name"),
    ("category,skill,definition,example\nc,s,d,e\nc,s,d,e,,remove,\n", None, None),  # see below
])
def test_bad_csv_texts(text, field, message):
    if message is None:          # a row with more fields than the header
        with pytest.raises(SkillmixError, match="7 fields where the header has 4"):
            parse_skills_csv(text, "u.csv")
        return
    with pytest.raises(SkillmixError) as err:
        parse_skills_csv(text, "u.csv")
    assert err.value.file == "u.csv" and err.value.field == field and message in err.value.reason


def test_file_type_and_reading_errors(tmp_path):
    (tmp_path / "skills.txt").write_text("metaphor\n")
    with pytest.raises(SkillmixError, match="unknown skills file type '.txt'"):
        load_catalog(skills=tmp_path / "skills.txt")
    with pytest.raises(SkillmixError, match="is a folder"):
        load_catalog(skills=tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"name,category\n\xff\xfe\x00\n")
    with pytest.raises(SkillmixError, match="not UTF-8"):
        load_catalog(skills=tmp_path / "bin.csv")
    (tmp_path / "t.csv").write_text("topic\nSewing\n")
    with pytest.raises(SkillmixError, match="topics are a .yaml file or plain text"):
        load_catalog(topics=tmp_path / "t.csv")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(SkillmixError, match="no topics"):
        load_catalog(topics=tmp_path / "empty.txt")
    with pytest.raises(SkillmixError, match="this is a topics file"):
        load_catalog(skills=DATA / "good_topics.yaml")
    with pytest.raises(SkillmixError, match="this is a skills file"):
        load_catalog(topics=DATA / "good_skills.yaml")
    with pytest.raises(SkillmixError, match="train_categories applies to CSV"):
        load_catalog(train_categories=["literary"])
    with pytest.raises(SkillmixError, match="does not apply: the file has a split column"):
        load_catalog(skills=DATA / "simple_skills_split.csv", train_categories=["literary"])


def test_parse_topics_text_matches_split_topics():
    topics, _, seed = parse_topics_text("\n".join(PUBLISHED_TOPICS), seed=5)
    assert seed == 5 and {t.name: t.split for t in topics} == split_topics(PUBLISHED_TOPICS, 5)


# --- the command line ------------------------------------------------------------------------

def test_cli_catalog_builtin(capsys):
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "physical knowledge" in out and "101" in out


def test_cli_catalog_bad_file_is_one_line_exit_2(capsys):
    assert main(["catalog", "--skills", str(DATA / "bad_empty_definition.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"skillmix: error: {DATA / 'bad_empty_definition.yaml'}: "
                   "skills[1].definition: empty definition")


def test_cli_catalog_subprocess_no_traceback():
    """End to end through the console entry point, as `skillmix catalog` runs it."""
    run = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "catalog", "--skills",
                          str(DATA / "bad_columns.csv")], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    ok = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "catalog", "--skills",
                         str(DATA / "skillmix_skills.csv"), "--topics",
                         str(DATA / "skillmix_topics.txt")], capture_output=True, text=True)
    assert ok.returncode == 0 and "total" in ok.stdout
