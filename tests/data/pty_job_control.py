"""Drives podinit (not PID 1) on a real pseudo-terminal, as a shell user would.

usage: pty_job_control.py PODINIT
The child of pty.fork() is a session leader in the terminal's foreground, like
an interactive shell. It prints one line per check; the parent types ^Z when
the main process ticks, and prints everything the terminal showed.
"""
import os, pty, signal, subprocess, sys, time

podinit = sys.argv[1]
main = "i=0; while [ $i -lt 25 ]; do echo tick; i=$((i+1)); sleep 0.1; done"

pid, fd = pty.fork()
if pid == 0:
    signal.alarm(20)
    me = os.getpgrp()
    # A background job (its own process group) must not take the terminal.
    bg = subprocess.Popen([podinit, "--", "sleep", "0.5"], process_group=0)
    time.sleep(0.3)
    print("background-left-foreground=%s" % (os.tcgetpgrp(0) == me), flush=True)
    bg.wait()
    # A foreground job: ^Z stops the main process, and podinit with it.
    fg = subprocess.Popen([podinit, "--", "sh", "-c", main])
    _, status = os.waitpid(fg.pid, os.WUNTRACED)
    print("podinit-stopped=%s" % os.WIFSTOPPED(status), flush=True)
    os.kill(fg.pid, signal.SIGCONT)
    _, status = os.waitpid(fg.pid, 0)
    print("exit=%d" % os.waitstatus_to_exitcode(status), flush=True)
    print("foreground-back=%s" % (os.tcgetpgrp(0) == me), flush=True)
    os._exit(0)

seen = b""
typed = False
deadline = time.time() + 30
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not typed and b"tick" in seen:
        time.sleep(0.2)
        os.write(fd, b"\x1a")  # ^Z
        typed = True
os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace").replace("\r", ""))
