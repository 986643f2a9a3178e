"""Reading a study config's YAML strictly: a key given twice in one mapping is an error.

Plain YAML keeps the last of two equal keys without a word, so a second `data:` section or a
repeated `counts:` silently replaced the first (500 combinations planned instead of 2). The
loader here refuses it, naming both lines; merge keys (`<<: *base`) may still be overridden.
"""
from __future__ import annotations

import yaml

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.redact import redact


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that raises on a key repeated in one mapping (its own keys, not merged ones)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:          # an unhashable key: SafeLoader reports it itself
                    continue
                if first is not key_node.start_mark:
                    name = redact(str(key))[:60]
                    raise _DuplicateKey(problem=f"the key {name!r} is given twice in one mapping "
                                        f"(first at line {first.line + 1}); YAML would silently "
                                        "keep only the last", problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml(text: str, file) -> object:
    """Parse YAML `text` of `file`; invalid YAML or a repeated key raises SkillmixError naming
    the line.

    >>> load_yaml("a: 1\\nb: {c: 2}\\n", "s.yaml")
    {'a': 1, 'b': {'c': 2}}
    >>> load_yaml("data: 1\\nname: x\\ndata: 2\\n", "s.yaml")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: s.yaml: not valid YAML at line 3, column 1: the key 'data' is given twice in one mapping (first at line 1); YAML would silently keep only the last
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise SkillmixError(f"not valid YAML{at}: {getattr(exc, 'problem', None) or exc}",
                            file=str(file)) from None
