"""In every Python process the tests start (this folder is put on PYTHONPATH): no outbound network.

Any attempt to connect a socket to an address other than this machine raises, naming the address,
so a subprocess that tries to reach a model hub fails loudly instead of passing only when online.
"""

import os
import socket

if os.environ.get("SEMSEARCH_TEST_NETGUARD") == "1":
    _real_connect = socket.socket.connect
    _real_connect_ex = socket.socket.connect_ex

    def _check(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("127."):
            log = os.environ.get("SEMSEARCH_TEST_NETGUARD_LOG")
            if log:  # the test that started this process fails, even if the caller swallows the error
                with open(log, "a", encoding="utf-8") as f:
                    f.write(f"pid {os.getpid()}: {address!r}\n")
            raise ConnectionRefusedError(f"semsearch tests: outbound network connection blocked: {address!r}")

    def _connect(self, address):
        _check(self, address)
        return _real_connect(self, address)

    def _connect_ex(self, address):
        _check(self, address)
        return _real_connect_ex(self, address)

    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
