"""The two-turn writing step shared by data generation (teacher) and evaluation (students).

Turn 1 (docs/protocol.md §3) goes out for all pending items of a chunk in one batched `chat` call, then
turn 2 with each model's first reply; the text that counts is extracted from the second reply.
Each record is appended to the store as soon as its text exists, so a killed run loses at most
one chunk, and the llm cache makes redoing that chunk free.

Generation round g sends seed `round_seed(spec, g)`: rounds are independent samples of the same
combinations, and a re-run of round g asks exactly the same request again (a cache hit).
A model with a `system_message` gets it first in both requests (`with_system`); the record's
conversation keeps the four turns (the training format) and `sampling` names the message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from skillmix_utils.core import prompts
from skillmix_utils.core.answers import extract_answer_with_rule
from skillmix_utils.core.config import ModelSpec
from skillmix_utils.core.identity import output_options, text_identity, writer_identity
from skillmix_utils.core.records import Combination, RecordStore, TextRecord, Usage
from skillmix_utils.stages.context import StageRun, round_seed


@dataclass(frozen=True)
class Pending:
    """One text to write: its record id, combination and generation round."""
    id: str
    combination: Combination
    generation_round: int = 0


class Writer:
    """Who writes and how: the backend spec (`spec`), the label stored in records (`model`),
    the adapter folder, the weights fingerprint and how the model is made (`made`,
    `identity.writer_identity`, read once). `identity(p)` is the identity of the text this
    writer would make for pending item `p` (`identity.text_identity`)."""

    def __init__(self, spec: ModelSpec, catalog, *, model: str | None = None,
                 adapter: str | None = None, weights: str | None = None):
        self.spec, self.catalog = spec, catalog
        self.model, self.adapter, self.weights = model or spec.spec, adapter, weights
        self.made = writer_identity(spec, adapter)

    def turns(self, p: Pending) -> tuple[str, str]:

        c = p.combination
        return (prompts.generation_turn1([self.catalog.skill(s) for s in c.skills], c.topic),
                prompts.generation_turn2(c.k))

    def identity(self, p: Pending) -> str:

        return text_identity(self.model, self.made, self.spec,
                             round_seed(self.spec, p.generation_round), *self.turns(p))


def with_system(spec: ModelSpec, messages: list[dict]) -> list[dict]:
    """`messages` as sent to `spec`'s model: its `system_message` first, when it has one.

    >>> with_system(ModelSpec(spec="openai:x", system_message="Be kind."), [{"role": "user", "content": "Hi"}])
    [{'role': 'system', 'content': 'Be kind.'}, {'role': 'user', 'content': 'Hi'}]
    """
    if spec.system_message is None:
        return messages
    return [{"role": "system", "content": spec.system_message}, *messages]


def pending_items(items: Iterable[Pending], existing: dict[str, TextRecord],
                  writer: Writer | None = None) -> list[Pending]:
    """The items to write: those with no successful record yet (missing or failed ones are
    redone) and, when `writer` is given, those whose stored text was made otherwise (another
    model or weights, other sampling settings, another prompt or catalog entry: its identity
    differs). Their new versions replace the old ones, gradings included."""
    def done(p: Pending) -> bool:
        r = existing.get(p.id)
        return (r is not None and r.status == "ok"
                and (writer is None or r.identity == writer.identity(p)))
    return [p for p in items if not done(p)]


def written_by_others(items: Iterable[Pending], existing: dict[str, TextRecord],
                      writer: Writer) -> int:
    """How many of `items` have a successful text made otherwise than `writer` would make it."""
    return sum(1 for p in items if p.id in existing and existing[p.id].status == "ok"
               and existing[p.id].identity != writer.identity(p))


def _usage(*results) -> Usage:
    results = [r for r in results if r is not None]
    return Usage(input_tokens=sum(r.input_tokens or 0 for r in results),
                 output_tokens=sum(r.output_tokens or 0 for r in results),
                 cost_usd=sum(r.cost_usd or 0.0 for r in results),
                 cached=bool(results) and all(r.cached for r in results))


def generate_texts(run: StageRun, spec: ModelSpec, items: list[Pending], catalog,
                   store: RecordStore, *, stage: str, student: str | None = None,
                   model_label: str | None = None, adapter: str | None = None,
                   chunk_size: int | None = None, weights: str | None = None,
                   on_chunk: Callable[[list[TextRecord]], None] | None = None) -> list[TextRecord]:
    """Write a text for each pending item and append its record; returns the new records.

    Example: ``generate_texts(run, cfg.data.teacher, items, catalog, store, stage="datagen")``.
    Raises `BudgetExhausted` after saving the chunk in which the budget ran out.
    """


    writer = Writer(spec, catalog, model=model_label, adapter=adapter, weights=weights)
    backend = run.backend(spec, adapter=adapter)
    chunk_size = chunk_size or run.chunk_size
    made: list[TextRecord] = []
    # Counted in turns (two per text) so that a chunk shows progress halfway through.
    phase = run.progress.phase(f"{'student ' + student if student else stage + ' ' + spec.spec}: write",
                               2 * len(items), unit="turns")
    by_round: dict[int, list[Pending]] = {}
    for p in items:
        by_round.setdefault(p.generation_round, []).append(p)
    for g in sorted(by_round):
        seed = round_seed(spec, g)
        params = dict(temperature=spec.temperature, max_tokens=spec.max_tokens, n=1, seed=seed)
        todo = by_round[g]
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            turns = [writer.turns(p) for p in chunk]
            turn1, turn2 = [t[0] for t in turns], [t[1] for t in turns]
            first = backend.chat([with_system(spec, [{"role": "user", "content": t}]) for t in turn1],
                                 **params)
            run.progress.advance(len(chunk), failed=sum(not r.ok for r in first), index=phase)
            second_idx = [i for i, r in enumerate(first) if r.ok]
            convs2 = [with_system(spec, [{"role": "user", "content": turn1[i]},
                                         {"role": "assistant", "content": first[i].text or ""},
                                         {"role": "user", "content": turn2[i]}])
                      for i in second_idx]
            second = dict(zip(second_idx, backend.chat(convs2, **params) if convs2 else []))
            recs = []
            for i, p in enumerate(chunk):
                r1, r2 = first[i], second.get(i)
                rec = TextRecord(
                    id=p.id, stage=stage, study=run.cfg.name, model=model_label or spec.spec,
                    adapter=adapter, weights=weights, student=student, combination=p.combination,
                    generation_round=g, usage=_usage(r1, r2),
                    sampling={**params, "options": output_options(spec.options),
                              "prompt_version": prompts.PROMPT_VERSION,
                              **({"system_message": spec.system_message}
                                 if spec.system_message is not None else {})},
                    identity=text_identity(writer.model, writer.made, spec, seed, turn1[i], turn2[i]))
                rec.conversation = [{"role": "user", "content": turn1[i]}]
                if not r1.ok:
                    rec.status, rec.error = "error", f"turn 1: {r1.error}"
                else:
                    rec.conversation.append({"role": "assistant", "content": r1.text or ""})
                    rec.finish_reasons.append(r1.finish_reason)
                    rec.conversation.append({"role": "user", "content": turn2[i]})
                    if not r2.ok:
                        rec.status, rec.error = "error", f"turn 2: {r2.error}"
                    else:
                        rec.conversation.append({"role": "assistant", "content": r2.text or ""})
                        rec.finish_reasons.append(r2.finish_reason)
                        extraction = extract_answer_with_rule(r2.text or "", spec.answer_rule)
                        rec.answer, rec.extraction_rule = extraction.text, extraction.rule
                recs.append(rec)
            store.append(recs)
            made.extend(recs)
            if on_chunk:
                on_chunk(recs)
            run.progress.advance(len(chunk), failed=sum(r.status != "ok" and (r.error or "").startswith("turn 2")
                                                        for r in recs),
                                 usd=sum(r.cost_usd or 0.0 for r in list(first) + list(second.values())
                                         if not r.cached), index=phase)
            run.stop_if_spent(list(first) + list(second.values()))
    return made
