"""A stand-in service instance for the rolling-update demo.

Answers GET / with 200. On SIGTERM it does what a Spring Boot app with a
Eureka client does on shutdown: it cancels its registration, then stops
accepting at once (here: exits, so new connections are refused).
Usage: app.py PORT EUREKA_URL INSTANCE_ID
"""
import http.server
import os
import signal
import sys
import urllib.request

port, eureka, instance = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {instance}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def on_term(signum, frame):
    try:
        req = urllib.request.Request(f"{eureka}/apps/DEMO/{instance}", method="DELETE")
        urllib.request.urlopen(req, timeout=1).close()
    except OSError:
        pass
    os._exit(0)


signal.signal(signal.SIGTERM, on_term)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(f"app {instance}: listening on 127.0.0.1:{port}", flush=True)
server.serve_forever()
