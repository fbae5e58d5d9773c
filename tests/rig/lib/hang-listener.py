#!/usr/bin/python3
"""The fault-hang node's "sshd": accepts TCP connections on ADDR:PORT and
never answers (no SSH banner, nothing read is ever replied to), holding every
connection open until the client gives up.

    hang-listener.py ADDR PORT PIDFILE
"""
import os
import selectors
import socket
import sys

addr, port, pidfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, port))
srv.listen(512)
with open(pidfile, "w") as f:
    f.write(f"{os.getpid()}\n")
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is srv:
            conn, _ = srv.accept()
            sel.register(conn, selectors.EVENT_READ)
        else:
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:  # the client went away
                sel.unregister(key.fileobj)
                key.fileobj.close()
