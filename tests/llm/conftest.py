"""Fixtures for the backend tests: a loopback fake server and API keys in the environment."""
from __future__ import annotations

import secrets

import pytest

from .fake_server import FakeServer

CONVS = [[{"role": "system", "content": "You are terse."},
          {"role": "user", "content": f"Question number {i}?"}] for i in range(100)]


@pytest.fixture
def server():
    srv = FakeServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def keys(monkeypatch):
    """Random API keys set in the environment (and the base URLs removed)."""
    k = {"openai": "sk-test-" + secrets.token_hex(12), "anthropic": "sk-ant-" + secrets.token_hex(12)}
    monkeypatch.setenv("OPENAI_API_KEY", k["openai"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", k["anthropic"])
    for var in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return k


def make(spec_kind: str, server, tmp_path, **options):
    """A backend of the given provider pointed at the fake server, with short timeouts."""
    from skillmix_utils.llm import get_backend

    spec = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-3-haiku-20240307",
            "openai-compatible": "openai-compatible:local-model"}[spec_kind]
    url = server.anthropic_url if spec_kind == "anthropic" else server.openai_url
    options.setdefault("cache_dir", tmp_path / "cache")
    options.setdefault("timeout", 2.0)
    options.setdefault("progress", False)
    return get_backend(spec, base_url=url, **options)
