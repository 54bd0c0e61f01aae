"""The same job run locally (--workers N) and on a loopback Dask cluster, with the overhead per
piece and what the client holds.

    python benchmarks/bench_dask.py [--rows 200000] [--repeat 3] [--server moto|seaweedfs|auto]

All on 127.0.0.1: generates a CSV and an NDJSON file with generate.py (``bench.ensure_file``),
starts an S3 test server (``tests/s3_servers.py``, moto by default) and uploads both, starts a
``dask scheduler`` and --workers ``dask worker`` processes (``tests/dask_cluster.py``, one thread
each, as the tests do), then for each format and source (local disk, s3://) and each piece size
(the default 64 MiB, and --small-piece for a many-small-pieces run) times ``preflight`` in a
fresh client process (this file with ``--one``), locally (a process pool of --workers) and on
the cluster in two ways, --repeat times in rotating order:

- ``cluster``: as the tool runs (``ClusterExecutor.run_keyed``): the hashed keys stay on the
  workers, partitioned by hash (--partitions, default 4 per worker), one task per partition
  flags what the job-wide rules flag, and the client gets results without keys;
- ``gather``: the flow before that (the executor's plain ``map``): every piece's keys go to the
  client, whose fold counts them all (the ``run_keyed`` method hidden from the engine).

Each run reports:

- wall: seconds of ``preflight`` in the client (imports and the client's connection excluded);
- client RSS: the client process's peak RSS (``VmHWM``; the workers are other processes in
  both modes, so this is what the client itself holds);
- result bytes: the pickled size of the PieceResults the client's fold takes (what crosses the
  network per piece), and of their hashed keys (users + ids arrays) alone (none on
  ``cluster``, which also sends a summary of each piece as it is done: ``summary_bytes``).

The overhead per piece is (median cluster wall - median local wall) / pieces. The reports of
every mode must agree (TotalProcessed, failures and warnings by code): exit 1 if not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

COMPARED = ("TotalProcessed", "TotalFailures", "FailuresByCode", "TotalWarnings", "WarningsByCode")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def keys_bytes(res: Any) -> int:
    return sum(
        getattr(k, f).nbytes
        for k in (res.users, res.ids)
        if k is not None
        for f in ("distinct", "counts", "which", "records", "lines", "push")
    )


def keys_to_client(inner: Any) -> Any:
    """The executor as it was before the key path: ``map`` and ``check_sources`` only, so the
    engine gathers every piece's keys into the client's fold."""
    from concurrent.futures import Executor

    class KeysToClient(Executor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            return inner.submit(fn, *args, **kwargs)

        def map(self, fn: Any, *iterables: Any, timeout: Any = None, chunksize: int = 1) -> Any:
            return inner.map(fn, *iterables, timeout=timeout)

        def check_sources(self, files: Any) -> None:
            inner.check_sources(files)

    return KeysToClient()


def vm_hwm_kib() -> int:
    """This process's peak RSS since its exec (VmHWM): ``ru_maxrss`` would carry over the
    parent's high-water mark from the fork (the parent holds moto's objects)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def one(spec: dict) -> int:
    """The --one mode: run the job once in this (fresh) process and print the figures: the
    engine's run (what ``preflight`` calls), so that the results the fold takes are seen too
    (``on_piece``), beside what the progress display hears while the pieces run (on the
    cluster: a summary of each piece; elsewhere the result itself)."""
    from validator import engine
    from validator.settings import AwsSettings
    from validator.source import list_sources

    sizes: list[int] = []  # what the fold takes, pickled (what crossed to the client)
    heard: list[int] = []  # what the progress display was given (on the cluster, a summary)
    keys: list[int] = []
    pickling = 0.0

    def progress(res: Any) -> None:
        nonlocal pickling
        t = time.perf_counter()
        heard.append(len(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)))
        pickling += time.perf_counter() - t

    def on_piece(outcome: Any, plan: Any) -> None:
        nonlocal pickling
        t = time.perf_counter()
        res = outcome.result
        sizes.append(len(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)))
        keys.append(keys_bytes(res))
        pickling += time.perf_counter() - t

    settings = AwsSettings(endpoint_url=spec["endpoint"]) if spec["endpoint"] else None
    kwargs: dict[str, Any] = dict(
        piece_size=spec["piece_size"], settings=settings, progress=progress, on_piece=on_piece
    )
    with contextlib.ExitStack() as stack:
        if spec["scheduler"]:
            from validator.cluster import dask_executor

            ex = stack.enter_context(
                dask_executor(spec["scheduler"], partitions=spec.get("partitions"))
            )
            kwargs["executor"] = keys_to_client(ex) if spec["mode"] == "gather" else ex
        else:
            kwargs["workers"] = spec["workers"]
        t0 = time.perf_counter()
        listing = list_sources([spec["source"]], spec["format"], settings=settings)
        report = engine.run(listing, definition={"S3Url": spec["source"]}, **kwargs)
        wall = time.perf_counter() - t0 - pickling
    rep = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
    print(
        json.dumps(
            {
                "wall": wall,
                "pieces": len(sizes),
                "rss_kib": vm_hwm_kib(),
                "result_bytes": sizes,
                "summary_bytes": heard,
                "key_bytes": keys,
                "report": {k: rep.get(k) for k in COMPARED},
            },
            default=str,
        )
    )
    return 0


