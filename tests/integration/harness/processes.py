"""The processes a test starts: spawned with their output in a log, tracked until stopped by
PID (also when the test run is killed), their directories removed; free ports, bounded waits for
a port, log tails."""

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .settings import HOST


# Processes started here and not yet stopped. If the test run itself is killed (SIGTERM from
# meson's timeout, Ctrl-C), the handler below stops them by PID before exiting; PR_SET_PDEATHSIG
# covers a SIGKILL of the test process.
_live = {}
_dirs = set()


def _stop_all_and_exit(signum, frame):
    for proc in list(_live.values()):
        try:
            stop_process(proc, 2.0)
        except Exception:
            pass
    for d in list(_dirs):
        shutil.rmtree(d, ignore_errors=True)
    os._exit(128 + signum)


def make_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.add(d)
    return d


def remove_dir(d):
    shutil.rmtree(d, ignore_errors=True)
    _dirs.discard(d)


try:
    import ctypes
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl   # bound now: no import after fork
except (ImportError, OSError):
    _prctl = None


def _die_with_parent():
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))   # PR_SET_PDEATHSIG


def spawn(cmd, log_path, cwd=None, pipes=False, env=None, group=False):
    """Popen with output appended to @log_path; tracked until stop_process(). With @pipes, stdin
    and stdout are pipes for the caller (stderr still goes to the log). With @group, the process
    leads a process group of its own, and stop_process() ends the whole group."""
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if pipes else logf, stderr=logf,
                                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL, cwd=cwd,
                                env=env, preexec_fn=_die_with_parent, start_new_session=group)
    proc.mwb_group = group
    _live[proc.pid] = proc
    return proc


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _stop_all_and_exit)
    signal.signal(signal.SIGINT, _stop_all_and_exit)
# (atexit runs these last first: the processes stop, then their directories go)
atexit.register(lambda: [remove_dir(d) for d in list(_dirs)])
atexit.register(lambda: [stop_process(p, 2.0) for p in list(_live.values())])


def require_tool(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError("required tool missing: %s (install it; tests never skip for this)"
                             % path)


def _ephemeral_low():
    """The first port of the kernel's range for outgoing connections (32768 when unknown)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Test servers listen below the ephemeral range: a port bind(0) gave could be handed to any
# outgoing connection on the machine once the server stopped, and a broker or bridge restarted on
# its port then failed with EADDRINUSE (seen with four test files at a time).
PORT_LOW = 20000
PORT_HIGH = _ephemeral_low() - 1


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range when there
    is room (random, so that test files running at once rarely pick the same one)."""
    if PORT_HIGH - PORT_LOW >= 1000:
        for _ in range(200):
            port = random.randint(PORT_LOW, PORT_HIGH)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout, log_path):
    """Until @port accepts TCP; fails early when @proc exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("process %d exited with %s before listening on %d\n%s"
                                 % (proc.pid, proc.returncode, port, log_tail(log_path)))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("port %d not accepting after %.1fs\n%s" % (port, timeout, log_tail(log_path)))


def log_tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(no log %s: %s)" % (path, e)
    return "--- %s (last %d lines) ---\n%s" % (path, lines, "\n".join(data[-lines:]))


def _group_members(pgid):
    """PIDs of the live (not zombie) processes of process group @pgid."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


def _kill_group(pgid, timeout=3.0):
    """SIGKILL to what is left of process group @pgid (its leader has been waited for), and a
    bounded wait until none of it runs."""
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError("process group %d still running after SIGKILL: %r"
                                 % (pgid, _group_members(pgid)))
        time.sleep(0.02)


def stop_process(proc, timeout=5.0):
    """SIGTERM, bounded wait, SIGKILL. Returns the exit code (negative: killed by that signal).
    A process spawned with group=True takes what is left of its process group with it."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if getattr(proc, "mwb_group", False):
        _kill_group(proc.pid)
    _live.pop(proc.pid, None)
    return proc.returncode


class Daemon:
    """A server process of the test's own (.proc) with its directory (.dir): stopped by PID, its
    directory removed."""

    proc = None

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None:
            return None
        return stop_process(self.proc)

    def cleanup(self):
        self.stop()
        remove_dir(self.dir)


def free_ports(n):
    """@n distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    ports = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports
