"""`skillmix push`: a study's trained weights, data mixes and report on the Hugging Face hub.

    skillmix push configs/demo.yaml --dry-run      # every repo and file that would go; no network
    skillmix push configs/demo.yaml [--namespace NS] [--private] [--endpoint URL]

Two repos, each created with `create_repo(exist_ok=True)` and filled by one `create_commit`
of huggingface_hub (which skips files the hub already holds unchanged, so a re-run after a
failure re-sends only what is missing):

- dataset `{ns}/{study}-d-skill-mix`: `data/<mix>.parquet` for every mix (the rows of
  `data/mixes/<mix>.jsonl`), and README.md, the dataset card: front matter with one `configs:`
  entry per mix, then what D_SKILL-MIX(k) is, the teacher and graders, counts and keep rate per k
  (the data card of `stages/export.py`). Pushed first: the model card names it.
- model `{ns}/{study}-{run}`: the run's `adapter/` (or `model/` for full fine-tuning) files at the
  repo's root, so `PeftModel.from_pretrained("{ns}/{study}-{run}")` loads it; README.md, the
  model card with the study's metrics table and `datasets: [the dataset repo]`; and under
  `study/` the report, metrics.csv, the resolved config (refused if it holds a credential),
  train_summary.json and loss.json (the study folder's path written as outputs/<study>); TensorBoard event files under `runs/`
  (the hub shows them as training metrics).

What must exist (else exit 2, naming each missing piece and the stage that makes it): the run's
weights and train_summary.json, every mix, eval/tables/metrics.csv and report.html. loss.json,
the TensorBoard events and data/data_card.json are sent when they exist.

The token is huggingface_hub's (HF_TOKEN or `hf auth login`); the namespace `--namespace` or
the token's user; the endpoint `--endpoint` or HF_ENDPOINT. No file that holds the token or an
API key from the environment is sent, and no message repeats one.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import ItemsFailed, RequestRefused, SkillmixError
from skillmix_utils.core.redact import SECRET_ENV, describe_error, find_credential
from skillmix_utils.present.hub_cards import dataset_card
from skillmix_utils.stages.export import mix_name
from skillmix_utils.stages.train.card import model_card, read_metrics, write_card
from skillmix_utils.stages.train.formatting import load_rows
from skillmix_utils.stages.train.run import run_dir, run_name

NAMESPACE_PLACEHOLDER = "<namespace>"   # a dry run without --namespace asks nobody who you are
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")   # either makes huggingface_hub offline


@dataclass
class Upload:
    """One file of a repo: where it goes and what it holds (a local file or bytes made here)."""
    path_in_repo: str
    source: Path | bytes

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size

    def read(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()


@dataclass
class RepoPlan:
    """A repo to create and the files of its one commit."""
    repo_id: str
    repo_type: str           # "model" or "dataset"
    files: list[Upload] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def repo_ids(cfg: StudyConfig, namespace: str) -> tuple[str, str]:
    """(model repo id, dataset repo id) of a study's push.

    >>> from types import SimpleNamespace as S
    >>> repo_ids(S(name="demo", train=S(mode="lora", data_mix=[1, 2, 3], subsample=None)), "ada")
    ('ada/demo-lora-k1-2-3', 'ada/demo-d-skill-mix')
    """

    return f"{namespace}/{cfg.name}-{run_name(cfg)}", f"{namespace}/{cfg.name}-d-skill-mix"


def mix_names(cfg: StudyConfig) -> list[str]:
    """The mixes a study's dataset repo holds: those its data section makes, or (data made
    elsewhere) the one its training read."""

    if cfg.data is not None and cfg.data.enabled:
        return [mix_name(m) for m in cfg.data.mixes] + [s.name for s in cfg.data.subsamples]
    return [mix_name(cfg.train.data_mix, cfg.train.subsample)]


def _pieces(cfg: StudyConfig, config_file=None) -> dict[str, tuple[Path, str]]:
    """What a push needs: name -> (path, the stage that makes it)."""

    run = run_dir(cfg)
    weights = run / ("model" if cfg.train.mode == "full" else "adapter")
    config = config_file or "CONFIG"
    need = {"weights": (weights, f"`skillmix train {config}` (notebook 03)"),
            "summary": (run / "train_summary.json", f"`skillmix train {config}` (notebook 03)")}
    for mix in mix_names(cfg):
        need[f"mix:{mix}"] = (cfg.out / "data" / "mixes" / f"{mix}.jsonl",
                              f"`skillmix generate-data {config}` (notebook 02)")
    need["metrics"] = (cfg.out / "eval" / "tables" / "metrics.csv",
                       f"`skillmix evaluate {config}` (notebook 04)")
    need["report"] = (cfg.out / "report.html", f"`skillmix run {config} --stages 05`")
    return need


def check_pieces(cfg: StudyConfig, config_file=None) -> dict[str, Path]:
    """The paths a push sends; raises SkillmixError naming every missing piece and its stage."""
    if cfg.train is None or not cfg.train.enabled:
        raise SkillmixError("the study has no train section: there is no model to push",
                            file=config_file, field="train")
    need = _pieces(cfg, config_file)
    missing = [f"{path.relative_to(cfg.out)} (made by {stage})" for path, stage in need.values()
               if not path.exists() or (path.is_dir() and not any(path.iterdir()))]
    if missing:
        raise SkillmixError("nothing to push yet, missing: " + "; ".join(missing), file=str(cfg.out))
    return {name: path for name, (path, _) in need.items()}


def portable_config(cfg: StudyConfig, config_file=None) -> bytes:
    """The resolved config as YAML with no path of this machine (output_dir becomes
    outputs/<study>, other absolute paths their file name); refused if it holds a credential."""
    import yaml


    tree = cfg.model_dump(mode="json")
    tree["output_dir"] = f"outputs/{cfg.name}"

    def relative(node):
        if isinstance(node, dict):
            return {k: relative(v) for k, v in node.items()}
        if isinstance(node, list):
            return [relative(v) for v in node]
        if isinstance(node, str) and os.path.isabs(node) and "\n" not in node:
            return Path(node).name
        return node

    tree = relative(tree)
    found = find_credential(tree)
    if found:
        raise SkillmixError(f"not pushed: {found[1]}", file=config_file, field=found[0])
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode()


def mix_parquet(jsonl: Path) -> tuple[bytes, list[dict]]:
    """A mix's JSONL rows as parquet bytes (the row schema of docs/architecture.md), and the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("k", pa.int64()), ("skills", pa.list_(pa.string())),
                        ("topic", pa.string()),
                        ("messages", pa.list_(pa.struct([("role", pa.string()),
                                                         ("content", pa.string())])))])

    rows = load_rows(jsonl)         # the trainer's reader: a damaged line is named, not skipped
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue(), rows


