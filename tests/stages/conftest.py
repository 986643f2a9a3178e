"""Fixtures of the stage tests: a private llm cache, dummy API keys, the scripted server."""
from __future__ import annotations

import pytest

from .scripted import make_respond
from .scripted_server import ScriptedServer


@pytest.fixture
def api_env(tmp_path, monkeypatch):
    """Dummy keys and an empty cache for this test (no local model is loaded here)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def scripted_server():
    server = ScriptedServer(make_respond()).start()
    yield server
    server.stop()
