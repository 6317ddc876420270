"""A stand-in service instance for the rolling-update demo.

Answers GET / with 200. On SIGTERM it does what a Spring Boot app with a
registry client does on shutdown: it cancels its registration (Eureka: DELETE
of the instance; Nacos: DELETE /v1/ns/instance; Consul: deregistration), then
stops accepting at once (here: exits, so new connections are refused).
Usage: app.py PORT REGISTRY_URL INSTANCE_ID [eureka|nacos|consul]
"""
import http.server
import os
import signal
import sys
import urllib.request

port, registry, instance = int(sys.argv[1]), sys.argv[2], sys.argv[3]
kind = sys.argv[4] if len(sys.argv) > 4 else "eureka"


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
        if kind == "nacos":
            url, method = f"{registry}/v1/ns/instance?serviceName=demo&ip=127.0.0.1&port={port}", "DELETE"
        elif kind == "consul":
            url, method = f"{registry}/v1/agent/service/deregister/{instance}", "PUT"
        else:
            url, method = f"{registry}/apps/DEMO/{instance}", "DELETE"
        req = urllib.request.Request(url, method=method)
        urllib.request.urlopen(req, timeout=1).close()
    except OSError:
        pass
    os._exit(0)


signal.signal(signal.SIGTERM, on_term)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(f"app {instance}: listening on 127.0.0.1:{port}", flush=True)
server.serve_forever()
