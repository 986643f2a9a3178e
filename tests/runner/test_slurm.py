"""`skillmix run --executor slurm` on a real single-node SLURM cluster (.ci/slurm-up starts one;
the test is skipped, saying why, where it cannot). A small grid of the embedded model: the
shared data notebook, then one evaluation job per grid run waiting on it through the scheduler.

What a user would check: each part ran as a job the scheduler ran; Ctrl-C detaches and leaves
the jobs running; the same command re-attaches to them, resubmits a job that was killed, and
ends with the grid summary and exit 0; a third run submits nothing; a job that fails makes the
command exit non-zero naming the job and its log.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

CONFIG = """\
name: slurm-grid
concurrency: 2
grid:
  evaluation.seed: [0, 1]
data:
  teacher: {spec: hf:smollm2-135m-instruct, temperature: 0.7, max_tokens: 16, seed: 0}
  graders:
    - {spec: hf:smollm2-135m-instruct, name: smollm2-yes-no, method: yes_no_logprob, rounds: 1}
  counts: {1: 1}
  mixes: [[1]]
evaluation:
  students:
    - name: base
      model: {spec: hf:smollm2-135m-instruct, temperature: 0.7, max_tokens: 16, seed: 0}
  settings: [held_out]
  ks: [1]
  n_combinations: 1
  generation_rounds: 1
  graders:
    - {spec: hf:smollm2-135m-instruct, name: smollm2-yes-no, method: yes_no_logprob, rounds: 1}
cluster: {gpus_per_node: 0, cpus_per_task: 1, mem_gb: 3, time_min: 30}
"""


@pytest.fixture(scope="module")
def cluster():
    """A running single-node cluster (.ci/slurm-up starts it when installed; .ci/run installs
    it), or a skip saying why."""
    try:
        done = subprocess.run([str(ROOT / ".ci" / "slurm-up")], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "SLURM_UP_NO_INSTALL": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"SLURM cannot start here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"SLURM cannot start here: {done.stderr.strip().splitlines()[-1:]}")


@pytest.fixture(scope="module")
def study(tmp_path_factory, embedded_model, cluster):
    folder = tmp_path_factory.mktemp("slurm")
    config = folder / "slurm-grid.yaml"
    config.write_text(CONFIG)
    return {"config": config, "out": folder / "out"}


def _cmd(study, *more) -> list[str]:
    return [sys.executable, "-m", "skillmix_utils.cli", "run", str(study["config"]), "--executor",
            "slurm", "--stages", "02", "04", "--set", f"output_dir={study['out']}",
            "--set", "cluster.max_parallel=1", *more]


ENV = {**os.environ, "SKILLMIX_SLURM_POLL": "1", "SKILLMIX_PROGRESS_EVERY": "30",
       "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def _jobs(study) -> dict:
    path = study["out"] / "cluster" / "jobs.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _in_queue(job_id: str) -> bool:
    out = subprocess.run(["squeue", "--noheader", "--me", "--format", "%i"], capture_output=True,
                         text=True).stdout.split()
    return job_id in out


def _scheduler_ran(job_id: str) -> bool:
    """The job ran and completed under SLURM: `scontrol show job`, else slurmctld's log."""
    shown = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True,
                           text=True).stdout
    if shown:
        return "JobState=COMPLETED" in shown
    log = Path("/var/log/slurm/slurmctld.log")
    return log.exists() and re.search(rf"JobId={job_id} .*done|_job_complete: JobId={job_id} WEXITSTATUS 0",
                                      log.read_text(errors="replace")) is not None


def test_detach_reattach_resubmit_and_finish(study):
    # 1. Start, wait until the three jobs are submitted and the shared one is running, Ctrl-C.
    proc = subprocess.Popen(_cmd(study), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        jobs = _jobs(study)
        if len(jobs) == 3:
            break
        time.sleep(1)
    assert len(_jobs(study)) == 3, proc.communicate(timeout=60)
    # One driver per study: a second one refuses while this one holds the folder.
    second = subprocess.run(_cmd(study), cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 5 and "in use" in second.stderr, second.stderr
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "detached" in err and "re-attach" in err
    first = {part: e["job_id"] for part, e in _jobs(study).items()}
    assert set(first) == {"shared", "seed=0", "seed=1"}
    assert _jobs(study)["seed=0"]["dependency"] == f"afterok:{first['shared']}"
    # max_parallel 1: the second run also waits for the first to end, through the scheduler.
    assert _jobs(study)["seed=1"]["dependency"] == f"afterok:{first['shared']},afterany:{first['seed=0']}"
    assert "submitted (afterok:" in out
    # The jobs outlive the driver (the last waits for the others); a job the scheduler kills is
    # resubmitted by the next run.
    assert _in_queue(first["seed=1"])
    subprocess.run(["scancel", first["seed=1"]], check=True)

    # 2. The same command re-attaches, resubmits the killed job, and finishes.
    done = subprocess.run(_cmd(study), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, (done.stdout, done.stderr)
    # Jobs still in flight are re-attached; one that finished meanwhile is up to date.
    attached = [p for p in ("shared", "seed=0") if f"{p} (job {first[p]}): re-attached" in done.stdout]
    assert attached, done.stdout
    final = {part: e["job_id"] for part, e in _jobs(study).items()}
    assert final["shared"] == first["shared"] and final["seed=0"] == first["seed=0"]
    assert final["seed=1"] != first["seed=1"] and first["seed=1"] in _jobs(study)["seed=1"]["history"]
    assert f"its job {first['seed=1']} did not finish" in done.stdout
    assert (study["out"] / "grid" / "metrics.csv").exists()           # the grid summary
    assert "grid summary:" in done.stdout
    for part, job_id in final.items():
        assert _scheduler_ran(job_id), part
        log = study["out"] / "cluster" / part / f"{job_id}_0_log.out"
        assert "running (" in log.read_text(), part                  # the notebook ran in the job
    assert "[slurm] seed=0: [1/1] seed=0 04_evaluation:" in done.stdout   # progress from the logs

    # 3. Everything finished: nothing is submitted.
    again = subprocess.run(_cmd(study), cwd=ROOT, env=ENV, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("up to date, no job") == 3
    assert {p: e["job_id"] for p, e in _jobs(study).items()} == final


def test_a_failed_job_names_itself_and_its_log(study):
    """After the grid above: the student's weights cannot be found inside the jobs."""
    if not (study["out"] / "grid" / "metrics.csv").exists():
        pytest.skip("needs the finished grid of the test before")
    done = subprocess.run(_cmd(study, "--set", "evaluation.students.0.model.spec=hf:no-such-org/no-such-model"),
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=1200)
    assert done.returncode != 0, done.stdout
    jobs = _jobs(study)
    job_id = jobs["seed=0"]["job_id"]
    log = study["out"] / "cluster" / "seed=0" / f"{job_id}_0_log.out"
    line = next(ln for ln in done.stderr.splitlines() if f"job {job_id} (seed=0)" in ln)
    assert line.startswith("skillmix: error: ") and f"log: {log}" in line
    assert "04_evaluation" in line and log.exists()
