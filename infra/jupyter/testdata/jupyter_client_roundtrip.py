#!/usr/bin/python3
"""Baseline: p50 latency of `1+1` through jupyter_client's execute_interactive.

Run with Debian's interpreter (it has jupyter_client and ipykernel):

    /usr/bin/python3 infra/jupyter/testdata/jupyter_client_roundtrip.py [N]

Prints one line: "p50_us=<microseconds> n=<N>". Compare with
BenchmarkRawRoundTrip's p50-µs metric.
"""
import statistics
import sys
import time

from jupyter_client.manager import start_new_kernel


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive("1+1", output_hook=lambda msg: None, timeout=30)  # warm up
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            reply = kc.execute_interactive("1+1", output_hook=lambda msg: None, timeout=30)
            samples.append(time.perf_counter() - start)
            if reply["content"]["status"] != "ok":
                raise SystemExit(f"execution failed: {reply['content']}")
        print(f"p50_us={statistics.median(samples) * 1e6:.0f} n={n}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