def run_one(spec: dict, env: dict, timeout: float, script: str = __file__) -> dict:
    """``script --one SPEC`` in a fresh process (this one, or another bench's); its last line
    of output as JSON."""
    out = subprocess.run(
        [sys.executable, script, "--one", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"run {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--server", choices=("auto", "seaweedfs", "moto"), default="moto")
    ap.add_argument("--small-piece", default="1MiB", help="piece size of the many-pieces run")
    ap.add_argument("--piece-size", default="64MiB")
    ap.add_argument("--formats", default="csv,json")
    ap.add_argument("--partitions", type=int, help="of the keys on the cluster (4 per worker)")
    ap.add_argument("--sources", default="local,s3")
    ap.add_argument("--workdir", help="keep files here (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", action="store_true", help="the numbers as JSON on stdout")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return one(json.loads(args.one))

    import bench
    import bench_s3
    from dask_cluster import dask_cluster

    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = Path(args.workdir)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_dask_")))
        log(f"load average at start: {loadavg()} ({os.cpu_count()} cores, shared machine)")
        files = {}
        for fmt in args.formats.split(","):
            ext = "csv" if fmt == "csv" else "json"
            path = work / f"bench_{args.rows}.{ext}"
            bench.ensure_file(path, args.rows, fmt, 0.01, 1)
            files[fmt] = path
        server = bench_s3.start_server(stack, args.server, work)
        env = bench_s3.tool_env(server, work)
        env["PYTHONPATH"] = str(REPO)
        server.client().create_bucket(Bucket="bench")
        for path in files.values():
            bench_s3.upload(server, "bench", path, path.name)
        cluster = stack.enter_context(dask_cluster(work / "dask", workers=args.workers, env=env))
        log(f"cluster at {cluster.address}; server {server.name} at {server.endpoint_url}")
        cases = []
        for fmt, path in files.items():
            for kind in args.sources.split(","):
                for psize in (args.piece_size, args.small_piece):
                    source = str(path) if kind == "local" else f"s3://bench/{path.name}"
                    cases.append((fmt, kind, psize, source))
        log("warm-up (the workers import the validator once)")
        for fmt, kind, psize, source in cases[:1]:
            run_one(
                {
                    "source": source,
                    "format": "CSV" if fmt == "csv" else "JSON",
                    "piece_size": psize,
                    "endpoint": server.endpoint_url if kind == "s3" else None,
                    "scheduler": cluster.address,
                    "workers": args.workers,
                    "mode": "cluster",
                    "partitions": args.partitions,
                },
                env,
                args.timeout,
            )
        runs: dict[tuple, list[dict]] = {}
        modes = ("local", "cluster", "gather")
        for rep in range(args.repeat):
            for i, (fmt, kind, psize, source) in enumerate(cases):
                turn = (rep + i) % len(modes)
                order = modes[turn:] + modes[:turn]
                for mode in order:
                    spec = {
                        "source": source,
                        "format": "CSV" if fmt == "csv" else "JSON",
                        "piece_size": psize,
                        "endpoint": server.endpoint_url if kind == "s3" else None,
                        "scheduler": cluster.address if mode != "local" else None,
                        "workers": args.workers,
                        "mode": mode,
                        "partitions": args.partitions,
                    }
                    r = run_one(spec, env, args.timeout)
                    r["load"] = os.getloadavg()[0]
                    runs.setdefault((fmt, kind, psize, mode), []).append(r)
                    log(
                        f"  {fmt:4} {kind:5} {psize:>6} {mode:7} {r['wall']:6.2f} s "
                        f"{r['pieces']:4} pieces  rss {r['rss_kib'] / 1024:6.0f} MiB  "
                        f"load {r['load']:.2f}"
                    )
        log(f"load average at end: {loadavg()}")

    ok = True
    rows_out = []
    for fmt, kind, psize, _ in cases:
        loc, clu = runs[(fmt, kind, psize, "local")], runs[(fmt, kind, psize, "cluster")]
        gat = runs[(fmt, kind, psize, "gather")]
        if any(r["report"] != loc[0]["report"] for r in loc + clu + gat):
            log(f"REPORTS DIFFER for {fmt} {kind} {psize}")
            ok = False
        pieces = clu[0]["pieces"]
        lw = statistics.median(r["wall"] for r in loc)
        cw = statistics.median(r["wall"] for r in clu)
        gw = statistics.median(r["wall"] for r in gat)
        res = clu[0]["result_bytes"]
        keyb = gat[0]["key_bytes"]
        rows_out.append(
            {
                "format": fmt,
                "source": kind,
                "piece_size": psize,
                "pieces": pieces,
                "local_s": lw,
                "cluster_s": cw,
                "gather_s": gw,
                "overhead_ms_per_piece": (cw - lw) / pieces * 1000,
                "gather_overhead_ms_per_piece": (gw - lw) / pieces * 1000,
                "local_rss_mib": statistics.median(r["rss_kib"] for r in loc) / 1024,
                "client_rss_mib": statistics.median(r["rss_kib"] for r in clu) / 1024,
                "gather_rss_mib": statistics.median(r["rss_kib"] for r in gat) / 1024,
                "result_bytes_per_piece": sum(res) / pieces,
                "gather_result_bytes_per_piece": sum(gat[0]["result_bytes"]) / pieces,
                "summary_bytes_per_piece": sum(clu[0]["summary_bytes"]) / pieces,
                "key_bytes_per_piece": sum(keyb) / pieces,
                "records": loc[0]["report"]["TotalProcessed"],
                "load": statistics.median(r["load"] for r in loc + clu),
            }
        )
    if args.json:
        print(json.dumps(rows_out, indent=1))
    else:
        print(
            f"{'fmt':4} {'src':5} {'piece':>6} {'pieces':>6} {'local s':>8} {'dask s':>8} "
            f"{'gath s':>8} {'ms/pc':>7} {'gath ms':>7} {'RSS loc':>8} {'RSS cli':>8} "
            f"{'RSS gat':>8} {'res B/pc':>10} {'sum B/pc':>9} {'gath B/pc':>10} {'key B/rec':>9} "
            f"{'load':>5}"
        )
        for r in rows_out:
            print(
                f"{r['format']:4} {r['source']:5} {r['piece_size']:>6} {r['pieces']:>6} "
                f"{r['local_s']:8.2f} {r['cluster_s']:8.2f} {r['gather_s']:8.2f} "
                f"{r['overhead_ms_per_piece']:7.1f} {r['gather_overhead_ms_per_piece']:7.1f} "
                f"{r['local_rss_mib']:8.0f} {r['client_rss_mib']:8.0f} {r['gather_rss_mib']:8.0f} "
                f"{r['result_bytes_per_piece']:10,.0f} {r['summary_bytes_per_piece']:9,.0f} "
                f"{r['gather_result_bytes_per_piece']:10,.0f} "
                f"{r['key_bytes_per_piece'] * r['pieces'] / max(r['records'], 1):9.1f} "
                f"{r['load']:5.2f}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
