"""Entry point of one training process; launch.py starts it (through accelerate for several).

    python -m skillmix_utils.stages.train --config outputs/demo/train/lora-k1-2/study_config.json
    accelerate launch --cpu --num_processes 2 -m skillmix_utils.stages.train --config CONFIG.json

CONFIG is a study config: the JSON that launch.py writes, or a YAML study file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skillmix_utils.core.config import StudyConfig, load_study_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.trainer import train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m skillmix_utils.stages.train")
    p.add_argument("--config", required=True, help="study config (.json from launch.py, or .yaml)")
    p.add_argument("--restart", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--data", help="training rows (JSONL or datasets folder) instead of the study's mix")
    p.add_argument("--probe", type=int, default=0, help="record loss on N examples before/after")
    args = p.parse_args(argv)
    try:
        path = Path(args.config)
        cfg = (StudyConfig.model_validate_json(path.read_text()) if path.suffix == ".json"
               else load_study_config(path))
        train(cfg, resume=not args.restart, data_path=args.data, probe=args.probe)
    except SkillmixError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
