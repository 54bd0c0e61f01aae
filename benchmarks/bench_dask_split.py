"""``split`` from S3 to S3, locally and on a loopback Dask cluster, where the parts are written.

    python benchmarks/bench_dask_split.py [--rows 1000000] [--repeat 3] [--piece-size 16MiB]
                                          [--before DIR]

All on 127.0.0.1: generates a CSV (generate.py, 1% defects), starts an S3 test server (moto by
default) and uploads it, starts a ``dask scheduler`` and --workers ``dask worker`` processes
(tests/dask_cluster.py), then times ``split(..., valid_only=True)`` to a fresh S3 prefix in a
fresh client process (this file with ``--one``), --repeat times in rotating order, in modes:

- ``here``: --workers 1, everything in the client (checks and parts);
- ``pool``: a process pool of --workers: the pool's workers check and write the parts;
- ``dask``: on the cluster: the Dask workers check the pieces and write the parts to S3;
- ``before`` (with --before DIR, the package of an earlier commit, e.g. ``git archive``): the
  pool checks, the client copies every byte itself (the code before the parts tasks);
- ``before-dask`` (with --before): the same client on the cluster: the Dask workers check, the
  client copies (the workers run this checkout's code: the check tasks did not change).

Each run reports wall seconds of ``split`` in the client, the client process's own CPU seconds
(user + system, its pool's workers not included: what the client itself does, far less noisy
than the wall on a loaded machine) and its peak RSS (``VmHWM``).
Every mode's manifest must give the same pieces (path, bytes, sha256): exit 1 if not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one(spec: dict) -> int:
    """The --one mode: one split in this (fresh) process; its figures as JSON."""
    from bench_dask import vm_hwm_kib

    from validator import split
    from validator.settings import AwsSettings

    settings = AwsSettings(endpoint_url=spec["endpoint"])
    kwargs: dict[str, Any] = {"piece_size": spec["piece_size"], "settings": settings}
    with contextlib.ExitStack() as stack:
        if spec["scheduler"]:
            from validator.cluster import dask_executor

            kwargs["executor"] = stack.enter_context(dask_executor(spec["scheduler"]))
        else:
            kwargs["workers"] = spec["workers"]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = usage.ru_utime + usage.ru_stime
        t0 = time.perf_counter()
        result = split(
            spec["source"],
            spec["to"],
            "CSV",
            valid_only=True,
            rejects=spec["to"] + "rejects.csv",
            **kwargs,
        )
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu0
    pieces = [(p["Path"], p["Bytes"], p["Sha256"]) for p in result.manifest["Pieces"]]
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_kib": vm_hwm_kib(), "pieces": pieces}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--server", choices=("auto", "seaweedfs", "moto"), default="moto")
    ap.add_argument("--piece-size", default="16MiB")
    ap.add_argument("--modes", default="here,pool,dask")
    ap.add_argument("--before", help="an earlier commit's package folder (adds mode 'before')")
    ap.add_argument("--workdir", help="keep files here (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return one(json.loads(args.one))

    import bench
    import bench_s3
    from bench_dask import loadavg, run_one
    from dask_cluster import dask_cluster

    modes = args.modes.split(",")
    if args.before and not any(m.startswith("before") for m in modes):
        modes.append("before")
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = Path(args.workdir)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_split_")))
        log(f"load average at start: {loadavg()} ({os.cpu_count()} cores, shared machine)")
        path = work / f"bench_{args.rows}.csv"
        bench.ensure_file(path, args.rows, "csv", 0.01, 1)
        server = bench_s3.start_server(stack, args.server, work)
        env = bench_s3.tool_env(server, work)
        env["PYTHONPATH"] = str(REPO)
        server.client().create_bucket(Bucket="bench")
        bench_s3.upload(server, "bench", path, path.name)
        cluster = stack.enter_context(dask_cluster(work / "dask", workers=args.workers, env=env))
        log(f"{path.stat().st_size / 2**20:.0f} MiB; cluster at {cluster.address}; {server.name}")
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        n = 0

        def spec_for(mode: str) -> tuple[dict, dict]:
            nonlocal n
            n += 1
            spec = {
                "source": f"s3://bench/{path.name}",
                "to": f"s3://bench/out-{mode}-{n}/",
                "piece_size": args.piece_size,
                "endpoint": server.endpoint_url,
                "scheduler": cluster.address if mode.endswith("dask") else None,
                "workers": 1 if mode == "here" else args.workers,
            }
            run_env = dict(env)
            if mode.startswith("before"):
                run_env["PYTHONPATH"] = f"{args.before}{os.pathsep}{REPO}"
            return spec, run_env

        log("warm-up (the workers import the validator once)")
        run_one(*spec_for("dask"), args.timeout, script=__file__)
        for rep in range(args.repeat):
            order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
            for mode in order:
                r = run_one(*spec_for(mode), args.timeout, script=__file__)
                r["load"] = os.getloadavg()[0]
                runs[mode].append(r)
                log(
                    f"  {mode:11} {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  "
                    f"{len(r['pieces'])} parts  rss {r['rss_kib'] / 1024:5.0f} MiB  "
                    f"load {r['load']:.2f}"
                )
        log(f"load average at end: {loadavg()}")
    first = runs[modes[0]][0]["pieces"]
    ok = all(r["pieces"] == first for rs in runs.values() for r in rs)
    if not ok:
        log("THE PARTS DIFFER between modes")
    base = statistics.median(r["wall"] for r in runs[modes[0]])
    print(
        f"{'mode':11} {'wall s':>7} {'x ' + modes[0]:>8} {'client CPU s':>13} "
        f"{'client RSS MiB':>15} {'load':>5}"
    )
    for mode, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        print(
            f"{mode:11} {wall:7.2f} {wall / base:8.2f} "
            f"{statistics.median(r['cpu'] for r in rs):13.2f} "
            f"{statistics.median(r['rss_kib'] for r in rs) / 1024:15.0f} "
            f"{statistics.median(r['load'] for r in rs):5.2f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
