"""Prints the JSON lines of measure.py as one table."""

import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
print(f"{'tool':<22} {'pages':>6} {'records':>8} {'seconds':>8} {'pages/s':>8} {'peak RSS MiB':>13}")
for row in rows:
    if "error" in row:
        print(f"{row['tool']:<22} failed: {row['error']}")
        continue
    print(f"{row['tool']:<22} {row['pages']:>6} {row['records']:>8} {row['seconds']:>8.2f} "
          f"{row['pages_per_second']:>8.1f} {row['peak_rss_mib']:>13.1f}")
