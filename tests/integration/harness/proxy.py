"""A TCP proxy a test can cut, hold and release (a browser's connections)."""

import select
import socket
import threading

from .settings import HOST, TIMEOUT

class TcpProxy:
    """A TCP proxy on 127.0.0.1:.port in front of 127.0.0.1:@target_port that a test can cut.

    cut() ends every connection at once (both sides see the end); hold() makes new connections
    wait, accepted but not forwarded, until release(). .heads lists the first bytes each client
    sent (its request head), in the order they came. Threads only; stop() ends them all."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.1)       # so the accept loop sees stop()
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []                  # [client, upstream-or-None] being served
        self.heads = []
        self.accepted = 0
        self.released = threading.Event()
        self.released.set()
        self.stopped = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self.lock:
                self.accepted += 1
                self.threads.append(t)
            t.start()

    def _serve(self, client):
        pair = [client, None]
        with self.lock:
            self.pairs.append(pair)
        try:
            while not self.released.wait(0.05):      # held: the client waits for its answer
                if self.stopped or pair[0] is None:
                    return
            pair[1] = upstream = socket.create_connection((HOST, self.target_port), TIMEOUT)
            first = True
            while not self.stopped:
                readable, _, _ = select.select([client, upstream], [], [], 0.1)
                for s in readable:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if s is client and first:
                        first = False
                        with self.lock:
                            self.heads.append(data.decode("latin-1"))
                    try:
                        (upstream if s is client else client).sendall(data)
                    except OSError:
                        return
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                if pair in self.pairs:
                    self.pairs.remove(pair)
            for s in (client, pair[1]):
                if s is not None:
                    s.close()

    def hold(self):
        self.released.clear()

    def release(self):
        self.released.set()

    def forwarding(self):
        """How many connections are forwarded to the target right now."""
        with self.lock:
            return sum(1 for p in self.pairs if p[1] is not None)

    def cut(self):
        """Ends every forwarded connection (shutdown both ways); how many there were."""
        with self.lock:
            pairs = [p for p in self.pairs if p[1] is not None]
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(pairs)

    def stop(self):
        self.stopped = True
        self.released.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.cut()
        for t in list(self.threads):
            t.join(2.0)
