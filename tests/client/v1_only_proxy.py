#!/usr/bin/env python3
"""A v1-only server in front of a v2 one: answers every v2 request (codes 200-207) as a server
that does not know them (the v1 error 02 28 23 00 00 00 00) and forwards everything else.
What a downgrade looks like to a client: an attacker or operator putting an old server (or
this filter) on the address where a v2 server was.
Usage: v1_only_proxy.py LISTEN_PORT UPSTREAM_PORT READY_FILE   (127.0.0.1 only)"""
import socket
import struct
import sys
import threading

V1_ERROR = bytes([0x02, 0x28, 0x23, 0, 0, 0, 0])
MAX_DISCARD = 65536


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            raise EOFError
        data += piece
    return data


def pump(source, target):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, upstream_port):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    try:
        while True:
            header = read_exactly(client, 22)
            code = header[17]
            (size,) = struct.unpack_from("<I", header, 18)
            if 200 <= code <= 207:
                if size > MAX_DISCARD:
                    client.sendall(V1_ERROR)
                    break
                read_exactly(client, size)
                client.sendall(V1_ERROR)
                continue
            upstream.sendall(header)
            left = size
            while left:
                piece = client.recv(min(left, 65536))
                if not piece:
                    raise EOFError
                upstream.sendall(piece)
                left -= len(piece)
    except (EOFError, OSError):
        pass
    finally:
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    listen_port, upstream_port, ready_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(64)
    with open(ready_file, "w") as ready:
        ready.write(str(listener.getsockname()[1]))
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
