"""What goes into a backend and comes out of it: conversations, jobs, replies, results."""
from __future__ import annotations

from dataclasses import dataclass, field

from skillmix_utils.core.errors import SkillmixError

BUDGET_EXCEEDED = "budget_exceeded"

# Each provider's word for why a reply ended, as one vocabulary: "stop" (the model ended it),
# "length" (max_tokens cut it off: the text may be unfinished). Other words pass through as
# they are ("content_filter", "tool_calls", "abort"); None where nobody said (a cache entry
# or a record from before skillmix kept the reason).
FINISH_WORDS = {"stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "eos": "stop",
                "length": "length", "max_tokens": "length", "model_length": "length"}


def normal_finish(reason) -> str | None:
    """A provider's stop or finish reason in skillmix's words ("stop", "length", ...).

    >>> normal_finish("end_turn"), normal_finish("max_tokens"), normal_finish(None)
    ('stop', 'length', None)
    """
    if reason is None or reason == "":
        return None
    return FINISH_WORDS.get(str(reason), str(reason))


@dataclass
class ChatResult:
    """One conversation's replies: n texts, usage, cost, cache flag and error (None when ok)."""
    texts: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    error: str | None = None
    params: dict = field(default_factory=dict)
    # why each reply ended ("stop", "length", ...; None: not known), one per text
    finish_reasons: list[str | None] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        """The first reply, or None."""
        return self.texts[0] if self.texts else None

    @property
    def finish_reason(self) -> str | None:
        """Why the first reply ended ("length": cut off by max_tokens), or None if not known."""
        return self.finish_reasons[0] if self.finish_reasons else None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Reply:
    """One sample as a provider returned it."""
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None     # normalised (`normal_finish`)


@dataclass
class GreedyTrace:
    """A greedy reply token by token, as a local engine decoded it: the token ids and, for each,
    the `top` log-probabilities of that step ({token id: log-prob}, the engine's k best)."""
    text: str
    tokens: list[int]
    top: list[dict[int, float]]


class MalformedReply(ValueError):
    """A 200 response whose body is not a usable reply."""


@dataclass
class Job:
    """One sample still to be made: conversation `item`, sample `index`, cache `key`."""
    item: int
    index: int
    key: str
    messages: list
    seed: int | None


def check_conversations(conversations) -> list[list[dict]]:
    """Validate a list of conversations (lists of {"role", "content"} messages)."""
    if isinstance(conversations, (str, dict)) or not hasattr(conversations, "__iter__"):
        raise SkillmixError("chat() takes a list of conversations (lists of messages)",
                            field="conversations")
    out = []
    for i, conv in enumerate(conversations):
        if not isinstance(conv, (list, tuple)) or not conv:
            raise SkillmixError("a conversation is a non-empty list of messages",
                                field=f"conversations[{i}]")
        for j, m in enumerate(conv):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                    or not isinstance(m.get("content"), str):
                raise SkillmixError('a message is {"role": system|user|assistant, "content": str}',
                                    field=f"conversations[{i}][{j}]")
        out.append([{"role": m["role"], "content": m["content"]} for m in conv])
    return out
