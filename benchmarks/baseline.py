"""The bare-parse baselines the validator is measured against, one per format, run as a process.

    python benchmarks/baseline.py csv FILE           # pyarrow.csv.open_csv, every column a string
    python benchmarks/baseline.py json FILE          # orjson.loads on every line of a buffered file
    python benchmarks/baseline.py frictionless FILE  # frictionless' Python API, validate a CSV
    python benchmarks/baseline.py preflight FILE     # the validator's own Python API, 1 worker

Each prints one JSON line on stdout: records parsed, records rejected, bytes, seconds (timed
inside the process, after the imports; bench.py also times the whole process, start-up
included, as it does for the command). ``frictionless`` and ``preflight`` exist for the
throughput comparison with frictionless, where interpreter start-up would otherwise dominate a
100k-row file.

The CSV baseline reads the way the validator's reader does (validator/read_csv.py): every
column typed ``string`` (the header names, repeated ``Attributes.*`` columns included), no
multi-line values, rows of the wrong width skipped, and by default a single thread
(``use_threads=False``) and pyarrow's default 1 MiB blocks. ``--threads`` and ``--block-size``
change that, to see what the baseline could do on more than one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parse_csv(path: str, *, threads: bool, block_size: int) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.csv as pv

    with open(path, "rb") as f:
        header = f.readline().decode("utf-8").lstrip("\ufeff").rstrip("\r\n").split(",")
    rejected = 0

    def invalid(_row) -> str:
        nonlocal rejected
        rejected += 1
        return "skip"

    reader = pv.open_csv(
        path,
        read_options=pv.ReadOptions(use_threads=threads, block_size=block_size),
        parse_options=pv.ParseOptions(
            newlines_in_values=False, ignore_empty_lines=True, invalid_row_handler=invalid
        ),
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
        ),
    )
    rows = 0
    for batch in reader:
        rows += batch.num_rows
    return rows, rejected


def parse_json(path: str) -> tuple[int, int]:
    import orjson

    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    rows = rejected = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                loads(line)
            except decode_error:
                rejected += 1
            else:
                rows += 1
    return rows, rejected


def run_frictionless(path: str) -> tuple[int, int]:
    import frictionless

    p = os.path.abspath(path)
    resource = frictionless.Resource(os.path.basename(p), basepath=os.path.dirname(p))
    report = resource.validate(limit_errors=10**9)
    task = report.tasks[0]
    return int(task.stats.get("rows") or 0), len(task.errors)


def run_preflight(path: str) -> tuple[int, int]:
    import validator

    fmt = "JSON" if path.endswith((".json", ".jsonl", ".ndjson")) else "CSV"
    report = validator.preflight(path, format=fmt, workers=1).to_dict()
    return int(report["TotalProcessed"]), int(report["TotalFailures"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("format", choices=["csv", "json", "frictionless", "preflight"])
    ap.add_argument("path")
    ap.add_argument("--threads", action="store_true", help="CSV: let pyarrow use its thread pool")
    ap.add_argument("--block-size", type=int, default=1 << 20, help="CSV: bytes per block")
    args = ap.parse_args(argv)
    if args.format == "frictionless":
        import frictionless  # noqa: F401  (imports are not timed)
    elif args.format == "preflight":
        import validator  # noqa: F401
    t0 = time.perf_counter()
    if args.format == "csv":
        rows, rejected = parse_csv(args.path, threads=args.threads, block_size=args.block_size)
    elif args.format == "json":
        rows, rejected = parse_json(args.path)
    elif args.format == "frictionless":
        rows, rejected = run_frictionless(args.path)
    else:
        rows, rejected = run_preflight(args.path)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "format": args.format,
                "rows": rows,
                "rejected": rejected,
                "bytes": os.path.getsize(args.path),
                "seconds": round(seconds, 4),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
