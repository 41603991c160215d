"""How long a visitor's prompt file takes to read (issue 25): 30,000 `id: text` lines of
YAML, and the same as CSV, through `prompts.parse` (the Score page's upload and the CLI's
`--prompts FILE`). The YAML reader used to compare each id with every earlier one (30,000
prompts: 40-70 s); it now looks each id up in two dicts, with libyaml's parser where PyYAML
has it. Target: a few seconds. Also reports the duplicate found at the end of the file.

    python -m bench.prompt_parse_speed [--n 30000] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import time

from core import prompts


def yaml_file(n: int) -> bytes:
    return "".join(f"p{i}: Best thing {i}?\n" for i in range(n)).encode()


def csv_file(n: int) -> bytes:
    return ("prompt_id,prompt\n" + "".join(f"p{i},Best thing {i}?\n" for i in range(n))).encode()


def timed(name: str, data: bytes) -> tuple[float, str]:
    t = time.perf_counter()
    try:
        out = f"{len(prompts.parse(name, data)):,} prompts"
    except prompts.PromptError as e:
        out = f"refused: {e}"
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    results = {}
    for name, data in (("prompts.yaml", yaml_file(args.n)), ("prompts.csv", csv_file(args.n)),
                       ("duplicate-at-end.yaml", yaml_file(args.n) + b"01: again\n1: again\n")):
        secs, out = timed(name, data)
        results[name] = {"bytes": len(data), "seconds": round(secs, 3), "result": out}
        print(f"{name:24s} {len(data) / 1e6:5.2f} MB  {secs:6.2f} s  {out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
