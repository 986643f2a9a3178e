"""Where training reports: TensorBoard (offline, the default), Weights & Biases, MLflow.

    train:
      report_to: [tensorboard]        # or [tensorboard, wandb], [mlflow], [] for none
      eval_every: 50                  # a held-out loss every 50 steps ...
      eval_examples: 32               # ... on this many skill-mix examples kept out of training

Every step logs `train/loss`, `train/lr` (the rate that step used), `train/grad_norm` (before
any clipping) and `train/tokens_per_second` (real tokens); every `eval_every` steps `eval/loss`,
the mean answer-token loss on the held-out slice. TensorBoard event files go to
`outputs/<study>/train/<run>/tensorboard/` (`tensorboard --logdir outputs/<study>/train`); W&B
and MLflow use their own settings (WANDB_PROJECT, MLFLOW_TRACKING_URI, ...) and are imported
only when asked for, so a missing one is a clear error, never a silent skip. Only the main
process writes.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError

KNOWN = ("tensorboard", "wandb", "mlflow")


def split_heldout(examples: list, n: int, seed: int) -> tuple[list, list]:
    """(training examples, held-out slice): `n` skill-mix examples drawn with `seed` leave the
    training set; pre-training chunks always stay. n = 0 holds nothing out.

    >>> from types import SimpleNamespace as S
    >>> ex = [S(source="skillmix", i=i) for i in range(6)] + [S(source="pretrain", i=9)]
    >>> train, held = split_heldout(ex, 2, seed=0)
    >>> len(train), len(held), all(e.source == "skillmix" for e in held)
    (5, 2, True)
    """
    sm = [i for i, e in enumerate(examples) if getattr(e, "source", "skillmix") == "skillmix"]
    if n <= 0 or not sm:
        return list(examples), []
    if n >= len(sm):
        raise SkillmixError(f"eval_examples={n} would hold out every one of the {len(sm)} "
                            "skill-mix examples", field="train.eval_examples")
    held = set(random.Random(seed).sample(sm, n))
    return ([e for i, e in enumerate(examples) if i not in held],
            [e for i, e in enumerate(examples) if i in held])


def grad_norm(parameters) -> float:
    """The global L2 norm of the gradients (before clipping).

    >>> import torch
    >>> p = torch.nn.Parameter(torch.zeros(2)); p.grad = torch.tensor([3.0, 4.0])
    >>> grad_norm([p])
    5.0
    """
    import torch

    norms = [p.grad.detach().float().norm(2) for p in parameters if p.grad is not None]
    return float(torch.norm(torch.stack(norms), 2)) if norms else 0.0


class Tracker:
    """The run's loggers; `log(step, {name: value})` goes to each of them."""

    def __init__(self, report_to, root: Path, config: dict | None = None, main: bool = True,
                 run_name: str | None = None):
        self.writers: list = []
        wanted = [r for r in (report_to or []) if r != "none"]
        unknown = [r for r in wanted if r not in KNOWN]
        if unknown:
            raise SkillmixError(f"unknown tracker {unknown[0]!r} (use {', '.join(KNOWN)})",
                                field="train.report_to")
        self.dir = Path(root) / "tensorboard"
        if not main:
            return
        for name in wanted:
            try:
                self.writers.append((name, self._open(name, config or {}, run_name)))
            except ImportError as exc:
                raise SkillmixError(f"train.report_to asks for {name} but it is not installed "
                                    f"({exc.name}); pip install {name if name != 'tensorboard' else 'tensorboardX'}"
                                    " or remove it from report_to", field="train.report_to") from None

    def _open(self, name: str, config: dict, run_name: str | None):
        if name == "tensorboard":
            from tensorboardX import SummaryWriter

            self.dir.mkdir(parents=True, exist_ok=True)
            writer = SummaryWriter(logdir=str(self.dir), flush_secs=10)
            writer.add_text("config", "```\n" + "\n".join(f"{k}: {v}" for k, v in config.items()) + "\n```")
            return writer
        if name == "wandb":
            import wandb

            return wandb.init(name=run_name, config=config, reinit=True)
        import mlflow

        mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:250] for k, v in config.items()})
        return mlflow

    def log(self, step: int, values: dict) -> None:
        clean = {k: float(v) for k, v in values.items()
                 if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))}
        for name, w in self.writers:
            if name == "tensorboard":
                for k, v in clean.items():
                    w.add_scalar(k, v, step)
            elif name == "wandb":
                w.log(clean, step=step)
            else:
                w.log_metrics({k.replace("/", "_"): v for k, v in clean.items()}, step=step)

    def close(self) -> None:
        for name, w in self.writers:
            if name == "tensorboard":
                w.close()
            elif name == "wandb":
                w.finish()
            else:
                w.end_run()
        self.writers = []
