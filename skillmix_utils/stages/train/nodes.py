"""One training run across the nodes of a SLURM job (a 70B full fine-tune on 2 nodes of 8 GPUs).

Inside an allocation of N > 1 nodes (`SLURM_JOB_NUM_NODES`; runner/slurm/jobs.py asks for
ceil(train.num_processes / cluster.gpus_per_node) nodes), the job's first node runs the study and
`launch.launch_command` hands its `accelerate launch` command to `across_nodes`, which starts it
once per node as one job step:

    srun --overlap --nodes=N --ntasks=N --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c \
      'exec python -m accelerate.commands.launch --config_file fsdp.yaml --num_processes 16 \
         --num_machines 2 --machine_rank $SLURM_NODEID --main_process_ip gpu07 \
         --main_process_port 24242 --same_network -m skillmix_utils.stages.train --config ...'

so that accelerate (torchrun underneath) forms one process group of `num_processes` ranks,
`num_processes / N` per node. The head is the first host of `SLURM_JOB_NODELIST` (`scontrol
show hostnames`, else read here); the port is derived from the job id, so every node computes
the same one; `$SLURM_NODEID` is expanded by each node's shell. `--overlap` lets the step share
the node where the study itself runs. DeepSpeed gets `--deepspeed_multinode_launcher standard`
(torchrun on every node, not pdsh). Outside SLURM, or on one node, the command is unchanged.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

NODE_RANK = "$SLURM_NODEID"


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list, as `scontrol show hostnames` would print it.

    >>> first_host("gpu[07-08]"), first_host("a100-[3,5-6],b1"), first_host("node1,node2")
    ('gpu07', 'a100-3', 'node1')
    """
    if shutil.which("scontrol"):
        done = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                              text=True)
        if done.returncode == 0 and done.stdout.split():
            return done.stdout.split()[0]
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not m:
        return nodelist
    return m.group(1) + (m.group(2).split(",")[0].split("-")[0] if m.group(2) else "")


def job_nodes(env=None) -> int:
    """Nodes of the SLURM job this process runs in (1 outside SLURM)."""
    env = os.environ if env is None else env
    try:
        return int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)
    except ValueError:
        return 1


def across_nodes(cmd: list[str], env=None) -> list[str]:
    """`cmd` (an `accelerate launch` command) started once per node of a multi-node SLURM job,
    as one process group; unchanged on one node or outside SLURM."""
    env = os.environ if env is None else env
    n = job_nodes(env)
    if n <= 1 or "accelerate.commands.launch" not in cmd:
        return cmd
    head = first_host(env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or "")
    port = 20000 + int(env.get("SLURM_JOB_ID") or 0) % 20000
    args = list(cmd)
    if "--main_process_port" in args:          # launch_command's free port is this node's only
        i = args.index("--main_process_port")
        del args[i:i + 2]
    at = args.index("-m", args.index("accelerate.commands.launch") + 1)   # the trained module
    machines = ["--num_machines", str(n), "--machine_rank", NODE_RANK, "--main_process_ip", head,
                "--main_process_port", str(port), "--same_network"]
    if any("deepspeed" in a for a in args[:at]):
        machines += ["--deepspeed_multinode_launcher", "standard"]
    args[at:at] = machines
    script = "exec " + " ".join(a if a == NODE_RANK else shlex.quote(a) for a in args)
    return ["srun", "--overlap", f"--nodes={n}", f"--ntasks={n}", "--ntasks-per-node=1",
            "--kill-on-bad-exit=1", "bash", "-c", script]
