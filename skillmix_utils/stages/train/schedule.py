"""How a step's batch is drawn and spread: accumulation, seeded epochs, micro-batches per rank."""
from __future__ import annotations

import random

from skillmix_utils.core.errors import SkillmixError


def accumulation_steps(batch_size: int, per_device: int, processes: int) -> int:
    """Micro-batches per process and step so that per_device x accumulation x processes = batch.

    >>> accumulation_steps(64, 4, 1), accumulation_steps(64, 4, 4)
    (16, 4)
    """
    if batch_size % (per_device * processes):
        raise SkillmixError(f"batch_size {batch_size} is not a multiple of per_device_batch_size "
                            f"{per_device} x {processes} process(es)", field="train.batch_size")
    return batch_size // (per_device * processes)


def step_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Example indices of optimiser step `step`: epochs of seeded permutations, back to back.

    A pure function of (seed, step), so the data position of a resumed run is just its step.
    >>> step_indices(0, 4, 6, 0) + step_indices(1, 4, 6, 0) == \\
    ...     (lambda a, b: a + b[:2])(step_indices(0, 6, 6, 0), step_indices(1, 6, 6, 0))
    True
    """
    out = []
    start = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(perm)
        out += perm[offset: offset + batch_size - len(out)]
    return out


def rank_micro_batches(indices: list[int], per_device: int, processes: int, rank: int
                       ) -> list[list[int]]:
    """This rank's micro-batches of a step (micro-batch j goes to rank j % processes).

    >>> rank_micro_batches(list(range(8)), 2, 2, 1)
    [[2, 3], [6, 7]]
    """
    chunks = [indices[i: i + per_device] for i in range(0, len(indices), per_device)]
    return chunks[rank::processes]
