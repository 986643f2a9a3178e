"""The openai and anthropic backends through the real SDKs against the loopback server."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm import estimate_cost, get_backend

from .conftest import CONVS, make

PROVIDERS = ["openai", "anthropic"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_roundtrip_order_params_and_cache(provider, server, keys, tmp_path):
    be = make(provider, server, tmp_path)
    res = be.chat(CONVS[:10], temperature=0.3, max_tokens=20, seed=7)
    assert [r.ok for r in res] == [True] * 10
    assert all(f"Question number {i}?" in r.text for i, r in enumerate(res))
    r = res[0]
    assert r.params == {"temperature": 0.3, "max_tokens": 20, "n": 1, "seed": 7,
                        "model": be.spec}
    assert r.input_tokens > 0 and r.output_tokens > 0 and r.cost_usd > 0 and not r.cached
    assert be.spent_usd == pytest.approx(sum(x.cost_usd for x in res))
    sent = server.bodies[-1]
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 20
    if provider == "anthropic":  # system goes in system=, temperature through extra_body
        assert sent["system"] == "You are terse." and all(m["role"] != "system" for m in sent["messages"])
    else:
        assert sent["seed"] == 7 and sent["messages"][0]["role"] == "system"
    before = server.attempts
    again = be.chat(CONVS[:10], temperature=0.3, max_tokens=20, seed=7)
    assert server.attempts == before and all(x.cached for x in again)
    assert [x.texts for x in again] == [x.texts for x in res]
    # any change of a sampling parameter is a new request
    be.chat(CONVS[:1], temperature=0.4, max_tokens=20, seed=7)
    assert server.attempts == before + 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_n_samples_are_cache_entries(provider, server, keys, tmp_path):
    be = make(provider, server, tmp_path)
    r2 = be.chat(CONVS[:2], temperature=1.0, max_tokens=10, n=2, seed=1)
    assert server.attempts == 4 and all(len(r.texts) == 2 for r in r2)
    r3 = be.chat(CONVS[:2], temperature=1.0, max_tokens=10, n=3, seed=1)
    assert server.attempts == 6  # one new call per conversation
    assert [r.texts[:2] for r in r3] == [r.texts for r in r2]
    assert not r3[0].cached and r3[0].params["n"] == 3


def test_use_cache_false_makes_every_call(server, keys, tmp_path):
    be = make("openai", server, tmp_path, use_cache=False)
    be.chat(CONVS[:3], max_tokens=5)
    be.chat(CONVS[:3], max_tokens=5)
    assert server.attempts == 6
    assert not (tmp_path / "cache").exists()


def test_openai_compatible_and_base_url_env(server, keys, tmp_path, monkeypatch):
    with pytest.raises(SkillmixError, match="base_url"):
        get_backend("openai-compatible:llama", cache_dir=tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.delenv("OPENAI_API_KEY")
    be = get_backend("openai-compatible:llama", cache_dir=tmp_path, progress=False)
    assert be.chat(CONVS[:1], max_tokens=5)[0].ok  # no key needed for a local server
    monkeypatch.setenv("OPENAI_API_KEY", keys["openai"])
    be = get_backend("openai:gpt-4o", cache_dir=tmp_path, progress=False)  # env base URL
    assert be.chat(CONVS[:1], max_tokens=5)[0].ok and server.attempts == 2


def test_missing_keys_and_bad_specs_fail_at_get_backend(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(SkillmixError, match="OPENAI_API_KEY"):
        get_backend("openai:gpt-4o", cache_dir=tmp_path)
    with pytest.raises(SkillmixError, match="ANTHROPIC_API_KEY"):
        get_backend("anthropic:claude-3-opus-20240229", cache_dir=tmp_path)
    for bad in ("gemini:pro", "openai", "hf:"):
        with pytest.raises(SkillmixError, match="unknown backend spec"):
            get_backend(bad)


def test_budget_needs_a_price(server, keys, tmp_path):
    make("openai", server, tmp_path, budget_usd=1.0)  # listed price: fine
    with pytest.raises(SkillmixError, match="no price"):
        get_backend("openai:secret-model", base_url=server.openai_url, budget_usd=1, cache_dir=tmp_path)
    # a price can be given for unlisted models
    get_backend("openai:secret-model", base_url=server.openai_url, budget_usd=1, cache_dir=tmp_path,
       prices={"secret-model": {"input": 1, "output": 2}})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_budget_cap_stops_cleanly(provider, server, keys, tmp_path):
    model = "gpt-4o-mini" if provider == "openai" else "claude-3-haiku-20240307"
    dear = {model: {"input": 1e6, "output": 1e6}}  # $1 per token
    be = make(provider, server, tmp_path, budget_usd=60.0, prices=dear, concurrency=1)
    res = be.chat(CONVS[:20], temperature=0, max_tokens=10)
    done = [r for r in res if r.ok]
    assert 0 < len(done) < 20 and server.successes == len(done)
    assert all(r.error == "budget_exceeded" for r in res[len(done):])
    assert be.spent_usd <= 60.0
    more = make(provider, server, tmp_path, budget_usd=1e9, prices=dear)
    res2 = more.chat(CONVS[:20], temperature=0, max_tokens=10)
    assert all(r.ok for r in res2) and server.successes == 20
    assert [r.cached for r in res2] == [True] * len(done) + [False] * (20 - len(done))


def test_permanent_failure_is_a_result_not_an_exception(server, keys, tmp_path):
    server.fault_script = ["500"] * 3 + ["malformed"] * 4
    be = make("openai", server, tmp_path, max_retries=2, malformed_retries=3, concurrency=1)
    res = be.chat(CONVS[:2], max_tokens=5)
    assert len(res) == 2 and server.attempts == 7
    assert res[0].error.startswith("InternalServerError") and res[0].texts == []
    assert "JSONDecodeError" in res[1].error or "Malformed" in res[1].error
    again = be.chat(CONVS[:2], max_tokens=5)  # failures are not cached: they are retried
    assert all(r.ok for r in again)


def test_chat_inside_running_event_loop(server, keys, tmp_path):
    be = make("anthropic", server, tmp_path)

    async def notebook_cell():
        sync = be.chat(CONVS[:3], max_tokens=5)  # what a Jupyter cell does
        asyn = await be.achat(CONVS[3:5], max_tokens=5)
        return sync + asyn

    res = asyncio.run(notebook_cell())
    assert [r.ok for r in res] == [True] * 5


def test_rate_limit_rpm_waits():
    import time

    from skillmix_utils.llm.limits import RateLimits

    async def go():
        lim = RateLimits(rpm=600, burst=1.0)  # 10 at once, then one every 0.1 s
        t = time.monotonic()
        for _ in range(12):
            await lim.acquire(10)
        return time.monotonic() - t

    assert 0.15 <= asyncio.run(go()) < 1.0


def test_estimate_cost():
    assert estimate_cost("openai:gpt-4o", 100, 1000, 500) == pytest.approx(0.75)
    assert estimate_cost("openai:gpt-4o", 100, 1000, 500, batch=True) == pytest.approx(0.375)
    assert estimate_cost("anthropic:claude-unknown-9", 1, 1, 1) is None


def test_import_pulls_no_provider():
    code = ("import sys, skillmix_utils.llm; "
            "print([m for m in ('torch', 'openai', 'anthropic', 'transformers', 'vllm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_conversations_are_input_errors(server, keys, tmp_path):
    be = make("openai", server, tmp_path)
    for bad in ("hello", [[{"role": "robot", "content": "x"}]], [[]], [[{"role": "user"}]]):
        with pytest.raises(SkillmixError):
            be.chat(bad)
    assert server.attempts == 0


def test_duplicate_conversations_are_requested_once(server, keys, tmp_path):
    be = make("anthropic", server, tmp_path)
    res = be.chat([CONVS[0], CONVS[1], CONVS[0]], temperature=0, max_tokens=5)
    assert server.attempts == 2 and res[0].texts == res[2].texts and all(r.ok for r in res)
