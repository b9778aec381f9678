# Runs inside the kernel, in a private namespace: it creates no user names.
# The server sends this file with a call such as save(params) and reads the
# one line after MARKER from stdout. NB: the result keys are read by
# kernel.go; keep both in step.
import json
import sys


def _reply(marker, obj):
    sys.stdout.write("\n" + marker + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _receive_fd(p):
    # The server hands files over as open descriptors, never as paths: it
    # binds a unix socket in this kernel's own directory; we present the
    # one-time nonce and receive the descriptor (SCM_RIGHTS). See
    # handout.go.
    import os
    import socket
    path = os.path.join(p["sock_dir"], p["sock_name"])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dfd = None
    try:
        s.settimeout(60)
        if len(os.fsencode(path)) < 108:
            s.connect(path)
        else:
            # A socket path is limited to 107 bytes: go through the directory.
            dfd = os.open(p["sock_dir"], os.O_RDONLY | os.O_DIRECTORY)
            s.connect("/proc/self/fd/%d/%s" % (dfd, p["sock_name"]))
        s.sendall((p["nonce"] + "\n").encode())
        msg, fds, _, _ = socket.recv_fds(s, 1, 1)
        if msg != b"1" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise RuntimeError("the server did not hand over the checkpoint file (wrong or used nonce)")
        return fds[0]
    finally:
        s.close()
        if dfd is not None:
            os.close(dfd)


# Names IPython itself keeps in the user namespace: history can double a
# checkpoint and makes no sense in another kernel.
_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "_", "__", "___", "_ih", "_oh", "_dh"}


def _typename(obj):
    t = type(obj)
    mod = getattr(t, "__module__", "") or ""
    if mod in ("builtins", "__main__"):
        return t.__qualname__
    return mod + "." + t.__qualname__


