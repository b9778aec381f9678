"""The baseline half of BenchmarkSDKStdioExecute (cmd/mcp-jupyter):
jupyter_client, as a Python program drives a kernel without any server,
starts a kernel of the same kernelspec (JUPYTER_PATH decides which) and
times execute_interactive("1+1").

    JUPYTER_PATH=... /usr/bin/python3 execute_bench.py

It prints "ready" once a warm-up execute came back ok, then for each line N
on stdin runs N executes and prints their latencies in microseconds as one
JSON array; "quit" (or the end of stdin) shuts the kernel down and ends.
"""

import json
import sys
import time

from jupyter_client.manager import start_new_kernel


def quiet(msg):
    """Output hook: the outputs are not printed (stdout is the protocol)."""


def execute(kc):
    start = time.perf_counter()
    reply = kc.execute_interactive("1+1", timeout=60, output_hook=quiet)
    us = (time.perf_counter() - start) * 1e6
    if reply["content"]["status"] != "ok":
        sys.exit("execute_bench.py: execute_interactive('1+1') replied %r" % reply["content"])
    return us


def main():
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    try:
        execute(kc)  # warm up
        print("ready", flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "quit":
                break
            n = int(cmd)
            print(json.dumps([execute(kc) for _ in range(n)]), flush=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
