"""Validate one large S3 object, streamed, and assert that memory does not grow with its size.

    python benchmarks/bench_s3.py [--rows 2500000] [--repeat 3] [--server auto|seaweedfs|moto]

What it does, all on 127.0.0.1:

1. generates two CSV files with generate.py (``bench.ensure_file``): --rows rows (2.5M ≈ 500 MB)
   and --rows/10 (≈ 50 MB);
2. starts a real S3 server with the tests' helper (``tests/s3_servers.py``): SeaweedFS by
   default, moto's threaded server if SeaweedFS is missing or does not start (or --server moto);
3. uploads each file as ONE object (boto3 ``upload_file``: multipart, checked by the ETag);
4. runs the installed ``pinpoint-preflight validate s3://bucket/key --format CSV --endpoint-url
   URL --no-progress --workers N`` for each size and N, and the same file from local disk, each
   --repeat times in an order that rotates between repeats; the server's credentials are in the
   environment (no profile, empty config files, no instance metadata, no proxy);
5. checks that the S3 and local reports agree (TotalProcessed, TotalFailures, FailuresByCode,
   TotalWarnings, WarningsByCode), prints the table (medians) and ASSERTS streaming: what S3
   adds to the peak RSS over the same file on local disk does not grow with the object (large
   ≤ small + --rss-growth-mib), and no process passes --rss-max-mib. Growth that both sources
   share (the exact cross-record state, about 50 bytes per distinct key) is shown as "grows",
   not asserted. Exit 1 when a check fails, 2 when a run or the setup fails.

Memory is measured as in bench.py, by its ``measure``: the kernel's high-water RSS (``ru_maxrss``
from ``wait4``) of the largest process of the run (main, forkserver, workers), and the sampled
``VmHWM`` of the main process and of its largest descendant. Each run is measured from a small
helper process (this file with ``--measure-one``) that makes itself a child subreaper: the
process that holds the server, boto3 and the generated data stays out of the measured tree, and
a child's ``ru_maxrss`` starts from its parent's RSS at fork, which that helper keeps small.

Runtime on 2 busy cores: about 4 minutes at the default --rows 2500000 (9-20 s a run on the
500 MB object; 26 runs with the warm-up), about 2 minutes at --rows 1000000. Every run is killed
after --timeout seconds; the server gets STARTUP_TIMEOUT (30 s) to start. Generated files, the
server's data and the reports go to a temporary folder that is removed at the end (with --workdir
they are kept there, and the generated files are reused while rows/seed/defect rate match).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (benchmarks/bench.py: measure, ensure_file, machine, table)

MiB = 1 << 20
REPO = HERE.parent
COMPARED = ("TotalProcessed", "TotalFailures", "FailuresByCode", "TotalWarnings", "WarningsByCode")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# The measuring helper: a separate small process, subreaper of the run it times
# ------------------------------------------------------------------------------------------


def measure_one(spec: dict) -> int:
    """Run bench.measure on one command and print the Run as JSON (the --measure-one mode)."""
    bench.become_subreaper()
    run = bench.measure(
        spec["name"],
        spec["cmd"],
        Path(spec["out"]),
        timeout=spec["timeout"],
        interval=spec["interval"],
    )
    print(json.dumps(asdict(run)))
    return 0


def measured(name: str, cmd: list[str], out: Path, env: dict, args: argparse.Namespace) -> dict:
    spec = {
        "name": name,
        "cmd": cmd,
        "out": str(out),
        "timeout": args.timeout,
        "interval": args.sample_interval,
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure-one", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=args.timeout + 60,
        cwd=out.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the measuring helper failed: {proc.stderr[-2000:]}")
    run = json.loads(proc.stdout.splitlines()[-1])
    run["report"] = read_report(out)
    if run["ok"] and run["report"].get("TotalProcessed") is None:
        run["ok"] = False
        run["stderr_tail"] = (
            out.with_suffix(".stderr").read_bytes()[-2000:].decode("utf-8", "replace")
            or "no JSON report on stdout"
        )
    return run


def compared(rep: dict) -> dict:
    return {k: rep.get(k) for k in COMPARED}


def read_report(path: Path) -> dict:
    try:
        d = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return {k: d.get(k) for k in ("JobStatus", "TotalPieces", *COMPARED)}


# ------------------------------------------------------------------------------------------
# The server, the objects and the environment of the command
# ------------------------------------------------------------------------------------------


def start_server(stack: contextlib.ExitStack, kind: str, workdir: Path) -> Any:
    """A server from tests/s3_servers.py, stopped with ``stack``: SeaweedFS for "auto" and
    "seaweedfs"; moto for "moto", or when "auto" finds SeaweedFS missing or not starting."""
    sys.path.insert(0, str(REPO / "tests"))
    import s3_servers

    if kind in ("auto", "seaweedfs"):
        try:
            return stack.enter_context(s3_servers.seaweedfs_server(workdir / "seaweedfs"))
        except RuntimeError as exc:
            if kind == "seaweedfs":
                raise
            log(f"SeaweedFS is not usable here ({str(exc).splitlines()[0]}): using moto")
    return stack.enter_context(s3_servers.moto_server())


def upload(server: Any, bucket: str, path: Path, key: str) -> dict:
    """One object, multipart (8 MiB parts), and check what the server holds."""
    from boto3.s3.transfer import TransferConfig

    client = server.client()
    config = TransferConfig(
        multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4
    )
    t0 = time.perf_counter()
    client.upload_file(str(path), bucket, key, Config=config)
    seconds = time.perf_counter() - t0
    head = client.head_object(Bucket=bucket, Key=key)
    size = path.stat().st_size
    if head["ContentLength"] != size:
        raise RuntimeError(
            f"s3://{bucket}/{key} holds {head['ContentLength']:,} bytes, not {size:,}"
        )
    etag = head.get("ETag", "").strip('"')
    parts = int(etag.rpartition("-")[2]) if "-" in etag else 1
    return {"seconds": seconds, "bytes": size, "etag": etag, "parts": parts}


def server_cpu_clock(server: Any) -> Any:
    """A function giving the CPU seconds the server has used so far: the weed process for
    SeaweedFS, this process (whose threads serve) for moto."""
    import psutil

    proc = psutil.Process()
    if server.name != "moto":
        weeds = [p for p in proc.children() if p.name().startswith("weed")]
        proc = weeds[0] if weeds else None

    def clock() -> float:
        if proc is None:
            return 0.0
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            return t.user + t.system
        return 0.0

    return clock


def tool_env(server: Any, workdir: Path) -> dict:
    """The command's environment: the server's credentials and nothing else of AWS's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    aws = workdir / "aws"
    aws.mkdir(exist_ok=True)
    (aws / "config").write_text("")
    (aws / "credentials").write_text("")
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_DEFAULT_REGION=server.region,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def resolve_command(command: str) -> str | None:
    """The installed command; a pyenv shim is resolved to the real script (no bash in front)."""
    tool = shutil.which(command)
    if tool and os.sep + "shims" + os.sep in tool and shutil.which("pyenv"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            real = subprocess.run(
                ["pyenv", "which", Path(tool).name], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if real and os.access(real, os.X_OK):
                return real
    return tool


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def mib(v: float | None) -> str:
    return f"{v / MiB:.0f}" if v else "-"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure-one"]:
        return measure_one(json.loads(argv[1]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows",
        type=int,
        default=2_500_000,
        help="CSV rows of the large object (2.5M ≈ 500 MB); the small one has rows/10",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--server", choices=("auto", "seaweedfs", "moto"), default="auto")
    ap.add_argument("--workdir", help="keep files here (default: a temporary folder, removed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--defect-rate", type=float, default=0.01)
    ap.add_argument("--rss-growth-mib", type=float, default=64, help="allowed growth, small→large")
    ap.add_argument("--rss-max-mib", type=float, default=512, help="absolute cap per process")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before a run is killed")
    ap.add_argument("--sample-interval", type=float, default=0.1)
    ap.add_argument("--command", default=bench.TOOL, help="the command to time")
    ap.add_argument("--piece-size", help="passed to the command (default: the command's, 64MiB)")
    ap.add_argument("--json", action="store_true", help="the numbers as JSON on stdout")
    args = ap.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    workers = [int(w) for w in args.workers.split(",")]

    tool = resolve_command(args.command)
    if not tool:
        log(f"'{args.command}' is not on PATH (pip install .)")
        return 2
    tool_py = bench.tool_python(tool)
    info = bench.machine()
    info["tool"] = tool
    info["tool_package"] = bench.tool_fingerprint(tool_py)
    t_start = time.perf_counter()

    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ppbench-s3-")))
        runs_dir = workdir / "runs"
        runs_dir.mkdir(exist_ok=True)
        stack.callback(shutil.rmtree, workdir / "seaweedfs", ignore_errors=True)

        # ---- files -------------------------------------------------------------------------
        sizes: dict[str, dict] = {}
        for label, rows in (("small", max(args.rows // 10, 1)), ("large", args.rows)):
            path = workdir / f"endpoints-{rows}-s{args.seed}-d{args.defect_rate}.csv"
            sizes[label] = bench.ensure_file(path, rows, "csv", args.defect_rate, args.seed)
            bench.warm(path)

        # ---- server, objects ---------------------------------------------------------------
        server = start_server(stack, args.server, workdir)
        server_cpu = server_cpu_clock(server)
        log(f"{server.name} S3 server at {server.endpoint_url}")
        bucket = server.make_bucket("ppbench")
        for st in sizes.values():
            key = f"bench/{Path(st['path']).name}"
            st["s3"] = {
                "url": f"s3://{bucket}/{key}",
                **upload(server, bucket, Path(st["path"]), key),
            }
            u = st["s3"]
            log(
                f"uploaded {u['url']}: {u['bytes'] / 1e6:,.0f} MB in {u['parts']} parts, "
                f"{u['seconds']:.1f} s ({u['bytes'] / 1e6 / u['seconds']:,.0f} MB/s)"
            )
        env = tool_env(server, workdir)

        def cmd(source: str, w: int) -> list[str]:
            c = [tool, "validate", source, "--format", "CSV", "--output", "json"]
            c += ["--no-progress", "--workers", str(w)]
            if args.piece_size:
                c += ["--piece-size", args.piece_size]
            if source.startswith("s3://"):
                c += ["--endpoint-url", server.endpoint_url]
            return c

        jobs: dict[str, list[tuple[str, int, list[str]]]] = {}
        for label, st in sizes.items():
            jobs[label] = [
                (src, w, cmd(st["s3"]["url"] if src == "s3" else st["path"], w))
                for src in ("s3", "local")
                for w in workers
            ]

        # warm-up: imports, .pyc, the server's caches (untimed)
        for src, _, c in jobs["small"][:: len(workers)]:
            measured(f"warmup-{src}", c, runs_dir / f"warmup-{src}.out", env, args)

        results: dict[tuple[str, str, int], list[dict]] = {}
        failed = False
        for r in range(args.repeat):
            for label, js in jobs.items():
                rot = js[r % len(js) :] + js[: r % len(js)]
                for src, w, c in rot:
                    outp = runs_dir / f"{label}-{src}-w{w}-{r}.out"
                    cpu0 = server_cpu()
                    run = measured(f"{label}-{src}-w{w}", c, outp, env, args)
                    run["server_cpu"] = server_cpu() - cpu0
                    results.setdefault((label, src, w), []).append(run)
                    status = "" if run["ok"] else f"  FAILED rc={run['rc']}"
                    log(
                        f"[{r + 1}/{args.repeat}] {label:<5} {src:<5} w{w}  "
                        f"{run['seconds']:7.2f} s  peak {run['peak_rss'] / MiB:5.0f} MiB "
                        f"(main {run['main_peak'] / MiB:.0f}, workers "
                        f"{run['others_peak'] / MiB:.0f}){status}"
                    )
                    if not run["ok"]:
                        failed = True
                        log("    " + (run["stderr_tail"].strip().splitlines() or [""])[-1][:300])
        total_s = time.perf_counter() - t_start
        info["tool_package_after"] = bench.tool_fingerprint(tool_py)
        server_name, endpoint = server.name, server.endpoint_url

    # ---- aggregate -------------------------------------------------------------------------
    summary: dict[str, dict] = {}
    for (label, src, w), runs in results.items():
        ok = [x for x in runs if x["ok"]]
        t = statistics.median([x["seconds"] for x in ok]) if ok else None
        nbytes = sizes[label]["bytes"]
        summary[f"{label}/{src}/w{w}"] = {
            "size": label,
            "source": src,
            "workers": w,
            "bytes": nbytes,
            "rows": sizes[label]["rows"],
            "median_s": t,
            "runs_s": [round(x["seconds"], 3) for x in runs],
            "mb_per_s": nbytes / 1e6 / t if t else None,
            "peak_rss": max((x["peak_rss"] for x in ok), default=None),
            "main_peak": max((x["main_peak"] for x in ok), default=None),
            "workers_peak": max((x["others_peak"] for x in ok), default=None),
            "processes": max((x["processes"] for x in ok), default=None),
            "server_cpu_s": statistics.median([x["server_cpu"] for x in ok]) if ok else None,
            "failed": len(runs) - len(ok),
            "reports": [x["report"] for x in ok],
        }

    # the S3 and local reports agree (every run of a size, whatever the workers)
    agree: list[str] = []
    disagree: list[str] = []
    for label, st in sizes.items():
        reps = {
            f"{s['source']} w{s['workers']} #{i + 1}": rep
            for s in summary.values()
            if s["size"] == label
            for i, rep in enumerate(s["reports"])
        }
        first_name, first = next(iter(reps.items()), ("", {}))
        odd = [n for n, rep in reps.items() if compared(rep) != compared(first)]
        gen = (
            first.get("TotalProcessed") == st["rows"]
            and first.get("TotalFailures") == st["error_rows"]
            and first.get("TotalWarnings") == st["warning_rows"]
        )
        if odd or not reps:
            disagree.append(f"{label}: {', '.join(odd) or 'no report'} differ from {first_name}")
        else:
            agree.append(
                f"{label}: the same in all {len(reps)} runs (S3 and local): TotalProcessed "
                f"{first.get('TotalProcessed'):,}, TotalFailures {first.get('TotalFailures'):,}, "
                f"TotalWarnings {first.get('TotalWarnings'):,}, TotalPieces "
                f"{first.get('TotalPieces')} ({'as generated' if gen else 'NOT as generated'}); "
                f"FailuresByCode {json.dumps(first.get('FailuresByCode'))}"
            )

    # memory: the large object's peak against the small one's, per source, workers and process
    growth, cap = args.rss_growth_mib * MiB, args.rss_max_mib * MiB
    checks: list[list[str]] = []
    mem_fail: list[str] = []
    for src in ("s3", "local"):
        for w in workers:
            small, large = summary.get(f"small/{src}/w{w}"), summary.get(f"large/{src}/w{w}")
            if not small or not large:
                continue
            for role, key in (
                ("peak", "peak_rss"),
                ("main", "main_peak"),
                ("worker", "workers_peak"),
            ):
                a, b = small[key], large[key]
                if not a or not b:
                    continue
                ok = b <= a + growth and max(a, b) <= cap
                # Only the absolute cap is asserted here: a process's peak also holds the
                # job's exact cross-record state (hashed ids and user ids), which grows with
                # distinct keys by design, from disk as from S3. Streaming is judged below, by
                # what S3 adds over the same file on disk.
                asserted = src == "s3" and role == "peak" and max(a, b) > cap
                what = f"{src} w{w} {role}"
                checks.append(
                    [
                        what,
                        mib(a),
                        mib(b),
                        f"{(b - a) / MiB:+.0f}",
                        f"≤ +{args.rss_growth_mib:g}, ≤ {args.rss_max_mib:g}",
                        "ok" if ok else ("FAIL" if asserted else "grows"),
                    ]
                )
                if not ok and asserted:
                    mem_fail.append(
                        f"{what}: {mib(a)} MiB at {sizes['small']['bytes'] / 1e6:,.0f} MB, "
                        f"{mib(b)} MiB at {sizes['large']['bytes'] / 1e6:,.0f} MB"
                    )
    # what S3 adds to the peak over local disk must not grow with the object either
    for w in workers:
        try:
            d_small = (
                summary[f"small/s3/w{w}"]["peak_rss"] - summary[f"small/local/w{w}"]["peak_rss"]
            )
            d_large = (
                summary[f"large/s3/w{w}"]["peak_rss"] - summary[f"large/local/w{w}"]["peak_rss"]
            )
        except (KeyError, TypeError):
            continue
        ok = d_large <= d_small + growth
        checks.append(
            [
                f"s3 − local w{w} peak",
                f"{d_small / MiB:+.0f}",
                f"{d_large / MiB:+.0f}",
                f"{(d_large - d_small) / MiB:+.0f}",
                f"≤ +{args.rss_growth_mib:g}",
                "ok" if ok else "FAIL",
            ]
        )
        if not ok:
            mem_fail.append(
                f"what S3 adds to the peak, w{w}: {d_small / MiB:+.0f} MiB small, "
                f"{d_large / MiB:+.0f} MiB large"
            )

    # ---- print -----------------------------------------------------------------------------
    pkg = info.get("tool_package") or {}
    print(
        f"\nS3 streaming benchmark: {info['nproc']} cores ({info['cpu']}), "
        f"{info['memory_gib']} GiB, Python {info['python']}, "
        f"pyarrow {info['versions'].get('pyarrow')}; {server_name} at {endpoint}",
        file=out,
    )
    print(
        f"command: {' '.join([Path(sys.argv[0]).name, *argv])}   medians of {args.repeat}   "
        f"wall {total_s:.0f} s   {time.strftime('%Y-%m-%d %H:%M %Z')}",
        file=out,
    )
    print(
        f"tool: {tool}, package {pkg.get('package')}, sources sha256 {pkg.get('sha256')}, "
        f"repo HEAD {info['repo_commit']}",
        file=out,
    )
    rows = []
    for s in summary.values():
        st = sizes[s["size"]]
        rows.append(
            [
                f"{st['bytes'] / 1e6:,.0f} MB ({st['rows']:,} rows)",
                s["source"]
                if s["source"] == "local"
                else f"s3 ({plural(st['s3']['parts'], 'part')})",
                str(s["workers"]),
                bench.fmt_s(s["median_s"]),
                "/".join(f"{x:.1f}" for x in s["runs_s"]),
                f"{s['mb_per_s']:.1f}" if s["mb_per_s"] else "-",
                mib(s["peak_rss"]),
                mib(s["main_peak"]),
                mib(s["workers_peak"]),
                str(s["processes"]),
                f"{s['server_cpu_s']:.1f}" if s["source"] == "s3" and s["server_cpu_s"] else "",
                f"{s['failed']}" if s["failed"] else "",
            ]
        )
    head = ["object", "source", "workers", "wall s", "runs s", "MB/s", "peak MiB"]
    head += ["main", "per worker", "procs", "server CPU s", "failed"]
    print("\n" + bench.table(rows, head), file=out)
    print(
        "(wall: median seconds, spawn to exit, start-up included; peak MiB: kernel high-water "
        "RSS of the largest process, max over repeats; main / per worker: sampled VmHWM of the "
        "main process / of its largest descendant)",
        file=out,
    )
    print("\nreports:\n" + "\n".join("  " + x for x in agree + disagree), file=out)
    print(
        "\nmemory, small → large object (MiB):\n"
        + bench.table(checks, ["process", "small", "large", "growth", "limit", "result"]),
        file=out,
    )
    pieces = {
        label: next(
            (
                r.get("TotalPieces")
                for s in summary.values()
                if s["size"] == label
                for r in s["reports"]
            ),
            None,
        )
        for label in sizes
    }
    print(
        f"\nAsserted (FAIL): the s3 peak rows (the largest process of the run) and s3 − local "
        "(what reading from S3 adds); main / worker rows and local rows are shown, not asserted. "
        f"The small object is {plural(pieces['small'] or 0, 'piece')}, the large "
        f"{plural(pieces['large'] or 0, 'piece')}: one "
        "piece runs in the main process whatever --workers. With 1 worker the main process "
        "reads every piece and also holds the job's cross-record state (hashed ids and user "
        "ids), which grows with the rows whatever the source (compare the local rows).",
        file=out,
    )
    if info["tool_package_after"] != info["tool_package"]:
        log("WARNING: the installed tool changed during the run: the numbers mix two versions")
    if args.json:
        doc = {
            "machine": info,
            "args": vars(args),
            "server": {"name": server_name},
            "wall_s": total_s,
            "files": sizes,
            "summary": summary,
            "checks": checks,
        }
        print(json.dumps(doc, indent=1, default=str))

    if failed:
        log("FAILED: a run did not produce a report (see above)")
        return 2
    problems = disagree + mem_fail
    if disagree:
        log("FAILED: the S3 and local reports differ: " + "; ".join(disagree))
    if mem_fail:
        log(
            "FAILED: peak RSS grows with the S3 object (streaming should keep it flat): "
            + "; ".join(mem_fail)
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
