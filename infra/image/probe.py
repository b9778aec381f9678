#!/usr/bin/python3
"""infra/image/probe.py — the checks `make image-test` runs INSIDE the container.

infra/image/test.sh copies this file into a working container of the built
image and runs it there with the image's own /usr/bin/python3 (the kernels'
Python: no package beyond the standard library is used), as the image's user.
Each command prints `PASS <check>: <detail>` or `FAIL <check>: <detail>` lines
and exits non-zero when a check failed.

  probe.py uid                 the process runs as the numeric non-root uid 10001, the
                               volume is writable, no build tools are in the image
  probe.py doctor              `mcp-jupyter doctor` passes
  probe.py stdio               an MCP execute over `mcp-jupyter stdio` against a real kernel
  probe.py serve-drain         serve under tini: /health answers, the server runs as
                               10001, then SIGTERM during a short execution: exit 0
                               within MCP_SHUTDOWN_GRACE and the execution finished
  probe.py after-restart ID    a second container on the same volume sees execution
                               ID (events show, and get_execution over MCP)
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

BIN = "mcp-jupyter"
DATA = os.environ.get("MCP_DATA_DIR", "/data/mcp")
PROTOCOL = "2025-06-18"
failed = False


def report(ok, check, detail):
    global failed
    print(("PASS" if ok else "FAIL"), check + ":", detail, flush=True)
    if not ok:
        failed = True
    return ok


def grace_seconds():
    """MCP_SHUTDOWN_GRACE as seconds (the image sets e.g. 25s)."""
    g = os.environ.get("MCP_SHUTDOWN_GRACE", "25s").strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in sorted(units, key=len, reverse=True):
        if g.endswith(u):
            return float(g[: -len(u)]) * units[u]
    return float(g)


def tool_text(result):
    """The text of a tools/call result (every text content joined)."""
    parts = [c.get("text", "") for c in result.get("content", []) if c.get("type") == "text"]
    if result.get("structuredContent") is not None:
        parts.append(json.dumps(result["structuredContent"]))
    return "\n".join(parts)


# ---- MCP over stdio ---------------------------------------------------------

class StdioClient:
    """JSON-RPC lines to and from `mcp-jupyter stdio` (the MCP stdio transport)."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([BIN, "stdio", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.next_id = 0

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def call(self, method, params, timeout=120):
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{method}: the server closed stdout (exit {self.proc.poll()})")
            msg = json.loads(line)
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            # notifications (progress, logging) and server requests are not ours
        raise TimeoutError(f"{method}: no answer within {timeout}s")

    def initialize(self):
        res = self.call("initialize", {"protocolVersion": PROTOCOL, "capabilities": {},
                                       "clientInfo": {"name": "image-probe", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return res

    def tool(self, name, args, timeout=120):
        res = self.call("tools/call", {"name": name, "arguments": args}, timeout)
        if res.get("isError"):
            raise RuntimeError(f"{name}: {tool_text(res)}")
        return res

    def close(self, timeout=60):
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def kernel_id_of(result):
    sc = result.get("structuredContent") or {}
    for key in ("kernel_id", "id"):
        if sc.get(key):
            return sc[key]
    text = tool_text(result)
    try:
        return json.loads(text)["kernel_id"]
    except (ValueError, KeyError, TypeError):
        pass
    for word in text.replace('"', " ").replace(",", " ").split():
        if len(word) >= 8 and word.count("-") >= 1 and word[0].isalnum():
            return word
    raise RuntimeError("no kernel_id in start_kernel's reply: " + text[:300])


# ---- MCP over streamable HTTP -------------------------------------------------

class HTTPClient:
    def __init__(self, base, token):
        self.base, self.token, self.session, self.next_id = base, token, None, 0

    def post(self, msg, timeout=60):
        req = urllib.request.Request(self.base + "/mcp", data=json.dumps(msg).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json, text/event-stream")
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("MCP-Protocol-Version", PROTOCOL)
        if self.session:
            req.add_header("Mcp-Session-Id", self.session)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            self.session = resp.headers.get("Mcp-Session-Id") or self.session
            body = resp.read().decode()
            ctype = resp.headers.get("Content-Type", "")
        if "id" not in msg:
            return None
        msgs = []
        if ctype.startswith("text/event-stream"):
            for line in body.splitlines():
                if line.startswith("data:"):
                    msgs.append(json.loads(line[5:]))
        elif body.strip():
            msgs.append(json.loads(body))
        for m in msgs:
            if m.get("id") == msg["id"]:
                if "error" in m:
                    raise RuntimeError(f"{msg['method']}: {m['error']}")
                return m["result"]
        raise RuntimeError(f"{msg['method']}: no answer in {body[:300]!r}")

    def call(self, method, params, timeout=60):
        self.next_id += 1
        return self.post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}, timeout)

    def initialize(self):
        self.call("initialize", {"protocolVersion": PROTOCOL, "capabilities": {},
                                 "clientInfo": {"name": "image-probe", "version": "1"}})
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def tool(self, name, args, timeout=120):
        res = self.call("tools/call", {"name": name, "arguments": args}, timeout)
        if res.get("isError"):
            raise RuntimeError(f"{name}: {tool_text(res)}")
        return res


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def uid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# ---- the checks -----------------------------------------------------------------

def check_uid():
    uid, gid = os.getuid(), os.getgid()
    report(uid == 10001 and gid == 10001 and uid != 0, "uid",
           f"the container's process runs as uid {uid} gid {gid} (want 10001:10001, numeric, non-root)")
    import shutil
    tools = [t for t in ("gcc", "cc", "g++", "c++", "go", "make", "ld") if shutil.which(t)]
    report(not tools, "no-build-tools", "no compiler, linker or Go toolchain in the runtime image"
           if not tools else "the runtime image has build tools: " + ", ".join(tools))
    writable = os.access(DATA, os.W_OK)
    report(writable, "volume-writable", f"{DATA} is {'writable' if writable else 'NOT writable'} by uid {uid}")


def check_doctor():
    # Under buildah's chroot isolation the container shares the machine's
    # network, where the image's port 3000 may be taken by something else; a
    # pod has its own. doctor checks the port is free, so give it a free one.
    env = dict(os.environ, MCP_ADDR=f"0.0.0.0:{free_port()}")
    p = subprocess.run([BIN, "doctor"], capture_output=True, text=True, timeout=180, env=env)
    out = (p.stdout + p.stderr).strip()
    tail = " | ".join(out.splitlines()[-4:])
    report(p.returncode == 0, "doctor", f"exit {p.returncode}: {tail}")
    if p.returncode != 0:
        print(out)


def check_stdio():
    c = StdioClient()
    try:
        init = c.initialize()
        kid = kernel_id_of(c.tool("start_kernel", {"label": "image-stdio"}))
        res = c.tool("execute", {"kernel": kid, "code": "import sys\nv = sum(range(1, 101)) * 7\nprint('computed', v, sys.version_info[0])",
                                 "execution_id": "image-stdio-1", "timeout_s": 60})
        text = tool_text(res)
        report("computed 35350 3" in text, "mcp-stdio-execute",
               f"server {init.get('serverInfo', {}).get('name')} ran execute on kernel {kid}: "
               + ("the reply has 'computed 35350 3'" if "computed 35350 3" in text else "unexpected reply " + text[:400]))
        c.tool("shutdown_kernel", {"kernel": kid})
    except Exception as e:  # noqa: BLE001 - a probe reports every failure as FAIL
        report(False, "mcp-stdio-execute", repr(e))
    finally:
        rc = c.close()
    report(rc == 0, "mcp-stdio-exit", f"`mcp-jupyter stdio` exited {rc} after the client hung up")


def check_serve_drain():
    port = free_port()
    env = dict(os.environ, MCP_ADDR=f"127.0.0.1:{port}")
    # The image's entrypoint: tini as the parent, forwarding SIGTERM.
    tini = subprocess.Popen(["/usr/bin/tini", "--", BIN, "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open("/tmp/serve.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, health = time.monotonic() + 90, None
        while time.monotonic() < deadline and tini.poll() is None:
            try:
                health = http_get(base + "/health")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        if not report(health is not None and health[0] == 200, "health",
                      f"GET /health -> {health[0]} {health[1].strip()[:120]}" if health else
                      f"no answer within 90s (server exit {tini.poll()}): " + open('/tmp/serve.log').read()[-600:]):
            return
        # The healthcheck command the image declares answers too.
        hc = subprocess.run(["curl", "-fsS", base + "/health"], capture_output=True, text=True, timeout=10)
        report(hc.returncode == 0, "healthcheck-curl", f"curl -fsS /health exit {hc.returncode}")
        servers = children(tini.pid)
        uids = [uid_of(p) for p in servers]
        report(len(servers) == 1 and all(u and u[0] == 10001 and u[1] == 10001 for u in uids), "serve-uid",
               f"tini (pid {tini.pid}, uid {uid_of(tini.pid)[:2]}) runs the server pid {servers} as uid {[u[:2] for u in uids]}")

        with open(os.path.join(DATA, "mcp-token")) as f:
            token = f.read().strip()
        c = HTTPClient(base, token)
        c.initialize()
        kid = kernel_id_of(c.tool("start_kernel", {"label": "image-drain"}))
        res = c.tool("execute", {"kernel": kid, "execution_id": "image-drain-1", "timeout_s": 1,
                                 "code": "import time\ntime.sleep(4)\nprint('drained', 6 * 7)"})
        running = tool_text(res)
        report('"running"' in running or "running" in running, "drain-submitted",
               f"execute on kernel {kid} replied while the code sleeps: " + running[:160].replace("\n", " "))

        grace = grace_seconds()
        t0 = time.monotonic()
        tini.send_signal(signal.SIGTERM)
        try:
            rc = tini.wait(grace + 10)
        except subprocess.TimeoutExpired:
            tini.kill()
            rc = "still running"
        took = time.monotonic() - t0
        report(rc == 0 and took <= grace, "sigterm-drain",
               f"SIGTERM to tini: exit {rc} after {took:.1f}s (MCP_SHUTDOWN_GRACE {grace:g}s)")
        show = subprocess.run([BIN, "events", "show", "image-drain-1"], capture_output=True, text=True, timeout=60)
        story = show.stdout + show.stderr
        finished = "drained 42" in story and ("ExecutionFinished" in story or "finished" in story.lower())
        report(show.returncode == 0 and finished, "drain-finished",
               "the log shows image-drain-1 finished with 'drained 42'" if finished else "events show: " + story[-800:])
    except Exception as e:  # noqa: BLE001
        report(False, "serve-drain", repr(e) + f" (data dir: {sorted(os.listdir(DATA))})"
               + " | server log: " + open("/tmp/serve.log").read()[-600:])
    finally:
        if tini.poll() is None:
            tini.kill()
            tini.wait()


def check_after_restart(exec_id):
    show = subprocess.run([BIN, "events", "show", exec_id], capture_output=True, text=True, timeout=60)
    story = show.stdout + show.stderr
    report(show.returncode == 0 and "drained 42" in story, "volume-events",
           f"a new container's `mcp-jupyter events show {exec_id}` tells the earlier execution"
           if "drained 42" in story else "events show: " + story[-600:])
    c = StdioClient()
    try:
        c.initialize()
        text = tool_text(c.tool("get_execution", {"execution_id": exec_id}))
        kernels = tool_text(c.tool("list_kernels", {"label": "image-drain"}))
        report("drained 42" in text, "volume-mcp",
               f"get_execution {exec_id} over MCP in the new container: "
               + ("has 'drained 42'" if "drained 42" in text else text[:400]))
        report("image-drain" in kernels, "volume-kernel",
               "list_kernels shows the earlier container's kernel (label image-drain): " + " ".join(kernels.split())[:240])
    except Exception as e:  # noqa: BLE001
        report(False, "volume-mcp", repr(e))
    finally:
        c.close()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    # The container's root directory (device:inode, the same seen from the
    # machine and from any mount namespace inside): test.sh ends what is left
    # running on it (under buildah's chroot isolation a container has no PID
    # namespace of its own).
    st = os.stat("/")
    print(f"ROOT {st.st_dev}:{st.st_ino}", flush=True)
    if cmd == "uid":
        check_uid()
    elif cmd == "doctor":
        check_doctor()
    elif cmd == "stdio":
        check_stdio()
    elif cmd == "serve-drain":
        check_serve_drain()
    elif cmd == "after-restart" and len(sys.argv) == 3:
        check_after_restart(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