def _skip_reason(obj):
    import io
    import socket
    import types
    if isinstance(obj, types.ModuleType):
        return "module: re-import it after loading"
    if isinstance(obj, io.IOBase):
        return "open file or stream: reopen it after loading"
    if isinstance(obj, socket.socket):
        return "socket: reconnect after loading"
    if isinstance(obj, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        return "generator or coroutine: its running state cannot be saved; recreate it after loading"
    return None


def _owners():
    # Which distributions own each top-level module. Scanning every
    # installed distribution costs 0.1-0.2 s, so the answer is kept in the
    # kernel until a directory on sys.path changes (a pip install does).
    import importlib.metadata as md
    import os
    key = []
    for d in sys.path:
        try:
            key.append((d, os.stat(d or ".").st_mtime_ns))
        except OSError:
            key.append((d, None))
    cached = getattr(md, "_mcpj_checkpoint_owners", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        owners = md.packages_distributions()
    except Exception:
        owners = {}
    md._mcpj_checkpoint_owners = (key, owners)
    return owners


def _distributions(roots):
    # The distribution (and version) of each top-level module the pickle
    # refers to. Most are named as their module (numpy, pandas, dill): asked
    # by name, in milliseconds; the others go through the full map of
    # owners (_owners). The standard library has no distribution.
    import importlib.metadata as md
    stdlib = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    out, unknown = {}, []
    for root in sorted(roots):
        if root in stdlib:
            continue
        try:
            dist = md.distribution(root)
            top = (dist.read_text("top_level.txt") or "").split()
            if top and root not in top:
                raise LookupError(root)
            out[dist.metadata["Name"]] = dist.version
        except Exception:
            unknown.append(root)
    if unknown:
        owners = _owners()
        for root in unknown:
            for name in owners.get(root, []):
                try:
                    out[name] = md.version(name)
                except Exception:
                    pass
    return out


class _Sink:
    # The save's end of a pipe to the server, which tags each chunk as it
    # arrives (hashing while we pickle) and writes the file we never see.
    # Frames (infra/checkpointfile/chunked.go ingest; keep both in step):
    # b"D" + u32 length + bytes, b"T" + u64 offset (cut back), b"E" (end).
    _MAX = 16 << 20

    def __init__(self, fd):
        self.fd = fd
        self.pos = 0

    def _send(self, b):
        import os
        mv = memoryview(b)
        while mv:
            mv = mv[os.write(self.fd, mv):]

    def write(self, b):
        import struct
        mv = memoryview(b)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = mv.nbytes
        for i in range(0, n, self._MAX):
            part = mv[i:i + self._MAX]
            head = b"D" + struct.pack(">I", len(part))
            if len(part) < 65536:
                self._send(head + bytes(part))
            else:
                self._send(head)
                self._send(part)
        self.pos += n
        return n

    def tell(self):
        return self.pos

    def cut(self, pos):
        import struct
        self._send(b"T" + struct.pack(">Q", pos))
        self.pos = pos

    def end(self):
        self._send(b"E")


def save(p):
    import os
    import dill
    ip = get_ipython()
    ns = ip.user_ns
    hidden = set(getattr(ip, "user_ns_hidden", {}))
    wanted = p.get("variables")
    if wanted:
        names = list(wanted)
    else:
        names = [n for n in ns if not n.startswith("_") and n not in _IPYTHON_NAMES and n not in hidden]
    saved, skipped, roots = [], [], set()
    import time
    t0 = time.perf_counter()
    fd = _receive_fd(p)
    try:
        f = _Sink(fd)
        pk = dill.Pickler(f, protocol=4)
        for name in names:
            if name not in ns:
                skipped.append({"name": name, "type": "", "reason": "not defined in the kernel"})
                continue
            obj = ns[name]
            why = _skip_reason(obj)
            if why:
                skipped.append({"name": name, "type": _typename(obj), "reason": why})
                continue
            pos, memo = f.tell(), len(pk.memo)
            try:
                pk.dump((name, obj))
            except Exception as e:  # one bad variable must not abort the rest
                f.cut(pos)
                # Forget what the failed dump memoised: later variables must
                # not refer back to bytes that were cut off.
                for k in [k for k, v in pk.memo.items() if v[0] >= memo]:
                    del pk.memo[k]
                pk.framer.current_frame = None
                skipped.append({"name": name, "type": _typename(obj), "reason": "%s: %s" % (type(e).__name__, e)})
                continue
            saved.append({"name": name, "type": _typename(obj), "size": f.tell() - pos})
        pk.dump(None)  # end of stream
        f.end()
        size = f.tell()
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0  # the pickling and transfer alone
    for _, o in pk.memo.values():
        m = o.__module__ if isinstance(o, type) else getattr(type(o), "__module__", None)
        if isinstance(m, str):
            roots.add(m.split(".")[0])
    roots.discard("__main__")
    roots.discard("builtins")
    roots.add("dill")
    _reply(p["marker"], {"saved": saved, "skipped": skipped, "bytes": size, "seconds": seconds,
                         "python": sys.version.split()[0], "packages": _distributions(roots)})


def _check(packages):
    import importlib.metadata as md
    missing, mismatched = [], []
    for dist, want in sorted(packages.items()):
        try:
            have = md.version(dist)
        except md.PackageNotFoundError:
            missing.append(dist + "==" + want)
            continue
        if have != want:
            mismatched.append("%s: saved with %s, kernel has %s" % (dist, want, have))
    return {"missing": missing, "mismatched": mismatched, "python": sys.version.split()[0]}


def install(p):
    import subprocess
    results = []
    for req in p["packages"]:
        try:
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                                "--no-input", "--timeout", "15", "--retries", "1", req],
                               capture_output=True, text=True, timeout=p.get("timeout", 600))
            out = (r.stdout + r.stderr).strip()
            ok = r.returncode == 0
        except Exception as e:
            out, ok = "%s: %s" % (type(e).__name__, e), False
        low = out.lower()
        no_index = any(s in low for s in ("failed to establish a new connection", "temporary failure in name resolution",
                                          "network is unreachable", "connection refused", "could not fetch url",
                                          "no matching distribution", "connecttimeout", "read timed out"))
        results.append({"package": req, "ok": ok, "no_index": (not ok) and no_index,
                        "externally_managed": "externally-managed-environment" in low,
                        "output": out[-1500:]})
    _reply(p["marker"], {"results": results})


def load(p):
    import dill
    out = {"restored": None}
    # The package check comes first, in the same execution (one round trip
    # less): with stop_on_mismatch, a difference stops the load before the
    # checkpoint is even taken, and the server decides (refuse, install).
    if "packages" in p:
        out.update(_check(p["packages"]))
        if p.get("stop_on_mismatch") and (out["missing"] or out["mismatched"]):
            _reply(p["marker"], out)
            return
    import time
    t0 = time.perf_counter()
    restored = {}
    # A pipe the server writes each chunk into once it has checked it (or,
    # for a format 1 file, a private copy of the verified payload): never
    # a path, so nothing can change the bytes between the check and here.
    with open(_receive_fd(p), "rb", buffering=1 << 20) as f:
        u = dill.Unpickler(f)
        while True:
            item = u.load()
            if item is None:
                break
            name, obj = item
            restored[name] = obj
    # NB: only once everything loaded: a failure leaves the kernel as it was.
    get_ipython().user_ns.update(restored)
    out["restored"] = list(restored)
    out["seconds"] = time.perf_counter() - t0  # the transfer and unpickling alone
    _reply(p["marker"], out)


def raw_dump(p):
    # The benchmark baseline: one dill.dump of the same objects, timed here.
    import time
    import dill
    ns = get_ipython().user_ns
    objs = {n: ns[n] for n in p["variables"]}
    t = time.perf_counter()
    with open(p["path"], "wb") as f:
        dill.dump(objs, f)
    d = time.perf_counter() - t
    t = time.perf_counter()
    with open(p["path"], "rb") as f:
        dill.load(f)
    _reply(p["marker"], {"dump_s": d, "load_s": time.perf_counter() - t})
