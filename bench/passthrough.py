"""A bare pass-through proxy: the floor under the classroom gateway's overhead.

What any proxy built on the same standard-library parts pays for one extra loopback hop: the
same keep-alive handler base as the gateway (`_serving.RoutingHandler`), a pooled
`http.client` connection upstream, the body passed on as it came, no token, no ledger, no
validation. Run as its own process: `python -m bench.passthrough UPSTREAM_URL`; it prints
its URL, then serves until killed.
"""

from __future__ import annotations

import http.client
import queue
import sys
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from mai_image_nb._serving import RoutingHandler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def serve(upstream: str) -> None:
    parts = urlsplit(upstream)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue()

    class Handler(RoutingHandler):
        def dispatch(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                conn = idle.get_nowait()
            except queue.Empty:
                conn = http.client.HTTPConnection(host, port, timeout=120)
            headers = {"Content-Type": "application/json",
                       "Authorization": self.headers.get("Authorization", "")}  # fmt: skip
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            idle.put(conn)
            head = (f"HTTP/1.1 {response.status} {response.reason}\r\nContent-Type: "
                    f"{response.getheader('Content-Type', '')}\r\nContent-Length: {len(data)}"
                    "\r\n\r\n")  # fmt: skip
            self.wfile.write(head.encode("latin-1") + data)

    server = _Server(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1])