def portable_copy(path: Path, cfg: StudyConfig) -> bytes:
    """A study file's bytes with the study folder's absolute path written as outputs/<study>
    (metrics.csv names adapters, the summary its mix, the report the config, by full path)."""
    data = path.read_bytes()
    for folder in {str(cfg.out), str(cfg.out.resolve())}:
        data = data.replace(folder.encode(), f"outputs/{cfg.name}".encode())
    return data


def _tree(folder: Path, prefix: str, skip=()) -> list[Upload]:
    return [Upload(prefix + p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() not in skip]


def plan_push(cfg: StudyConfig, namespace: str, config_file=None) -> list[RepoPlan]:
    """The dataset repo and the model repo of a push with every file each commit sends
    (cards and parquet made in memory, nothing written)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id


    paths = check_pieces(cfg, config_file)
    model_id, dataset_id = repo_ids(cfg, namespace)
    for repo_id in (model_id, dataset_id):      # the hub's own rules for a repo name
        try:
            validate_repo_id(repo_id.replace(NAMESPACE_PLACEHOLDER, "namespace"))
        except HFValidationError as exc:
            raise SkillmixError(f"{repo_id!r} is not a hub repo id ({' '.join(str(exc).split())}); "
                                "it is made of --namespace and the config's name",
                                file=config_file, field="name") from None
    run = paths["summary"].parent

    dataset = RepoPlan(dataset_id, "dataset")
    mixes = {}
    for mix in mix_names(cfg):
        data, rows = mix_parquet(paths[f"mix:{mix}"])
        dataset.files.append(Upload(f"data/{mix}.parquet", data))
        mixes[mix] = rows
    card_json = cfg.out / "data" / "data_card.json"
    data_card = json.loads(card_json.read_text()) if card_json.exists() else None
    dataset.files.insert(0, Upload("README.md", dataset_card(cfg, mixes, data_card, model_id).encode()))

    model = RepoPlan(model_id, "model")
    summary = json.loads(paths["summary"].read_text())
    card = model_card(cfg, summary, read_metrics(paths["metrics"]), dataset_id)
    model.files.append(Upload("README.md", card.encode()))
    model.files += _tree(paths["weights"], "", skip={"README.md"})
    model.files += [Upload("study/report.html", portable_copy(paths["report"], cfg)),
                    Upload("study/metrics.csv", portable_copy(paths["metrics"], cfg)),
                    Upload("study/config.yaml", portable_config(cfg, config_file)),
                    Upload("study/train_summary.json", portable_copy(paths["summary"], cfg))]
    if (run / "loss.json").exists():
        model.files.append(Upload("study/loss.json", run / "loss.json"))
    if (run / "tensorboard").is_dir():
        model.files += _tree(run / "tensorboard", "runs/")
    return [dataset, model]


def _secrets() -> list[str]:
    """The hub token and the API keys of the environment: none may leave in a file."""
    from huggingface_hub import get_token


    found = [get_token()] + [os.environ.get(v) for v in SECRET_ENV]
    return sorted({s for s in found if s and len(s) >= 8})


def refuse_secrets(plans: list[RepoPlan], secrets: list[str]) -> None:
    """Raise SkillmixError naming the first file that holds one of `secrets` (never the secret).
    Parquet is compressed: its rows are checked in the JSONL they come from (`check_pieces`)."""
    needles = [s.encode() for s in secrets]
    for plan in plans:
        for f in plan.files:
            if needles and f.size < 512 * 2**20 and any(n in f.read() for n in needles):
                raise SkillmixError("holds a token or API key from the environment; not pushed",
                                    file=f"{plan.repo_id}/{f.path_in_repo}")


def _human(n: int) -> str:
    """
    >>> _human(999), _human(1536), _human(5 * 2**20)
    ('999 B', '1.5 kB', '5.0 MB')
    """
    for unit, scale in (("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def render_plan(plans: list[RepoPlan], endpoint: str | None = None) -> str:
    """What a push sends: each repo, each file (path in repo, size), and the total."""
    lines = []
    for plan in plans:
        lines.append(f"{plan.repo_type:8}{plan.repo_id}  ({len(plan.files)} files, {_human(plan.size)})")
        width = max(len(f.path_in_repo) for f in plan.files)
        lines += [f"  {f.path_in_repo:<{width}}  {_human(f.size):>9}" for f in plan.files]
    n = sum(len(p.files) for p in plans)
    lines.append(f"total: {n} files, {_human(sum(p.size for p in plans))}"
                 + (f" to {endpoint}" if endpoint else ""))
    return "\n".join(lines)


def offline_variables() -> list[str]:
    """The variables that make huggingface_hub offline in this environment (either does)."""
    # huggingface_hub's own reading of these variables (constants._is_true)
    return [v for v in OFFLINE_VARS if (os.environ.get(v) or "").upper() in {"1", "ON", "YES", "TRUE"}]


def _refused(exc, secrets, what: str):
    """An HTTP error of the hub as the project's error: a 4xx is a refusal (exit 4), anything
    else a failure to retry (exit 1); redacted, on one line."""

    status = getattr(getattr(exc, "response", None), "status_code", None)
    msg = describe_error(exc, secrets)
    if status is not None and 400 <= status < 500:
        return RequestRefused(f"the hub refused {what} (HTTP {status}): {msg}")
    return ItemsFailed(f"{what} failed: {msg}; re-run to retry (files already there are skipped)")


def push(cfg: StudyConfig, *, namespace: str | None = None, private: bool = False,
         endpoint: str | None = None, dry_run: bool = False, config_file=None,
         echo=print) -> list[RepoPlan]:
    """Push a study (see the module's docstring); with `dry_run`, only print what would go.
    Returns the plans. Raises SkillmixError (2) for missing pieces, offline mode or no token,
    RequestRefused (4) for a bad token or a refused repo, ItemsFailed (1) for other failures."""
    if dry_run:
        plans = plan_push(cfg, namespace or NAMESPACE_PLACEHOLDER, config_file)
        refuse_secrets(plans, _secrets())
        echo(f"skillmix push {cfg.name}: dry run, nothing is sent"
             + ("" if namespace else f" ({NAMESPACE_PLACEHOLDER}: --namespace, or your hub user)"))
        echo(render_plan(plans, endpoint))
        return plans
    offline = offline_variables()
    if offline:
        raise SkillmixError(f"{' and '.join(offline)} set: the hub is unreachable; unset "
                            f"{' and '.join(offline)} to push (--dry-run shows what would go)")
    run = check_pieces(cfg, config_file)["summary"].parent   # before asking the hub anything
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    secrets = _secrets()
    api = HfApi(endpoint=endpoint)              # None: HF_ENDPOINT, else huggingface.co
    try:
        user = api.whoami()
    except LocalTokenNotFoundError:
        raise SkillmixError("no Hugging Face token: set HF_TOKEN or run `hf auth login`",
                            field="HF_TOKEN") from None
    except HfHubHTTPError as exc:
        raise _refused(exc, secrets, "the token (whoami)") from None
    except Exception as exc:                    # connection refused, DNS, timeout
        raise _refused(exc, secrets, f"reaching {api.endpoint}") from None
    plans = plan_push(cfg, namespace or user["name"], config_file)
    refuse_secrets(plans, secrets)
    echo(render_plan(plans, api.endpoint))
    for plan in plans:
        try:
            url = api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private or None,
                                  exist_ok=True)
            api.create_commit(plan.repo_id, repo_type=plan.repo_type,
                              operations=[CommitOperationAdd(f.path_in_repo, f.source)
                                          for f in plan.files],
                              commit_message=f"skillmix push: study {cfg.name}")
        except Exception as exc:                # HTTP errors, connection errors, invalid card
            raise _refused(exc, secrets, f"the push to {plan.repo_id}") from None
        echo(f"pushed {plan.repo_type} {url}")
    # The local card now says what the hub's says (metrics, the dataset repo it names).

    write_card(cfg, run, read_metrics(cfg.out / "eval" / "tables" / "metrics.csv"), plans[0].repo_id)
    return plans
