"""Summarise a py-spy `--format raw` profile: inclusive share of chosen frames, top leaves.

python bench/spy_summary.py PROFILE [--top 25] [--match bices/,sqlite,pydantic]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        leaves[frames[-1]] += n
    print(f"{total} samples")
    print("-- inclusive (share of samples with the frame on the stack)")
    for frame, n in inclusive.most_common(args.top * 3):
        if (
            "bices/" in frame
            or "sqlite" in frame.lower()
            or "pydantic" in frame
            or ("fastapi" in frame and "serialize" in frame)
        ):
            print(f"{100 * n / total:5.1f}%  {frame}")
    print("-- self (leaf frames)")
    for frame, n in leaves.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
