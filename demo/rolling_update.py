#!/usr/bin/env python3
"""The rolling-update demonstration: zero failed requests with podinit's preStop.

Everything runs on 127.0.0.1:
- a registry emulator: Eureka (status override PUT, cancel DELETE, GET of the app's
  instances), Nacos (`--registry nacos`: the v3 admin partial update, v1 PATCH, the
  client's DELETE, the instance list with `enabled`) or Consul (`--registry consul`:
  service maintenance, deregistration, the health-filtered service list);
- two instances of demo/app.py, registered UP; instance A stays, instance B is the
  one a rolling update stops. B runs under the init being compared, as PID 1 of a new
  pid namespace (unshare --pid --fork --mount-proc);
- a client that behaves like a Ribbon / Spring Cloud LoadBalancer client: it
  refreshes the registry every second, keeps the instances the registry's own
  semantics say to use (Eureka: UP; Nacos: enabled and healthy; Consul: passing
  health checks, so not in maintenance), and sends requests round-robin to them at a
  steady rate.

B is stopped with SIGTERM, as `docker stop` or the kubelet would, just after one of
the client's refreshes. Under tini the app cancels its registration and exits at
once, but the client's cache still lists B for most of a second: those requests
fail. Under podinit, preStop first marks B OUT_OF_SERVICE (Nacos: enabled=false;
Consul: maintenance) and drains for 2 s
(longer than the client's refresh), and only then does the app hear SIGTERM: no
request fails.

Usage (as root): demo/rolling_update.py [--init podinit|tini|both] [--registry eureka|nacos|consul]
                 [--podinit PATH] [--json]
"""
import argparse
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RATE = 100          # requests per second, all workers together
LOAD_BEFORE = 2.0   # seconds of load before the stop
LOAD_AFTER = 2.0    # seconds of load after B is gone
REFRESH = 1.0       # the client's registry refresh period


