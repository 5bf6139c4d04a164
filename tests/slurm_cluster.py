"""A one-node SLURM on this machine for the tests: munged, slurmctld and slurmd run in the
foreground from a generated slurm.conf in a temporary folder (node and controller addressed as
127.0.0.1, free ports), and are stopped by PID. No accounting database: jobs stay visible to
squeue for MinJobAge seconds, so Snakemake's SLURM plugin polls with squeue. Two stand-in
GPUs (/dev/null and /dev/zero) let GPU requests be scheduled and recorded without a GPU.

The plugin's job step runs srun without SLURM_CONF, so srun reads the default path,
/etc/slurm/slurm.conf: the cluster links it there while it runs, and refuses to start where that
file belongs to a SLURM of the machine's own. The Debian packages slurm-wlm and munge provide the
daemons; .ci/run installs them."""
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
CLUSTER = "ClusterName=neff-test"
MIN_JOB_AGE = 300  # seconds a finished job stays in squeue; the plugin needs >= 3x its poll interval


class Unavailable(Exception):
    """SLURM cannot run here; the message says why."""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line():
    """This machine's hardware as slurmd sees it, renamed to localhost, with memory to spare."""
    fields = dict(f.split("=", 1) for f in subprocess.run(
        ["slurmd", "-C"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0].split())
    fields.update(NodeName="localhost", NodeAddr="127.0.0.1", Gres="gpu:2",
                  RealMemory=str(int(int(fields["RealMemory"]) * 0.9)))
    return " ".join(f"{k}={v}" for k, v in fields.items())


def _write_config(folder):
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    (folder / "gres.conf").write_text("".join(f"NodeName=localhost Name=gpu File={device}\n"
                                              for device in ("/dev/null", "/dev/zero")))
    settings = {
        "SlurmctldHost": f"{socket.gethostname().split('.')[0]}(127.0.0.1)",
        "SlurmctldPort": _free_port(), "SlurmdPort": _free_port(),
        "SlurmUser": "root", "AuthType": "auth/munge", "CredType": "cred/munge",
        "AuthInfo": f"socket={folder / 'munge.socket'}",
        "StateSaveLocation": folder / "state", "SlurmdSpoolDir": folder / "spool",
        "SlurmctldPidFile": folder / "slurmctld.pid", "SlurmdPidFile": folder / "slurmd.pid",
        "SlurmctldLogFile": folder / "slurmctld.log", "SlurmdLogFile": folder / "slurmd.log",
        "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none", "MpiDefault": "none",
        "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core_Memory",
        "AccountingStorageType": "accounting_storage/none", "JobAcctGatherType": "jobacct_gather/none",
        "GresTypes": "gpu", "MinJobAge": MIN_JOB_AGE, "ReturnToService": 2, "DefMemPerCPU": 1000,
        "MailProg": "/bin/true",
    }
    lines = [CLUSTER] + [f"{key}={value}" for key, value in settings.items()]
    lines += [_node_line(), "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP"]
    (folder / "slurm.conf").write_text("\n".join(lines) + "\n")


@contextmanager
def local_slurm(folder, timeout=60):
    """Start the cluster in `folder`; yield the environment its clients need (SLURM_CONF).
    Raises Unavailable where it cannot start within `timeout` seconds; always stops what it started."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not found: install the Debian packages slurm-wlm and "
                          "munge (as root, .ci/run does)")
    if os.geteuid() != 0:
        raise Unavailable("starting slurmd needs root")
    if SYSTEM_CONF.exists() and not (SYSTEM_CONF.is_symlink() and CLUSTER in SYSTEM_CONF.read_text()):
        raise Unavailable(f"{SYSTEM_CONF} exists: this machine has a SLURM of its own")
    folder = Path(folder)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    _write_config(folder)
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    socket_path = folder / "munge.socket"
    daemons = [  # each with the sign that it is ready for the next
        (["munged", "-F", "--force", f"--socket={socket_path}", f"--key-file={key}",
          f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
          f"--seed-file={folder / 'munged.seed'}"], socket_path.exists),
        (["slurmctld", "-D", "-i"], lambda: _ask(env, "scontrol", "ping").endswith("is UP")),
        (["slurmd", "-D", "-N", "localhost"], lambda: _ask(env, "sinfo", "-h", "-o", "%T") == "idle"),
    ]
    started = []
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.unlink(missing_ok=True)  # a link an interrupted run left
    SYSTEM_CONF.symlink_to(env["SLURM_CONF"])
    try:
        deadline = time.time() + timeout
        for command, ready in daemons:
            with open(folder / f"{command[0]}.out", "w") as log:
                started.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True))
            while not ready():
                if time.time() > deadline or started[-1].poll() is not None:
                    raise Unavailable(f"{command[0]} did not come up within {timeout} s; see {folder}/*.log")
                time.sleep(0.2)
        yield env
    finally:
        if len(started) == len(daemons):
            subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
        for daemon in reversed(started):
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        SYSTEM_CONF.unlink(missing_ok=True)


def _ask(env, *command):
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=10).stdout.strip()
    except subprocess.TimeoutExpired:
        return ""


def jobs(env):
    """Every job squeue still remembers (finished ones for MinJobAge seconds): id -> state,
    comment (the plugin writes the rule there) and trackable resources asked for (gres:gpu:1)."""
    done = subprocess.run(["squeue", "-h", "--states=all", "-O", "JobID:|,State:|,Comment:|,tres-per-job"],
                          env=env, capture_output=True, text=True, timeout=30)
    rows = (line.strip().split("|") for line in done.stdout.splitlines())
    return {job: {"state": state, "comment": comment, "tres": tres} for job, state, comment, tres in rows}
