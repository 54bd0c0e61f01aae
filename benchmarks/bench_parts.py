"""Parts of bench.py's table on their own, with its machinery (``bench.measure``, ``run_group``,
``run_s3``): peak RSS of every process, the S3 object against download-then-validate, and the
part files against one file. For a step of work measured between two commits.

    python benchmarks/bench_parts.py rss FILE...             # --workers 1 and 2 on each file
    python benchmarks/bench_parts.py s3 --repeat 3           # 213 MB object ÷ (download + local)
    python benchmarks/bench_parts.py many --repeat 3         # 2,000 part files ÷ one file, local
    python benchmarks/bench_parts.py many-s3 --repeat 3      # the same as S3 objects

``--command`` times another installation (a wrapper script running an older checkout, say).
Files are made by generate.py in --workdir (as bench.py makes them) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import bench

MiB = 1 << 20


def rss(args: argparse.Namespace) -> None:
    out = Path(args.workdir) / "runs"
    out.mkdir(parents=True, exist_ok=True)
    for f in args.files:
        fmt = "JSON" if f.endswith((".json", ".ndjson")) else "CSV"
        for w in args.workers.split(","):
            cmd = [args.command, "validate", f, "--format", fmt, "--output", "json"]
            cmd += ["--no-progress", "--workers", w]
            load = os.getloadavg()[0]
            run = bench.measure("rss", cmd, out / "rss.json", timeout=args.timeout, interval=0.1)
            rep = json.loads((out / "rss.json").read_text() or "{}") if run.ok else {}
            print(
                f"{Path(f).name:42s} w{w} {run.seconds:6.2f} s  peak {run.peak_rss / MiB:4.0f} MiB"
                f"  main {run.main_peak / MiB:4.0f}  workers {run.others_peak / MiB:4.0f}"
                f"  load {load:4.1f}  records {rep.get('TotalProcessed')}"
                f"  failed {rep.get('TotalFailures')}",
                flush=True,
            )


def groups(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    runs = workdir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    ns = argparse.Namespace(
        defect_rate=0.01,
        seed=1,
        s3_rows=args.s3_rows if args.what == "s3" else 1000,
        server=args.server,
        repeat=args.repeat,
        timeout=args.timeout,
        sample_interval=0.2,
        parts=args.parts,
        part_rows=args.part_rows,
    )
    tool = args.command

    def tool_cmd(path: str, fmt: str, w: int, *extra: str) -> list[str]:
        c = [tool, "validate", path, "--format", fmt.upper(), "--output", "json"]
        return [*c, "--no-progress", "--workers", str(w), *extra]

    one = parts = None
    if args.what in ("many", "many-s3"):
        n = args.parts * args.part_rows
        st = bench.ensure_file(workdir / f"endpoints-{n}-s1-d0.01.csv", n, "csv", 0.01, 1)
        one, parts = Path(st["path"]), workdir / f"parts-{args.parts}x{args.part_rows}"
        bench.split_into_parts(one, parts, args.part_rows)
    found: dict[str, bench.Group] = {}
    if args.what == "many":
        assert one is not None and parts is not None
        jobs = [
            bench.Job("tool_parts", tool_cmd(str(parts), "csv", 2)),
            bench.Job("tool_one", tool_cmd(str(one), "csv", 2)),
        ]
        g = bench.Group("many_local", "part files vs one file", n, one.stat().st_size, jobs)
        for job in jobs:
            bench.measure("warmup", job.cmd, runs / "warmup.out", timeout=args.timeout, interval=10)
        for r in range(args.repeat):
            bench.run_group(g, r, runs, ns, None)
        found[g.key] = g
    else:
        found = bench.run_s3(ns, workdir, runs, tool, tool_cmd, one, parts)
        if args.what == "many-s3":
            found.pop("s3_large", None)
    for g in found.values():
        names = list(g.runs)
        for name in names:
            ok = [x for x in g.runs[name] if x.ok]
            print(
                f"{g.key} {name}: median {bench.fmt_s(bench.med([x.seconds for x in ok]))} s, "
                f"runs {'/'.join(f'{x.seconds:.2f}' for x in g.runs[name])}, "
                f"peak {max((x.peak_rss for x in ok), default=0) / MiB:.0f} MiB"
            )
        ratio = bench.paired(g, names[0], names[1])
        print(
            f"{g.key} {names[0]} ÷ {names[1]}: {bench.fmt_x(ratio)} (paired median); load "
            f"min {min(g.load):.1f} median {sorted(g.load)[len(g.load) // 2]:.1f} "
            f"max {max(g.load):.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("rss", "s3", "many", "many-s3"))
    ap.add_argument("files", nargs="*", help="rss: the files to validate")
    ap.add_argument("--workers", default="1,2", help="rss: worker counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", type=int, default=2000)
    ap.add_argument("--part-rows", type=int, default=500)
    ap.add_argument("--s3-rows", type=int, default=1_070_000)
    ap.add_argument("--server", choices=("auto", "seaweedfs", "moto"), default="auto")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--workdir", default="/tmp/ppbench")
    ap.add_argument("--command", default=bench.TOOL)
    args = ap.parse_args(argv)
    bench.become_subreaper()
    found = shutil.which(args.command)  # runs start in the work folder: an absolute path
    args.command = os.path.abspath(found or args.command)
    if args.what == "rss":
        rss(args)
    else:
        groups(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
