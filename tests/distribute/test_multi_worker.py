"""MultiWorkerMirroredStrategy with two worker processes on localhost, and a worker killed mid-run.

Each test starts real processes (``multi_worker_job.py``) on free ports, bounds
every wait, and kills whatever is still running when it ends.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi_worker_job.py")
TIMEOUT_S = 420
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class _Cluster:
    """Starts and stops the workers of one two-worker job."""

    def __init__(self, tmp_path, delay, command=None):
        self.out, self.backup = str(tmp_path / "out"), str(tmp_path / "backup")
        os.makedirs(self.out)
        self.cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
        self.delay, self.processes, self.logs = delay, {}, []
        self.command = command or [sys.executable, JOB, self.out, self.backup, str(delay)]

    def start(self, index):
        config = {"cluster": self.cluster, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(config), TF_CPP_MIN_LOG_LEVEL="2")
        log = os.path.join(self.out, f"worker{index}-{len(self.logs)}.log")
        self.logs.append(log)
        with open(log, "w") as handle:
            self.processes[index] = subprocess.Popen(self.command, env=env, stdout=handle, stderr=subprocess.STDOUT)

    def wait(self, index, deadline):
        try:
            return self.processes[index].wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {index} still running at the deadline.\n{self.tail()}")

    def progress(self, index):
        path = os.path.join(self.out, f"worker{index}.progress")
        with contextlib.suppress(OSError, ValueError):
            with open(path) as f:
                return int(f.read())
        return 0

    def results(self):
        return [np.load(os.path.join(self.out, f"worker{index}.npz")) for index in (0, 1)]

    def tail(self):
        text = []
        for log in self.logs:
            with open(log) as f:
                lines = [line for line in f.read().splitlines() if not line.startswith(("I0000", "W0000"))]
            text.append(f"--- {os.path.basename(log)}\n" + "\n".join(lines[-25:]))
        return "\n".join(text)

    def kill_all(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def cluster_factory(tmp_path):
    clusters = []

    def make(name, delay=0.0, command=None):
        os.makedirs(tmp_path / name)
        clusters.append(_Cluster(tmp_path / name, delay, command))
        return clusters[-1]

    yield make
    for cluster in clusters:
        cluster.kill_all()


def _run_to_end(cluster, deadline):
    for index in (0, 1):
        cluster.start(index)
    codes = [cluster.wait(index, deadline) for index in (0, 1)]
    assert codes == [0, 0], cluster.tail()


def _assert_same(first, second, prefix):
    names = [name for name in first.files if name.startswith(prefix)]
    assert names
    for name in names:
        np.testing.assert_allclose(first[name], second[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_pruned_qat_and_distilled_models_train_identically_on_both_workers_and_survive_a_killed_worker(cluster_factory):
    deadline = time.monotonic() + TIMEOUT_S
    # 1. Uninterrupted: both workers end with the same variables, at the target sparsity.
    clean = cluster_factory("clean", delay=0.0)
    _run_to_end(clean, deadline)
    worker0, worker1 = clean.results()
    for name in worker0.files:
        np.testing.assert_array_equal(worker0[name], worker1[name], err_msg=name)
    masks = [name for name in worker0.files if name.endswith("kernel_mask")]
    assert len(masks) == 2 and all(np.mean(worker0[name] == 0) == 0.75 for name in masks)
    ranges = [name for name in worker0.files if name.startswith("qat/") and name.endswith(("_min", "_max"))]
    assert ranges and any(np.any(worker0[name] != 0) for name in ranges)
    losses = [name for name in worker0.files if name.startswith("distill_log/")]
    assert {"distill_log/loss", "distill_log/student_loss", "distill_log/distillation_loss"} <= set(losses)
    assert int(worker0["iterations"]) == 18 and tuple(worker0["resumed_from"]) == (-1, -1)

    # 2. Worker 1 is killed mid-epoch, after the backup at step 8. Worker 0 then
    # fails its next all-reduce; both are restarted, as a cluster manager would.
    faulty = cluster_factory("faulty", delay=0.3)
    for index in (0, 1):
        faulty.start(index)
    while faulty.progress(1) < 9:
        assert faulty.processes[1].poll() is None, faulty.tail()
        assert time.monotonic() < deadline, faulty.tail()
        time.sleep(0.05)
    faulty.processes[1].send_signal(signal.SIGKILL)
    assert faulty.wait(0, deadline) != 0, "worker 0 should fail when its peer dies"
    _run_to_end(faulty, deadline)
    resumed0, resumed1 = faulty.results()
    # It resumed from a mid-epoch backup (epoch 1 or 2, not the start) and ran
    # exactly the remaining steps: no step lost, none repeated.
    epoch, step = (int(v) for v in resumed0["resumed_from"])
    assert (epoch, step) >= (1, 2), (epoch, step)
    assert int(resumed0["iterations"]) == 18
    _assert_same(resumed0, resumed1, "")
    _assert_same(resumed0, worker0, "pruned/")


def test_sigterm_to_one_worker_backs_up_and_stops_both_promptly_and_a_restart_resumes(cluster_factory):
    deadline = time.monotonic() + TIMEOUT_S
    cluster = cluster_factory("preempted", delay=0.3)
    for index in (0, 1):
        cluster.start(index)
    while cluster.progress(1) < 7:
        assert cluster.processes[1].poll() is None, cluster.tail()
        assert time.monotonic() < deadline, cluster.tail()
        time.sleep(0.05)
    signalled = time.monotonic()
    cluster.processes[1].send_signal(signal.SIGTERM)  # what Kubernetes or a preemptible VM sends
    codes = [cluster.wait(index, deadline) for index in (0, 1)]
    # Both workers agreed on the step, saved it and stopped: within a few steps, not minutes.
    assert time.monotonic() - signalled < 30, cluster.tail()
    assert codes[0] != 0 and codes[1] != 0, cluster.tail()
    for log in cluster.logs:
        with open(log) as f:
            assert "Stopped by SIGTERM" in f.read(), cluster.tail()
    # The job's progress callback runs after the backup's, so it never wrote the step that stopped.
    stopped_after = cluster.progress(0) + 1
    _run_to_end(cluster, deadline)  # the same command again
    resumed0, resumed1 = cluster.results()
    epoch, step = (int(v) for v in resumed0["resumed_from"])
    assert epoch * 6 + step == stopped_after, (epoch, step, stopped_after)  # nothing trained was lost
    assert int(resumed0["iterations"]) == 18
    _assert_same(resumed0, resumed1, "")


def test_kopt_optimize_trains_on_two_workers_and_only_the_chief_writes_files(cluster_factory, tmp_path):
    export_dir, report = tmp_path / "export", tmp_path / "export" / "report.json"
    command = [  # argv[0] is "-c" for absl; the flags follow
        sys.executable,
        "-c",
        "from kopt.cli.entry import main; main()",
        "--strategy=multi_worker",
        "--epochs=1",
        "--prune=0.5",
        "--finetune_epochs=1",
        f"--export_dir={export_dir}",
        f"--report={report}",
    ]
    cluster = cluster_factory("optimize", command=command)
    _run_to_end(cluster, time.monotonic() + TIMEOUT_S)
    with open(report) as f:
        result = json.load(f)
    assert result["recipe"]["strategy"] == "multi_worker"
    assert result["optimized"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert result["optimized"]["tflite_agreement"] == 1.0
    assert sorted(os.listdir(export_dir)) == [
        "baseline.keras",
        "baseline.tflite",
        "optimized.keras",
        "optimized.tflite",
        "report.json",
        "report.png",
    ]
