"""A sidecar (or main process) for the tests: logs `NAME start`, `NAME term`
and `NAME exit` with a monotonic-free wall clock time to LOG; optionally
listens on 127.0.0.1:PORT after DELAY seconds; on SIGTERM exits 0 (or,
with IGNORE=1, ignores it).

usage: sidecar.py NAME LOG [PORT] [DELAY] [IGNORE]
"""
import os, signal, socket, sys, time

name, log = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
ignore = len(sys.argv) > 5 and sys.argv[5] == "1"


def note(what):
    with open(log, "a") as f:
        f.write("%s %s %.3f\n" % (name, what, time.time()))


def on_term(_s, _f):
    note("term")
    if not ignore:
        note("exit")
        os._exit(0)


signal.signal(signal.SIGTERM, on_term)
note("start")
time.sleep(delay)
if port:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    s.settimeout(0.1)
    while True:
        try:
            c, _ = s.accept()
            c.close()
        except socket.timeout:
            pass
else:
    while True:
        time.sleep(0.05)
