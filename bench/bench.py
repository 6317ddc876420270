#!/usr/bin/env python3
"""podinit against tini, tini-static, dumb-init and catatonit, in one run on one machine.

Run through bench/run.sh, which installs the peers and builds podinit first. Every
figure is measured here, now; ratios are to tini-static measured in the same run.
Writes bench/RESULTS.md (the table the README quotes) and bench/out/raw.json.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
HELPERS = os.path.join(OUT, "helpers")
SMALL = os.path.join(ROOT, "target/small/x86_64-unknown-linux-musl/release/podinit")
SMALL_ARM = os.path.join(ROOT, "target/small/aarch64-unknown-linux-musl/release/podinit")
PLAIN = os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/podinit")

# name -> argv before the main command. podinit is the shipped build (scripts/build-small.sh).
# Every measurement runs each init as PID 1 of its own pid namespace, except the second
# start-up row, which runs each as a subreaper (SUBREAPER): like with like either way.
INITS = {
    "podinit": [SMALL, "--"],
    "tini-static": ["/usr/bin/tini-static", "--"],
    "tini": ["/usr/bin/tini", "--"],
    "dumb-init": ["/usr/bin/dumb-init", "--"],
    "catatonit": ["/usr/bin/catatonit", "--"],
}
# The same inits outside PID 1, each as a child subreaper as its docs ask: tini without -s
# warns on every start (3 lines on stderr), which once made podinit look 0.77x of it.
# podinit and catatonit become subreapers by themselves (podinit accepts -s as tini does);
# dumb-init has no subreaper mode and runs as a plain parent.
SUBREAPER = {
    "podinit": [SMALL, "-s", "--"],
    "tini-static": ["/usr/bin/tini-static", "-s", "--"],
    "tini": ["/usr/bin/tini", "-s", "--"],
    "dumb-init": ["/usr/bin/dumb-init", "--"],
    "catatonit": ["/usr/bin/catatonit", "--"],
}
PID1 = ["unshare", "--pid", "--fork", "--mount-proc"]
BASE = "tini-static"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def start_pid1(argv, **kw):
    """Starts argv as PID 1 of a new pid namespace; returns (unshare Popen, init's host pid)."""
    p = subprocess.Popen([*PID1, *argv], stderr=subprocess.DEVNULL, **kw)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
            if kids:
                return p, int(kids[0])
        except OSError:
            pass
        time.sleep(0.005)
    p.kill()
    raise RuntimeError(f"{argv[0]} did not start under unshare")


def stop(p, pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    p.wait(timeout=30)


def proc_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise KeyError(name)


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure_size():
    sizes = {name: os.path.getsize(argv[0]) for name, argv in INITS.items()}
    sizes["podinit (plain static build)"] = os.path.getsize(PLAIN)
    sizes["podinit (aarch64)"] = os.path.getsize(SMALL_ARM)
    return sizes


def check_quiet(argvs):
    """No init may warn at start in the mode it is measured in (a warning costs a write and
    means it is not set up as its docs ask)."""
    for name, argv in argvs.items():
        out = subprocess.run([*argv, "/bin/true"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0 or "warn" in out.stderr.lower():
            raise RuntimeError(f"{' '.join(argv)} /bin/true: exit {out.returncode}, stderr {out.stderr.strip()!r}")


def measure_startup(runs, argvs, tag, rounds=5):
    """`INIT -- true`, wall time, hyperfine without a shell; medians in ms. In `rounds`
    rounds, each init first in one of them, so that a change in the machine's load
    during the run does not favour whichever init is timed in a quiet moment."""
    check_quiet(argvs)
    path = os.path.join(OUT, f"hyperfine-{tag}.json")
    times = {name: [] for name in argvs}
    names = list(argvs)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        cmds = [" ".join([*argvs[n], "/bin/true"]) for n in order]
        subprocess.run(
            ["hyperfine", "-N", "--warmup", "10", "--runs", str(max(10, runs // rounds)), "--export-json", path,
             "--style", "none", *cmds],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(path) as f:
            for name, result in zip(order, json.load(f)["results"]):
                times[name] += result["times"]
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def full_config(tmp):
    """Every section podinit has, none of which needs the network until stop."""
    path = os.path.join(tmp, "full.toml")
    with open(path, "w") as f:
        f.write(
            f"""grace_period = "30s"
restart = "on-failure"
[main]
command = ["sleep", "1000"]
env = {{ APP_MODE = "bench" }}
[[init]]
name = "prepare"
exec = ["true"]
[[post_start]]
name = "announce"
exec = ["true"]
[[pre_stop]]
name = "out-of-service"
eureka = {{ url = "http://admin:secret@127.0.0.1:1/eureka", app = "bench", instance = "bench-1" }}
timeout = "2s"
[[pre_stop]]
name = "drain"
sleep = "5s"
[probe.liveness]
exec = ["true"]
period = "10s"
[probe.readiness]
tcp = "127.0.0.1:1"
period = "10s"
"""
        )
    return path


def sidecar(name, argv, extra=""):
    """An `[[init]]` sidecar (restart = "always") running argv."""
    return f'[[init]]\nname = "{name}"\nexec = {json.dumps(argv)}\nrestart = "always"\n{extra}'


def sidecars_config(tmp):
    """The main process and two sidecars, all `sleep`, no probes, no hooks."""
    path = os.path.join(tmp, "sidecars.toml")
    with open(path, "w") as f:
        f.write('[main]\ncommand = ["sleep", "1000"]\n'
                + sidecar("a", ["sleep", "1000"]) + sidecar("b", ["sleep", "1000"]))
    return path


def measure_idle(tmp, seconds):
    """VmRSS while supervising `sleep`, and context switches over `seconds` of idling."""
    procs = {name: start_pid1([*argv, "sleep", "1000"]) for name, argv in INITS.items()}
    own = dict(os.environ, PODINIT_SOCKET=os.path.join(tmp, "full.sock"))
    procs["podinit, full config"] = start_pid1([SMALL, "-c", full_config(tmp)], env=own)
    own = dict(os.environ, PODINIT_SOCKET=os.path.join(tmp, "sidecars.sock"))
    procs["podinit, two sidecars"] = start_pid1([SMALL, "-c", sidecars_config(tmp)], env=own)
    time.sleep(2)
    fields = ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    before = {n: sum(proc_field(pid, f) for f in fields) for n, (_, pid) in procs.items()}
    time.sleep(seconds)
    result = {}
    for n, (p, pid) in procs.items():
        after = sum(proc_field(pid, f) for f in fields)
        result[n] = {"rss_kib": proc_field(pid, "VmRSS"), "wakeups": after - before[n]}
        stop(p, pid)
    return result


def cpu_ns(pid):
    """CPU time the process has run, in ns (/proc/PID/schedstat: exact, unlike ticks)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def measure_forwarding(tmp, signals, rounds):
    """SIGTERM to the init -> arrival in the main process (sigwaitinfo), in µs,
    and the init's own CPU time per forwarded signal (schedstat), in µs."""
    lat = {name: [] for name in INITS}
    cpu = {name: [] for name in INITS}
    for r in range(rounds):
        for name, argv in INITS.items():
            fifo = os.path.join(tmp, f"lat-{name}-{r}")
            os.mkfifo(fifo)
            p, pid = start_pid1([*argv, HELPERS, "waitsig", fifo])
            time.sleep(0.05)  # let the init settle: start-up is not forwarding
            before = cpu_ns(pid)
            out = subprocess.run(
                [HELPERS, "siglat", str(pid), fifo, str(signals + 100)], capture_output=True, text=True, timeout=60
            )
            used = cpu_ns(pid) - before
            stop(p, pid)
            if out.returncode != 0:
                raise RuntimeError(f"siglat under {name}: {out.stderr.strip()}")
            lat[name].append([int(x) / 1000 for x in out.stdout.split()[100:]])  # 100 warm-up signals
            cpu[name].append(used / 1000 / (signals + 100))
    return {
        name: {
            "p50_us": statistics.median(pct(r, 0.5) for r in rs),
            "p99_us": statistics.median(pct(r, 0.99) for r in rs),
            "cpu_us": statistics.median(cpu[name]),
        }
        for name, rs in lat.items()
    }


def measure_reaping(tmp, orphans, rounds):
    """A main process that makes `orphans` short-lived orphans for PID 1."""
    runs = {name: [] for name in INITS}
    for r in range(rounds):
        for name, argv in INITS.items():
            out = os.path.join(tmp, f"reap-{name}-{r}")
            p, pid = start_pid1([*argv, HELPERS, "orphans", str(orphans), out])
            if p.wait(timeout=300) != 0:
                raise RuntimeError(f"the orphan maker under {name} failed")
            with open(out) as f:
                ns, peak = f.read().split()
            runs[name].append((int(ns) / 1e6, int(peak)))
    return {
        name: {"ms": statistics.median(x[0] for x in rs), "peak": statistics.median(x[1] for x in rs)}
        for name, rs in runs.items()
    }


def read_u64(fd):
    data = b""
    while len(data) < 8:
        chunk = os.read(fd, 8 - len(data))
        if not chunk:
            return None
        data += chunk
    return int.from_bytes(data, sys.byteorder)


def measure_stop_precision(tmp, rounds):
    """podinit only (the peers have no preStop and no grace deadline of their own)."""
    after_pre_stop, after_grace = [], []
    for r in range(rounds):
        stamp = os.path.join(tmp, f"stamp-{r}")
        cfg = os.path.join(tmp, f"stop-{r}.toml")
        with open(cfg, "w") as f:
            f.write(f'[[pre_stop]]\nsleep = "100ms"\n[[pre_stop]]\nexec = ["{HELPERS}", "stamp", "{stamp}"]\n')
        fifo = os.path.join(tmp, f"stop-{r}")
        os.mkfifo(fifo)
        p, pid = start_pid1([SMALL, "-c", cfg, "--", HELPERS, "waitsig", fifo])
        fd = os.open(fifo, os.O_RDONLY)
        read_u64(fd)
        os.kill(pid, 15)
        arrived = read_u64(fd)
        os.close(fd)
        stop(p, pid)
        with open(stamp) as f:
            after_pre_stop.append((arrived - int(f.read())) / 1e6)
    grace = 1.0
    for r in range(rounds // 2):
        fifo = os.path.join(tmp, f"grace-{r}")
        os.mkfifo(fifo)
        p, pid = start_pid1([SMALL, "--grace", "1s", "--", HELPERS, "ignore", fifo])
        fd = os.open(fifo, os.O_RDONLY)
        read_u64(fd)
        sent = time.monotonic_ns()
        os.kill(pid, 15)
        while os.read(fd, 64):
            pass
        died = time.monotonic_ns()
        os.close(fd)
        p.wait(timeout=30)
        after_grace.append((died - sent) / 1e6 - grace * 1000)
    return {
        "stop_after_pre_stop_ms": {"p50": statistics.median(after_pre_stop), "max": max(after_pre_stop)},
        "kill_after_grace_ms": {"p50": statistics.median(after_grace), "max": max(after_grace)},
    }


def read_records(path):
    """`NAME what NS` lines (bench/helpers.c record) -> {"NAME what": ns}, the first of each."""
    out = {}
    with open(path) as f:
        for line in f:
            name, what, ns = line.split()
            out.setdefault(f"{name} {what}", int(ns))
    return out


def measure_sidecar_stop(tmp, rounds):
    """Main process + sidecars a, b (docs/lifecycle.md L32), podinit only. On SIGTERM: the
    main process's preStop (100 ms sleep, then a stamp), its stop signal; it exits 100 ms
    after it; b gets its stop signal, exits 100 ms later; a gets its stop signal, ignores
    it and is killed. Each moment against the one the rules give: main's stop signal at
    its preStop's end, b's at main's exit, a's at b's exit, a's SIGKILL at the later of
    the grace deadline and a's stop signal + 2 s. Grace 3 s (the deadline rules) and 1 s
    (the 2 s floor rules), alternately. Lateness in ms."""
    late = {"main_term": [], "b_term": [], "a_term": [], "a_kill": []}
    kill_rule = {}
    for r in range(rounds):
        grace = 3.0 if r % 2 == 0 else 1.0
        rec, stamp, fifo = (os.path.join(tmp, f"sc-{x}-{r}") for x in ("rec", "stamp", "fifo"))
        os.mkfifo(fifo)
        cfg = os.path.join(tmp, f"sc-stop-{r}.toml")
        with open(cfg, "w") as f:
            f.write(
                f'grace_period = "{grace:.0f}s"\n[main]\ncommand = {json.dumps([HELPERS, "record", "main", rec, "100"])}\n'
                + sidecar("a", [HELPERS, "record", "a", rec, "-1", fifo])
                + sidecar("b", [HELPERS, "record", "b", rec, "100"])
                + f'[[pre_stop]]\nsleep = "100ms"\n[[pre_stop]]\nexec = {json.dumps([HELPERS, "stamp", stamp])}\n'
            )
        own = dict(os.environ, PODINIT_SOCKET=os.path.join(tmp, f"sc-{r}.sock"))
        p, pid = start_pid1([SMALL, "-c", cfg], env=own)
        fd = os.open(fifo, os.O_RDONLY)
        deadline = time.monotonic() + 10
        while "main start" not in (read_records(rec) if os.path.exists(rec) else {}):
            if time.monotonic() > deadline:
                stop(p, pid)
                raise RuntimeError("the main process did not start beside its sidecars")
            time.sleep(0.01)
        time.sleep(0.1)
        sent = time.monotonic_ns()
        os.kill(pid, 15)
        while os.read(fd, 64):
            pass
        died = time.monotonic_ns()
        os.close(fd)
        if p.wait(timeout=30) != 0:
            raise RuntimeError(f"podinit with sidecars exited {p.returncode}, not 0 (the main process's)")
        t = read_records(rec)
        with open(stamp) as f:
            pre_stop_end = int(f.read())
        due_kill = max(sent + int(grace * 1e9), t["a term"] + 2_000_000_000)
        kill_rule["grace deadline" if sent + int(grace * 1e9) >= t["a term"] + 2_000_000_000 else "stop signal + 2 s"] = 1
        late["main_term"].append((t["main term"] - pre_stop_end) / 1e6)
        late["b_term"].append((t["b term"] - t["main exit"]) / 1e6)
        late["a_term"].append((t["a term"] - t["b exit"]) / 1e6)
        late["a_kill"].append((died - due_kill) / 1e6)
    out = {k: {"p50": statistics.median(v), "max": max(v), "min": min(v)} for k, v in late.items()}
    out["kill_rules"] = sorted(kill_rule)
    out["runs"] = rounds
    return out


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def ratio(v, base):
    return f"{v / base:.2f}x" if base else "-"


def report(r):
    s, st, idle, fw, rp, sp = r["size"], r["startup_ms"], r["idle"], r["forwarding"], r["reaping"], r["stop"]
    ss = r["startup_subreaper_ms"]
    names = list(INITS)
    rows = [
        ("binary size (bytes)", lambda n: f"{s[n]:,}", lambda n: ratio(s[n], s[BASE])),
        ("`INIT -- true` as PID 1 (ms, median)", lambda n: f"{st[n]:.3f}", lambda n: ratio(st[n], st[BASE])),
        ("`INIT -s -- true` as a subreaper (ms, median)", lambda n: f"{ss[n]:.3f}", lambda n: ratio(ss[n], ss[BASE])),
        ("VmRSS supervising `sleep` (KiB)", lambda n: f"{idle[n]['rss_kib']:,}",
         lambda n: ratio(idle[n]["rss_kib"], idle[BASE]["rss_kib"])),
        (f"wake-ups in {r['idle_seconds']} s idle", lambda n: str(idle[n]["wakeups"]), lambda n: ""),
        ("SIGTERM forwarding p50 (µs)", lambda n: f"{fw[n]['p50_us']:.1f}",
         lambda n: ratio(fw[n]["p50_us"], fw[BASE]["p50_us"])),
        ("SIGTERM forwarding p99 (µs)", lambda n: f"{fw[n]['p99_us']:.1f}",
         lambda n: ratio(fw[n]["p99_us"], fw[BASE]["p99_us"])),
        ("init CPU per forwarded signal (µs)", lambda n: f"{fw[n]['cpu_us']:.2f}",
         lambda n: ratio(fw[n]["cpu_us"], fw[BASE]["cpu_us"])),
        (f"reap {r['orphans']:,} orphans (ms)", lambda n: f"{rp[n]['ms']:.0f}",
         lambda n: ratio(rp[n]["ms"], rp[BASE]["ms"])),
        ("peak unreaped orphans", lambda n: f"{rp[n]['peak']:.0f}", lambda n: ""),
    ]
    lines = [
        "# podinit benchmarks",
        "",
        f"Measured {r['date']} on {r['machine']} by `bench/run.sh` (one command; it installs the",
        "peers from Debian, builds podinit, and writes this file and `bench/out/raw.json`).",
        f"podinit is the shipped static build ({os.path.relpath(SMALL, ROOT)}); ratios are to",
        "tini-static measured in the same run (below 1 is better for podinit).",
        f"Load average (1 min) on {os.cpu_count()} CPUs: {r['load_before']:.1f} before the run, {r['load_after']:.1f} after"
        + (" (a loaded machine: other work inflates and scatters the times; ratios hold better than"
           " absolute figures)." if max(r["load_before"], r["load_after"]) > 0.5 * os.cpu_count() else "."),
        "",
        "| measure | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    for label, val, rat in rows:
        cells = [val(n) + (f" ({rat(n)})" if rat(n) and n != BASE else "") for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    plain = s["podinit (plain static build)"]
    full = idle["podinit, full config"]
    sc = idle["podinit, two sidecars"]
    ss_ = r["sidecar_stop"]
    lines += [
        "",
        f"- podinit's plain `cargo build --release --target x86_64-unknown-linux-musl`: {plain:,} bytes;",
        "  the shipped build (scripts/build-small.sh, std rebuilt with panic=immediate-abort) is the one above.",
        f"- The same shipped build for aarch64 (`scripts/build-small.sh --target aarch64-unknown-linux-musl`):"
        f" {s['podinit (aarch64)']:,} bytes ({ratio(s['podinit (aarch64)'], s[BASE])} of tini-static, x86_64).",
        f"- podinit with a full config (init step, postStart, preStop Eureka + drain, two probes every 10 s):",
        f"  VmRSS {full['rss_kib']:,} KiB, {full['wakeups']} wake-ups in {r['idle_seconds']} s (its probes ran).",
        f"- Stop precision (podinit only; the peers have neither preStop nor a grace deadline):",
        f"  stop signal after the last preStop action ended: p50 {sp['stop_after_pre_stop_ms']['p50']:.2f} ms,"
        f" max {sp['stop_after_pre_stop_ms']['max']:.2f} ms (goal 5 ms);",
        f"  SIGKILL after the grace deadline: p50 {sp['kill_after_grace_ms']['p50']:.2f} ms,"
        f" max {sp['kill_after_grace_ms']['max']:.2f} ms (goal 20 ms).",
        f"- podinit with two sidecars (main process and two `[[init]]` sidecars, all `sleep`, no probes):",
        f"  VmRSS {sc['rss_kib']:,} KiB ({sc['rss_kib'] - full['rss_kib']:+,} KiB against the full config; goal"
        f" within 64 KiB), {sc['wakeups']} wake-ups in {r['idle_seconds']} s (goal 0).",
        f"- Stop of a main process and two sidecars a, b (docs/lifecycle.md L32; podinit only), {ss_['runs']} runs,"
        " grace 3 s and 1 s alternately; the main process and b exit 100 ms after their stop signal, a ignores"
        " it; each moment's lateness against the rules, p50 / max (ms):"
        f" main's stop signal after its preStop ended {ss_['main_term']['p50']:.2f} / {ss_['main_term']['max']:.2f};"
        f" b's after the main process exited {ss_['b_term']['p50']:.2f} / {ss_['b_term']['max']:.2f};"
        f" a's after b exited {ss_['a_term']['p50']:.2f} / {ss_['a_term']['max']:.2f};"
        f" a's SIGKILL after the later of the grace deadline and its stop signal + 2 s"
        f" (the later one in these runs: {' and '.join(ss_['kill_rules'])})"
        f" {ss_['a_kill']['p50']:.2f} / {ss_['a_kill']['max']:.2f} (goal 20 ms). Times are CLOCK_MONOTONIC,"
        " written by the processes themselves (bench/helpers.c record); a's death is when the bench sees EOF on"
        " a pipe a held open.",
        f"- Forwarding: {r['signals']:,} signals per run after 100 warm-up, {r['forwarding_rounds']} runs, median of the"
        " runs' percentiles; each signal is sent when the last one has arrived (sigwaitinfo in the main process)."
        " CPU per signal is the init's own run time (/proc/PID/schedstat) over the run, divided by the signals.",
        f"- Reaping: the main process makes {r['orphans']:,} orphans in bursts of 100 (a child forks 100 that"
        " exit at once, then exits, so PID 1 inherits 100 zombies together); time until PID 1 has no child"
        " but the main process, and the most orphans seen waiting (children of PID 1, sampled after each"
        f" burst); median of {r['rounds']} runs. Fork-bound: every init keeps up.",
        "- Every init runs as PID 1 of its own pid namespace (`unshare --pid --fork --mount-proc`), start-up"
        " included (hyperfine -N, in 5 rounds that each start with another init, median of all runs; the"
        " row includes unshare's own cost, the same for every init). The second"
        " start-up row runs each outside PID 1 as a child subreaper, as its docs ask: `-s` for tini and"
        " tini-static (without it tini warns on every start), `-s` for podinit (a subreaper by itself; -s is"
        " accepted as tini's), catatonit a subreaper by itself, dumb-init, which has no subreaper mode, as a plain"
        " parent. No init prints a warning in either mode (checked before timing); podinit logs its two"
        " lifecycle events (Started, Exited) on stderr, as it does by default.",
        "",
        "## Goals",
        "",
    ]
    goals = [
        ("size <= 700 KiB", s["podinit"] <= 700 * 1024),
        ("aarch64 size <= 700 KiB", s["podinit (aarch64)"] <= 700 * 1024),
        ("start-up as PID 1 <= 1.05x tini-static", st["podinit"] <= 1.05 * st[BASE]),
        ("start-up as a subreaper <= 1.05x tini-static", ss["podinit"] <= 1.05 * ss[BASE]),
        ("VmRSS <= tini-static", idle["podinit"]["rss_kib"] <= idle[BASE]["rss_kib"]),
        ("VmRSS with a full config <= tini-static", full["rss_kib"] <= idle[BASE]["rss_kib"]),
        ("0 idle wake-ups", idle["podinit"]["wakeups"] == 0),
        ("forwarding p50 <= tini's", fw["podinit"]["p50_us"] <= fw["tini"]["p50_us"]),
        ("forwarding p99 <= tini's", fw["podinit"]["p99_us"] <= fw["tini"]["p99_us"]),
        ("reaping time <= tini's", rp["podinit"]["ms"] <= rp["tini"]["ms"]),
        ("peak unreaped orphans <= tini's", rp["podinit"]["peak"] <= rp["tini"]["peak"]),
        ("stop signal within 5 ms of preStop's end", sp["stop_after_pre_stop_ms"]["max"] <= 5),
        ("SIGKILL within 20 ms of the grace deadline", sp["kill_after_grace_ms"]["max"] <= 20),
        ("0 idle wake-ups with two sidecars", sc["wakeups"] == 0),
        ("VmRSS with two sidecars within 64 KiB of the full config's", sc["rss_kib"] <= full["rss_kib"] + 64),
        ("stop of main + two sidecars: every stop signal and SIGKILL within 20 ms of when the rules say",
         all(ss_[k]["max"] <= 20 for k in ("main_term", "b_term", "a_term", "a_kill"))),
        ("stop of main + two sidecars: no stop signal before its time (order of L32)",
         all(ss_[k]["min"] >= 0 for k in ("main_term", "b_term", "a_term"))),
    ]
    lines += [f"- {'met' if ok else 'MISSED'}: {goal}" for goal, ok in goals]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--forwarding-rounds", type=int, default=9, help="latency is noisy on a VM: more runs")
    ap.add_argument("--orphans", type=int, default=10000)
    ap.add_argument("--idle-seconds", type=int, default=10)
    ap.add_argument("--startup-runs", type=int, default=500)
    ap.add_argument("--sidecar-rounds", type=int, default=6, help="stop runs with two sidecars (about 3 s each)")
    ap.add_argument("--only-sidecars", action="store_true", help="only the sidecar figures, printed (no RESULTS.md)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.only_sidecars:
        with tempfile.TemporaryDirectory(prefix="podinit-bench-") as tmp:
            os.environ["PODINIT_SOCKET"] = os.path.join(tmp, "podinit.sock")
            idle = measure_idle(tmp, args.idle_seconds)
            print(json.dumps({"idle": idle, "sidecar_stop": measure_sidecar_stop(tmp, args.sidecar_rounds)}, indent=1))
        return
    r = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rounds": args.rounds,
        "signals": args.signals,
        "forwarding_rounds": args.forwarding_rounds,
        "orphans": args.orphans,
        "idle_seconds": args.idle_seconds,
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="podinit-bench-") as tmp:
        # podinit's control socket in a directory of the run's own: at the default
        # /run/podinit.sock, anything else on the machine that talks to a podinit (or
        # holds that path) would wake it up or change its start-up.
        os.environ["PODINIT_SOCKET"] = os.path.join(tmp, "podinit.sock")
        log("sizes")
        r["size"] = measure_size()
        log("start-up as PID 1 (hyperfine)")
        r["startup_ms"] = measure_startup(args.startup_runs, {n: [*PID1, *a] for n, a in INITS.items()}, "pid1")
        log("start-up as a subreaper (hyperfine)")
        r["startup_subreaper_ms"] = measure_startup(args.startup_runs, SUBREAPER, "subreaper")
        log(f"memory and {args.idle_seconds} s of idling")
        r["idle"] = measure_idle(tmp, args.idle_seconds)
        log("signal forwarding latency")
        r["forwarding"] = measure_forwarding(tmp, args.signals, args.forwarding_rounds)
        log(f"reaping {args.orphans} orphans")
        r["reaping"] = measure_reaping(tmp, args.orphans, args.rounds)
        log("stop precision")
        r["stop"] = measure_stop_precision(tmp, 20)
        log("stop precision with two sidecars")
        r["sidecar_stop"] = measure_sidecar_stop(tmp, args.sidecar_rounds)
    r["load_after"] = os.getloadavg()[0]
    with open(os.path.join(OUT, "raw.json"), "w") as f:
        json.dump(r, f, indent=1)
    text = report(r)
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
