# SPDX-License-Identifier: MIT
# Hostile log destinations for tests/integration/drains_test.c:
# python3 hostile_recv.py GARBAGE_PORT NOREAD_PORT CLOSE_PORT
# On 127.0.0.1: one port answers every connection with endless garbage, one
# accepts and never reads, one closes each connection at once.
import os
import socket
import sys
import threading

held = []


def serve(port, mode):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        if mode == "close":
            c.close()
        elif mode == "noread":
            held.append(c)
        else:
            threading.Thread(target=spew, args=(c,), daemon=True).start()


def spew(c):
    try:
        while True:
            c.sendall(os.urandom(4096))
    except OSError:
        c.close()


for port, mode in zip(sys.argv[1:4], ("garbage", "noread", "close")):
    threading.Thread(target=serve, args=(int(port), mode), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
