"""The public API: `import skillmix_utils as sm` is instant (no torch, no pandas, no SDK), every
name resolves to a documented function, and the README's example runs as printed."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import skillmix_utils as sm

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_and_has_a_docstring():
    assert len(sm.__all__) >= 12
    for name in sm.__all__:
        obj = getattr(sm, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name


def test_import_is_light():
    code = ("import sys, skillmix_utils; heavy = [m for m in ('torch', 'pandas', 'transformers', "
            "'openai', 'anthropic') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "[]"


def test_readme_example_runs(monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- api-example:start -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 12
    monkeypatch.chdir(ROOT)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "ok [1.0, 1.0, 1.0, 1.0, 1.0] 1.0" in out
    assert "dry run (nothing is written)" in out
