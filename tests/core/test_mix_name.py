"""One name for a training mix: the data stage writes `k1-2-3` whatever the order in the config,
and the training stage finds it for `data_mix: [3, 2, 1]` (it used to look for `k3-2-1`)."""
from __future__ import annotations

from skillmix_utils.core.records import Combination, TextRecord
from skillmix_utils.stages.export import mix_name, write_mix
from skillmix_utils.stages.train.formatting import find_mix
from skillmix_utils.stages.train.formatting import mix_name as train_mix_name


def test_data_mix_in_any_order_finds_the_exported_mix(tmp_path):
    rec = TextRecord(id="datagen/data/k1/c0/g0", stage="datagen", model="m",
                     combination=Combination(skills=("metaphor",), topic="Knots", k=1),
                     conversation=[{"role": "user", "content": "q"},
                                   {"role": "assistant", "content": "a"}])
    write_mix(tmp_path / "data" / "mixes", mix_name([1, 2, 3]), [rec])
    assert find_mix(tmp_path, [3, 2, 1]).name == "k1-2-3.jsonl"
    assert train_mix_name([3, 1, 2]) == mix_name([2, 3, 1]) == "k1-2-3"
    assert train_mix_name([3, 2, 1], "sub8000") == "sub8000"
