"""Bounded waits on a condition: a test waits for what it needs to have happened, named in the
failure, instead of sleeping for a time that a loaded machine may not keep to."""

import re
import time

from .settings import TIMEOUT


def wait_until(check, timeout=TIMEOUT, what="the condition", interval=0.02, explain=None):
    """Calls @check() until it returns a true value, which is returned; an AssertionError that
    names @what (and the text of @explain(), when given) once @timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.1fs%s"
                                 % (what, timeout, "\n" + explain() if explain else ""))
        time.sleep(interval)


def wait_log(path, pattern, timeout=TIMEOUT):
    """Until the file @path (a process's log) holds a line matching the regex @pattern (str);
    the match."""
    regex = re.compile(pattern)

    def search():
        with open(path, "rb") as f:
            return regex.search(f.read().decode("utf-8", "replace"))
    return wait_until(search, timeout, "no log line %r in %s" % (pattern, path))
