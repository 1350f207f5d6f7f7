"""Every benchmark, one after the other, with a description of the machine: the run recorded in
RESULTS.md. About four minutes on 2 cores.

    .venv/bin/python -m benchmarks.run_all [--skip throughput]

Each benchmark runs in its own process (each sets up its own throwaway database). The load
average before and after each one says whether something else was competing for the CPU.
"""

import argparse
import os
import subprocess
import sys
import time

from . import harness

BENCHMARKS = ["poll", "profile_poll", "queries", "latency", "throughput", "page_weight", "body_limit"]


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", action="append", default=[], choices=BENCHMARKS)
    args = parser.parse_args()
    harness.ensure_wrk()
    print(f"Machine: {harness.machine()}")
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"wrk: {version}")
    print(f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    failed = []
    for name in BENCHMARKS:
        if name in args.skip:
            continue
        print(f"\n## {name} ({load()})", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=harness.ROOT, check=False)
        print(f"({name}: {time.monotonic() - started:.0f} s, {load()})", flush=True)
        if done.returncode:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
