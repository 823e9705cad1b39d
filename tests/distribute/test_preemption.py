"""SigtermWatch and Preempted: SIGTERM becomes a flag while training; a second one terminates as usual."""

import signal
import subprocess
import sys

import tensorflow as tf

from kopt.distribute.preemption import Preempted
from kopt.distribute.preemption import SigtermWatch


def test_watch_turns_sigterm_into_a_flag_and_gives_the_handler_back():
    before = signal.getsignal(signal.SIGTERM)
    watch = SigtermWatch()
    watch.start()
    assert watch.active and not watch.requested
    signal.raise_signal(signal.SIGTERM)
    assert watch.requested
    assert watch.agreed(tf.distribute.get_strategy(), num_workers=1)
    watch.stop()
    assert signal.getsignal(signal.SIGTERM) is before and not watch.active


def test_a_second_sigterm_terminates_as_usual():
    code = (
        "import signal\n"
        "from kopt.distribute.preemption import SigtermWatch\n"
        "watch = SigtermWatch(); watch.start()\n"
        "signal.raise_signal(signal.SIGTERM)\n"
        "print('flagged', watch.requested, flush=True)\n"
        "signal.raise_signal(signal.SIGTERM)\n"
        "print('still running', flush=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout == "flagged True\n"
    assert result.returncode == -signal.SIGTERM


def test_preempted_says_where_it_stopped_and_what_to_do():
    err = Preempted(1, 3, "/tmp/backup")
    assert (err.epoch, err.step, err.backup_dir) == (1, 3, "/tmp/backup")
    assert "epoch 2 after step 3" in str(err) and "Run the same command again" in str(err)
