"""Nothing a run writes (cache, results, logs, progress output) contains the API key."""
from __future__ import annotations

import logging

import pytest

from skillmix_utils.core.redact import redact

from .conftest import CONVS, make


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_key_never_written(provider, server, keys, tmp_path, caplog, capfd):
    key = keys[provider]
    server.api_key = key
    caplog.set_level(logging.DEBUG)  # SDK and httpx debug logs included
    # 500s whose bodies echo the Authorization / x-api-key headers; with no retries they
    # become stored error strings.
    server.fault_script = ["500"] * 5 + ["malformed"] * 3
    be = make(provider, server, tmp_path, max_retries=0, malformed_retries=0, concurrency=1,
              progress=True)
    res = be.chat(CONVS[:12], max_tokens=10) + be.chat(CONVS[:12], max_tokens=10)
    assert any(not r.ok for r in res) and any(r.ok for r in res)
    assert any("***" in (r.error or "") for r in res)  # the echoed header was redacted
    assert key in server.auth_seen  # the key was really used
    written = [p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert written and "Request" in caplog.text  # SDK logs were captured too
    out, err = capfd.readouterr()
    haystacks = [*written, repr(res).encode(), caplog.text.encode(), out.encode(), err.encode(),
                 repr(vars(be).get("cache")).encode()]
    for hay in haystacks:
        assert key.encode() not in hay
        assert key[8:].encode() not in hay  # not even its tail


def test_redact_patterns():
    assert "abc123" not in redact("x-api-key: abc123abc123")
    assert redact("Authorization: Bearer sk-xyz-123456789") == "Authorization: ***"
    assert redact("nothing here") == "nothing here"
