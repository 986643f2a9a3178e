"""Reading and writing a study config: `load_study_config` (the one loader: CLI, runner, notebooks
and API) and the resolved `<out>/config.yaml`."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from pydantic import (
    ValidationError,
)

from skillmix_utils.core.config.study import StudyConfig
from skillmix_utils.core.errors import SkillmixError, writing
from skillmix_utils.core.provenance import CHECKOUT
from skillmix_utils.core.redact import find_credential
from skillmix_utils.core.strict_yaml import load_yaml


def _set_dotted(tree: dict, dotted: str, value, file: str) -> None:
    """Set `a.b.0.c` in a config tree; a path through a value or past a list's end is an error.

    >>> t = {"name": "x", "data": {"graders": [{"rounds": 3}]}}
    >>> _set_dotted(t, "data.graders.0.rounds", 1, "c.yaml"); t["data"]["graders"]
    [{'rounds': 1}]
    >>> _set_dotted(t, "name.sub", 1, "c.yaml")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: c.yaml: --set name.sub: name is a value ('x'), not a section with fields
    """
    node = tree
    keys = dotted.split(".")
    if not dotted or any(not k for k in keys):
        raise SkillmixError("an empty field name", file=file, field=f"--set {dotted}")
    for depth, key in enumerate(keys):
        here = ".".join(keys[:depth]) or "(top level)"
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.lstrip("-").isdigit():
                raise SkillmixError(f"{here} is a list: use a number, not {key!r}",
                                    file=file, field=f"--set {dotted}")
            i = int(key)
            if not -len(node) <= i < len(node):
                raise SkillmixError(f"{here} has {len(node)} entr{'y' if len(node) == 1 else 'ies'}"
                                    f" (0-{len(node) - 1}), no entry {i}",
                                    file=file, field=f"--set {dotted}")
            key = i
        elif isinstance(node, dict):
            if not last and (key not in node or node[key] is None):
                node[key] = {}
        else:
            raise SkillmixError(f"{here} is a value ({node!r}), not a section with fields",
                                file=file, field=f"--set {dotted}")
        if last:
            node[key] = value
        else:
            node = node[key]


def refuse_credentials(tree: dict, file: str) -> None:
    """Refuse a config holding anything that looks like a credential, naming the field: keys
    are read from the environment only, and a config is copied into outputs and notebooks."""
    found = find_credential(tree)
    if found:
        raise SkillmixError(found[1], file=file, field=found[0])


def _pydantic_message(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling against README.md, 'Study configs')"
    more = len(err.errors()) - 1
    return field, msg + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def load_study_config(path: str | Path, overrides: dict | None = None) -> StudyConfig:
    """Read and validate a study config; `overrides` maps dotted fields to values."""
    path = Path(path)
    if not path.exists():
        raise SkillmixError("no such study config file", file=str(path))
    if path.is_dir():
        raise SkillmixError("is a folder; give a study config YAML file", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SkillmixError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    tree = load_yaml(text, path) or {}
    if not isinstance(tree, dict):
        raise SkillmixError("a study config must be a mapping of fields", file=str(path))
    own_folder = _is_folders_own_config(path, tree, text)
    tree = copy.deepcopy(tree)
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value, str(path))
    refuse_credentials(tree, str(path))
    try:
        cfg = StudyConfig.model_validate(tree)
    except ValidationError as err:
        field, msg = _pydantic_message(err)
        raise SkillmixError(msg, file=str(path), field=field) from None
    # One rule for where a study writes, whoever loads it (CLI, runner, notebooks, API): a
    # relative output_dir, or the default outputs/<name>, is anchored at the config's project.
    out = cfg.out
    if not out.is_absolute():
        out = project_root(path.resolve().parent) / out
    refuse_output_dir(out, path, allow_own_folder=own_folder)
    return cfg.model_copy(update={"output_dir": str(out)})


RESOLVED_HEADER = "# skillmix: the resolved config of this output folder, rewritten by every run\n"


def _is_folders_own_config(path: Path, tree: dict, text: str) -> bool:
    """True for the config.yaml skillmix wrote into an output folder (the resolved config, or
    an import's): reading it back may name its own folder as output_dir."""
    if path.name != "config.yaml":
        return False
    raw = tree.get("output_dir")
    return text.startswith(RESOLVED_HEADER) or set(StudyConfig.model_fields) <= set(tree) or (
        isinstance(raw, str) and Path(raw).is_absolute()
        and Path(raw).resolve() == path.resolve().parent)


def users_config_in(out: Path) -> Path | None:
    """`<out>/config.yaml` when it is there and skillmix did not write it (a run would replace
    it with the resolved config), else None."""
    path = Path(out) / "config.yaml"
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        tree = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return path
    return None if isinstance(tree, dict) and _is_folders_own_config(path, tree, text) else path


def refuse_output_dir(out: Path, config: Path, allow_own_folder: bool = False) -> None:
    """A study's outputs stay in a folder of their own: refuse an output_dir that is, or holds,
    `/`, the home folder, the project root, skillmix's own checkout or the study file's folder (whose own files a
    run would overwrite: config.yaml, data/, ...); `allow_own_folder` for a config.yaml that
    skillmix wrote into its output folder."""
    out = Path(out).expanduser().resolve()
    here = Path(config).resolve().parent
    guarded = [("the home folder", Path.home()), ("the root folder", Path("/")),
               ("the skillmix checkout", CHECKOUT)]
    marked = project_root(here, marked_only=True)
    if marked is not None:         # not the current folder: a notebook may run inside `out`
        guarded.append(("the project root", marked))
    if not allow_own_folder:
        guarded.insert(0, ("the study file's folder", here))
    for what, folder in guarded:
        folder = folder.resolve()
        if out == folder or out in folder.parents:
            holds = "is" if out == folder else "holds"
            raise SkillmixError(f"{out} {holds} {what}; a study writes config.yaml, data/, eval/ "
                                "and more into its output folder, so it must be a folder of its "
                                "own (default outputs/<name>)", file=str(config),
                                field="output_dir")


def project_root(start: Path, marked_only: bool = False) -> Path | None:
    """The nearest folder at or above `start` holding pyproject.toml or .git, else the current
    folder (None with `marked_only`): where a study's relative `output_dir` (default
    `outputs/<name>`) lives."""
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return None if marked_only else Path.cwd()


def write_resolved_config(cfg: StudyConfig) -> Path:
    """Write the resolved config (defaults filled in, output_dir absolute) to `<out>/config.yaml`:
    what the stages, the runner and the report read back as the study's config."""
    path = cfg.out / "config.yaml"
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tree = cfg.model_dump(mode="json")
        path.write_text(RESOLVED_HEADER + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    return path
