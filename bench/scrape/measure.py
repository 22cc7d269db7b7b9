"""Runs one command, samples the resident memory of its whole process tree (Chromium's
children included) every 20 ms, and prints the command's JSON line with the peak added.

Usage: python measure.py -- COMMAND ARGS...
"""

import json
import os
import subprocess
import sys
import threading
import time


def tree_rss_kib(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(pid))
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    command = sys.argv[sys.argv.index("--") + 1:]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_kib(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        print(json.dumps({"tool": " ".join(command), "error": f"exit {process.returncode}"}))
        return
    result = json.loads(lines[-1])
    result["peak_rss_mib"] = round(peak / 1024, 1)
    result["pages_per_second"] = round(result["pages"] / result["seconds"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