class Registry:
    """The emulator's state: instance id -> {port, status}; "UP" is in rotation.
    `puts` records every take-out (id, what, when)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.instances = {}
        self.puts = []

    def by_port(self, port):
        return next((i for i, v in self.instances.items() if str(v["port"]) == str(port)), None)


def eureka_server(registry):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _parts(self):
            url = urllib.parse.urlparse(self.path)
            return url, [p for p in url.path.split("/") if p]

        def _query(self, url):
            return {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}

        def do_GET(self):
            url, parts = self._parts()
            q = self._query(url)
            with registry.lock:
                items = list(registry.instances.items())
            if parts[:3] == ["eureka", "apps", "DEMO"]:
                body = [{"id": i, **v} for i, v in items]
            elif parts == ["nacos", "v1", "ns", "instance", "list"] and q.get("serviceName") == "demo":
                # Nacos's instance list: every instance, with `enabled` and `healthy`.
                hosts = [{"instanceId": i, "ip": "127.0.0.1", "port": v["port"], "enabled": v["status"] == "UP",
                          "healthy": True, "weight": 1.0} for i, v in items]
                body = {"name": "DEFAULT_GROUP@@demo", "hosts": hosts}
            elif parts == ["v1", "health", "service", "demo"]:
                # Consul's health endpoint; `?passing` drops instances in maintenance.
                entries = [{"Service": {"ID": i, "Service": "demo", "Port": v["port"]},
                            "Checks": [{"Status": "passing" if v["status"] == "UP" else "critical"}]} for i, v in items]
                if "passing" in q:
                    entries = [e for e in entries if e["Checks"][0]["Status"] == "passing"]
                body = entries
            else:
                return self._answer(404)
            self._answer(200, json.dumps(body).encode())

        def _take_out(self, ident, what, status):
            with registry.lock:
                registry.puts.append((ident, what, time.monotonic()))
                if ident not in registry.instances:
                    return 404
                registry.instances[ident]["status"] = status
            return 200

        def _nacos_instance(self, q):
            if q.get("serviceName") not in ("demo", "DEFAULT_GROUP@@demo") or q.get("ip") != "127.0.0.1":
                return None
            with registry.lock:
                return registry.by_port(q.get("port"))

        def do_PUT(self):
            url, parts = self._parts()
            q = self._query(url)
            if parts[:3] == ["eureka", "apps", "DEMO"] and len(parts) == 5 and parts[4] == "status":
                # /eureka/apps/DEMO/{id}/status?value=OUT_OF_SERVICE
                value = q.get("value", "")
                return self._answer(self._take_out(parts[3], value, value))
            if parts == ["nacos", "v3", "admin", "ns", "instance", "partial"] and q.get("enabled") in ("true", "false"):
                ident = self._nacos_instance(q)
                if ident is None:
                    return self._answer(404, b'{"code":20004,"message":"resource not found","data":"no matched ip found!"}')
                up = q["enabled"] == "true"
                self._take_out(ident, "enabled=" + q["enabled"], "UP" if up else "DISABLED")
                return self._answer(200, b'{"code":0,"message":"success","data":"ok"}')
            if parts[:4] == ["v1", "agent", "service", "maintenance"] and len(parts) == 5:
                on = q.get("enable") == "true"
                code = self._take_out(parts[4], "maintenance" if on else "maintenance off", "MAINTENANCE" if on else "UP")
                return self._answer(code)
            if parts[:4] == ["v1", "agent", "service", "deregister"] and len(parts) == 5:
                with registry.lock:
                    found = registry.instances.pop(parts[4], None) is not None
                return self._answer(200 if found else 404)
            self._answer(404)

        def do_PATCH(self):
            url, parts = self._parts()
            q = self._query(url)
            if parts == ["nacos", "v1", "ns", "instance"] and q.get("enabled") in ("true", "false"):
                ident = self._nacos_instance(q)
                if ident is None:
                    return self._answer(404, b"no matched ip found!")
                self._take_out(ident, "enabled=" + q["enabled"], "UP" if q["enabled"] == "true" else "DISABLED")
                return self._answer(200, b"ok")
            self._answer(404)

        def do_DELETE(self):
            url, parts = self._parts()
            if parts[:2] == ["nacos", "v1"]:
                ident = self._nacos_instance(self._query(url)) if parts == ["nacos", "v1", "ns", "instance"] else None
                with registry.lock:
                    found = ident is not None and registry.instances.pop(ident, None) is not None
                return self._answer(200 if found else 404, b"ok" if found else b"")
            with registry.lock:
                found = len(parts) == 4 and registry.instances.pop(parts[3], None) is not None
            self._answer(200 if found else 404)

        def _answer(self, code, body=b""):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_answering(port, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"instance on port {port} never answered")


class Client:
    """A load-balancing client with a registry cache refreshed every REFRESH seconds."""

    def __init__(self, eureka_port, kind="eureka"):
        self.eureka_port = eureka_port
        self.kind = kind
        self.up = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.failures = 0
        self.refreshes = threading.Condition()
        self.refreshed = 0
        self.refresh()

    def refresh(self):
        c = http.client.HTTPConnection("127.0.0.1", self.eureka_port, timeout=2)
        if self.kind == "nacos":
            c.request("GET", "/nacos/v1/ns/instance/list?serviceName=demo")
            hosts = json.loads(c.getresponse().read())["hosts"]
            self.up = [h["port"] for h in hosts if h["enabled"] and h["healthy"]]
        elif self.kind == "consul":
            c.request("GET", "/v1/health/service/demo?passing")
            self.up = [e["Service"]["Port"] for e in json.loads(c.getresponse().read())]
        else:
            c.request("GET", "/eureka/apps/DEMO")
            instances = json.loads(c.getresponse().read())
            self.up = [i["port"] for i in instances if i["status"] == "UP"]
        with self.refreshes:
            self.refreshed += 1
            self.refreshes.notify_all()

    def wait_for_refresh(self):
        """Returns right after the client's next registry refresh."""
        with self.refreshes:
            seen = self.refreshed
            self.refreshes.wait_for(lambda: self.refreshed > seen, timeout=5 * REFRESH)

    def refresher(self):
        while not self.stop.wait(REFRESH):
            try:
                self.refresh()
            except OSError:
                pass

    def worker(self, index, workers):
        n = 0
        interval = workers / RATE
        next_at = time.monotonic() + index * interval / workers
        while not self.stop.is_set():
            up = self.up
            if up:
                port = up[(n + index) % len(up)]
                n += 1
                ok = False
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", "/")
                    ok = c.getresponse().status == 200
                    c.close()
                except OSError:
                    ok = False
                with self.lock:
                    self.requests += 1
                    self.failures += 0 if ok else 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self, workers=4):
        self.threads = [threading.Thread(target=self.refresher, daemon=True)]
        self.threads += [threading.Thread(target=self.worker, args=(i, workers), daemon=True) for i in range(workers)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def take_out(kind, base, port_b):
    """The podinit preStop entry that takes B out of `kind`."""
    if kind == "nacos":
        return f'nacos = {{ url = "{base}/nacos", service = "demo", ip = "127.0.0.1", port = {port_b} }}'
    if kind == "consul":
        return f'consul = {{ url = "{base}", service_id = "b" }}'
    return f'eureka = {{ url = "{base}/eureka", app = "demo", instance = "b" }}'


def run(init, podinit, workdir, kind="eureka"):
    registry = Registry()
    eureka = eureka_server(registry)
    base = f"http://127.0.0.1:{eureka.server_port}"
    registry_url = {"eureka": f"{base}/eureka", "nacos": f"{base}/nacos", "consul": base}[kind]
    port_a, port_b = free_port(), free_port()
    with registry.lock:
        registry.instances = {"a": {"port": port_a, "status": "UP"}, "b": {"port": port_b, "status": "UP"}}
    app = [sys.executable, os.path.join(HERE, "app.py")]
    procs = []
    try:
        a = subprocess.Popen(app + [str(port_a), registry_url, "a", kind], stdout=subprocess.DEVNULL, start_new_session=True)
        procs.append(a)
        if init == "podinit":
            config = os.path.join(workdir, "podinit.toml")
            with open(config, "w") as f:
                f.write(
                    'grace_period = "10s"\n'
                    f'[[pre_stop]]\n{take_out(kind, base, port_b)}\ntimeout = "2s"\n'
                    '[[pre_stop]]\nsleep = "2s"\n'
                )
            init_cmd = [podinit, "-c", config, "--"]
            env = dict(os.environ, PODINIT_SOCKET=os.path.join(workdir, "podinit.sock"))
        else:
            tini = shutil.which("tini") or "/usr/bin/tini"
            init_cmd = [tini, "--"]
            env = dict(os.environ)
        b = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc"] + init_cmd + app + [str(port_b), registry_url, "b", kind],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        procs.append(b)
        wait_answering(port_a)
        wait_answering(port_b)
        client = Client(eureka.server_port, kind)
        client.start()
        time.sleep(LOAD_BEFORE)
        # Stop B just after a refresh, as a rolling update mostly does: the
        # client's cache then lists B for most of a refresh period whatever the
        # machine's speed, so a stop without preStop loses requests every time.
        client.wait_for_refresh()
        time.sleep(REFRESH / 10)
        with open(f"/proc/{b.pid}/task/{b.pid}/children") as f:
            pid1 = int(f.read().split()[0])
        stopped_at = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        code = b.wait(timeout=30)
        stop_took = time.monotonic() - stopped_at
        time.sleep(LOAD_AFTER)
        client.finish()
        stderr = b.stderr.read().decode(errors="replace")
        return {
            "init": init,
            "registry": kind,
            "requests": client.requests,
            "failures": client.failures,
            "exit_code": code,
            "stop_seconds": round(stop_took, 2),
            # Take-outs of B: Eureka OUT_OF_SERVICE, Nacos enabled=false, Consul maintenance.
            "out_of_service_puts": sum(
                1 for p in registry.puts if p[0] == "b" and p[1] in ("OUT_OF_SERVICE", "enabled=false", "maintenance")
            ),
            "init_log": stderr.strip().splitlines()[-6:],
        }
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        eureka.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", choices=["podinit", "tini", "both"], default="both")
    ap.add_argument("--registry", choices=["eureka", "nacos", "consul"], default="eureka")
    ap.add_argument("--podinit", default=os.path.join(ROOT, "target", "debug", "podinit"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.init in ("podinit", "both") and not os.path.exists(args.podinit):
        subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    inits = ["podinit", "tini"] if args.init == "both" else [args.init]
    results = []
    with tempfile.TemporaryDirectory(prefix="podinit-rolling-") as workdir:
        for init in inits:
            if init == "tini" and not (shutil.which("tini") or os.path.exists("/usr/bin/tini")):
                results.append({"init": "tini", "skipped": "tini is not installed (apt-get install tini)"})
                continue
            results.append(run(init, args.podinit, workdir, args.registry))
    if args.json:
        print(json.dumps(results))
        return
    print(f"registry: {args.registry}")
    print(f"{'init':8} {'requests':>9} {'failed':>7} {'exit':>5} {'stop took':>10}")
    for r in results:
        if "skipped" in r:
            print(f"{r['init']:8} skipped: {r['skipped']}")
        else:
            print(f"{r['init']:8} {r['requests']:9} {r['failures']:7} {r['exit_code']:5} {r['stop_seconds']:9.2f}s")


if __name__ == "__main__":
    main()
