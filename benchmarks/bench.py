"""Time the installed ``pinpoint-preflight validate`` against bare parsing and frictionless.

    python benchmarks/bench.py --rows 5000000 [--repeat 3] [--workdir /tmp/ppbench]
                               [--skip-frictionless] [--json]

Files (made by generate.py, cached in --workdir and reused while rows/seed/rate match):

- CSV "large": --rows records (5M rows ≈ 1 GB); CSV "small": --rows/10 (≈ 100 MB);
- NDJSON "large" / "small": as many records as make the same number of bytes as the CSV
  (an NDJSON record is ~2.3x a CSV row, so 1 GB of NDJSON is ~2.2M records);
- a slice of the first 100,000 rows of the large CSV, for frictionless.

Every timing is one child process, timed from spawn to exit (start-up included) with warm page
cache. Each repeat runs, per file, the baseline and the command with --workers 1 and 2, in an
order that rotates between repeats so noise hits all of them. Ratios are medians of the ratios
of runs paired within one repeat; times are medians. Peak RSS is the kernel's high-water mark
(``ru_maxrss`` from ``wait4``) of the largest process of the run's process tree; this process
makes itself a child subreaper, so a forkserver and its workers are reaped here too. The sum
over the tree is sampled (psutil, every --sample-interval s).

``--json`` prints the numbers as JSON on stdout (the tables then go to stderr). Every run's
numbers are also saved as ``results-<time>.json`` in --workdir.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

MiB = 1 << 20
TOOL = "pinpoint-preflight"
SLICE_ROWS = 100_000

# (key, what, target, "max"|"min")
TARGETS = {
    "csv_ratio_w1": ("CSV validate ÷ pyarrow open_csv, 1 worker", 1.7, "max"),
    "json_ratio_w1": ("NDJSON validate ÷ orjson per line, 1 worker", 1.0, "max"),
    "frictionless_x": ("rows/s vs frictionless, 100k-row CSV", 25.0, "min"),
    "csv_speedup": ("CSV 1 → 2 workers speed-up, large file", 1.7, "min"),
    "json_speedup": ("NDJSON 1 → 2 workers speed-up, large file", 1.7, "min"),
    "csv_rss_large": ("CSV peak RSS per process, large file (MiB)", 256, "max"),
    "csv_rss_small": ("CSV peak RSS per process, small file (MiB)", 256, "max"),
    "json_rss_large": ("NDJSON peak RSS per process, large file (MiB)", 256, "max"),
    "json_rss_small": ("NDJSON peak RSS per process, small file (MiB)", 256, "max"),
    "csv_e2e_w2": ("CSV large file end to end, 2 workers (s)", 8.0, "max"),
    "json_e2e_w2": ("NDJSON large file end to end, 2 workers (s)", 5.0, "max"),
}


# ------------------------------------------------------------------------------------------
# Running one measured process
# ------------------------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Orphaned descendants (a forkserver and its workers) are re-parented to us, so we reap
    them and get their rusage."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class Run:
    name: str
    cmd: list[str]
    seconds: float = 0.0
    rc: int | None = None
    peak_rss: int = 0  # bytes: the largest process of the tree (kernel high-water mark)
    main_peak: int = 0  # bytes, sampled VmHWM of the process started
    others_peak: int = 0  # bytes, sampled VmHWM of its largest descendant (workers)
    tree_peak: int = 0  # bytes, sampled sum of RSS over the tree
    processes: int = 1
    stdout: str = ""
    stderr_tail: str = ""
    result: dict = field(default_factory=dict)
    ok: bool = False


def measure(
    name: str,
    cmd: list[str],
    out_path: Path,
    *,
    timeout: float,
    interval: float,
    ok_codes: tuple[int, ...] = (0, 1),
) -> Run:
    import psutil

    run = Run(name, cmd, stdout=str(out_path))
    me = psutil.Process()
    seen: dict[int, int] = {}
    tree_peak = 0
    stop = threading.Event()
    main_pid = 0

    def sample() -> None:
        nonlocal tree_peak
        while not stop.wait(interval):
            total = 0
            try:
                procs = me.children(recursive=True)
            except psutil.Error:
                continue
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
                    seen[p.pid] = max(seen.get(p.pid, 0), _hwm_kib(p.pid))
            tree_peak = max(tree_peak, total)

    err_path = out_path.with_suffix(".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=out_path.parent,
        )
        main_pid = proc.pid
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        killer = threading.Timer(timeout, lambda: os.killpg(main_pid, signal.SIGKILL))
        killer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        run.seconds = time.perf_counter() - t0
        killer.cancel()
        proc.returncode = run.rc = os.waitstatus_to_exitcode(status)
        peak_kib = ru.ru_maxrss
        # reap what the process left behind (forkserver, resource tracker, their children)
        deadline = time.monotonic() + 10
        while True:
            try:
                pid, _, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                peak_kib = max(peak_kib, ru.ru_maxrss)
                continue
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(main_pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
            time.sleep(0.005)
        stop.set()
        sampler.join()
    run.peak_rss = peak_kib * 1024
    run.main_peak = seen.get(main_pid, 0) * 1024
    run.others_peak = max((v for k, v in seen.items() if k != main_pid), default=0) * 1024
    run.tree_peak = tree_peak
    run.processes = max(len(seen), 1)
    run.ok = run.rc in ok_codes
    if not run.ok:
        run.stderr_tail = err_path.read_bytes()[-2000:].decode("utf-8", "replace")
    return run


def tool_python(tool: str | None) -> str:
    """The interpreter of the installed command (its shebang), so the in-process timing uses
    the same installation as the command."""
    if tool:
        with contextlib.suppress(OSError, UnicodeDecodeError), open(tool, "rb") as f:
            first = f.readline().decode().strip()
            if first.startswith("#!") and "python" in first:
                return first[2:].strip().split()[0]
    return sys.executable


FINGERPRINT = (
    "import hashlib, json, pathlib, validator\n"
    "root = pathlib.Path(validator.__file__).parent\n"
    "h = hashlib.sha256()\n"
    "for p in sorted(root.rglob('*')):\n"
    "    if p.is_file() and p.suffix in ('.py', '.json'):\n"
    "        h.update(str(p.relative_to(root)).encode()); h.update(p.read_bytes())\n"
    "print(json.dumps({'package': str(root), 'sha256': h.hexdigest()[:16]}))\n"
)


def tool_fingerprint(python: str) -> dict:
    """Where the installed package lives and a hash of its sources (an editable install in a
    shared tree can change during a run)."""
    try:
        out = subprocess.run(
            [python, "-c", FINGERPRINT], capture_output=True, text=True, timeout=60, cwd="/"
        )
        return json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}


def read_tool_report(path: Path) -> dict:
    try:
        d = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    keys = ("JobStatus", "TotalProcessed", "TotalFailures", "TotalWarnings", "TotalPieces")
    return {k: d.get(k) for k in keys}


def read_baseline(path: Path) -> dict:
    try:
        return json.loads(path.read_bytes().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return {}


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------


def ensure_file(path: Path, rows: int, fmt: str, rate: float, seed: int) -> dict:
    meta = path.with_name(path.name + ".stats.json")
    if path.exists() and meta.exists():
        with contextlib.suppress(ValueError, OSError):
            s = json.loads(meta.read_text())
            if (s["rows"], s["format"], s["defect_rate"], s["seed"]) == (
                rows,
                fmt,
                rate,
                seed,
            ) and s["bytes"] == path.stat().st_size:
                return s
    log(f"generating {path.name}: {rows:,} {fmt} rows ...")
    s = _generate(path, rows, fmt, rate, seed, meta)
    log(
        f"  {s['bytes'] / 1e6:,.0f} MB in {s['generate_seconds']:.1f} s "
        f"({rows / max(s['generate_seconds'], 1e-9):,.0f} rows/s)"
    )
    return s


def _generate(path: Path, rows: int, fmt: str, rate: float, seed: int, meta: Path) -> dict:
    """generate.py in its own process: this one stays small (a child's ru_maxrss starts from
    its parent's RSS at fork), and pyarrow is never imported here."""
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate.py"),
            "--rows",
            str(rows),
            "--format",
            fmt,
            "--defect-rate",
            repr(rate),
            "--seed",
            str(seed),
            "-o",
            str(path),
            "--stats",
            str(meta),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return json.loads(meta.read_text())


def json_rows_for(csv_bytes: int, workdir: Path, rate: float, seed: int) -> int:
    """NDJSON records that make about csv_bytes."""
    sample = workdir / "sample.json"
    s = _generate(sample, 20_000, "json", rate, seed, workdir / "sample.json.stats.json")
    sample.unlink()
    return max(1, round(csv_bytes / (s["bytes"] / s["rows"])))


def make_slice(src: Path, dst: Path, rows: int, rate: float, seed: int) -> dict:
    meta = dst.with_name(dst.name + ".stats.json")
    want = {"rows": rows, "source": src.name, "source_bytes": src.stat().st_size}
    if dst.exists() and meta.exists():
        with contextlib.suppress(ValueError, OSError):
            s = json.loads(meta.read_text())
            if all(s.get(k) == v for k, v in want.items()) and s["bytes"] == dst.stat().st_size:
                return s
    with open(src, "rb") as f, open(dst, "wb") as out:
        out.write(f.readline())
        for _ in range(rows):
            line = f.readline()
            if not line:
                break
            out.write(line)
    s = {**want, "format": "csv", "bytes": dst.stat().st_size}
    meta.write_text(json.dumps(s))
    return s


def warm(path: Path) -> None:
    buf = bytearray(8 * MiB)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


# ------------------------------------------------------------------------------------------
# Reporting helpers
# ------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for mod in ("pyarrow", "orjson", "numpy", "frictionless", "psutil"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[mod] = version(mod)
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        versions["pinpoint-preflight"] = version("pinpoint-preflight")
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    commit = ""
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "repo_commit": commit,
    }


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def fmt_x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows",
        type=int,
        default=5_000_000,
        help="CSV rows of the large file (5M ≈ 1 GB); the small one has rows/10",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/ppbench")
    ap.add_argument("--skip-frictionless", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON on stdout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--defect-rate", type=float, default=0.01)
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--formats", default="csv,json")
    ap.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed")
    ap.add_argument("--sample-interval", type=float, default=0.2)
    ap.add_argument("--command", default=TOOL, help="the command to time (default: installed)")
    args = ap.parse_args(argv)

    out = sys.stderr if args.json else sys.stdout  # with --json, the JSON alone on stdout
    workdir = Path(args.workdir)
    runs_dir = workdir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    subreaper = become_subreaper()
    info = machine()
    tool = shutil.which(args.command)
    tool_py = tool_python(tool)
    info["tool"] = tool
    info["tool_package"] = tool_fingerprint(tool_py) if tool else {}
    workers = [int(w) for w in args.workers.split(",")]
    formats = [f.strip().lower() for f in args.formats.split(",")]

    # ---- files ------------------------------------------------------------------------------
    files: dict[str, dict] = {}  # key "csv_large" -> stats (+ path)
    csv_large = workdir / f"endpoints-{args.rows}-s{args.seed}-d{args.defect_rate}.csv"
    s = ensure_file(csv_large, args.rows, "csv", args.defect_rate, args.seed)
    csv_bytes = s["bytes"]
    if "csv" in formats:
        files["csv_large"] = s
        small = max(args.rows // 10, 1)
        files["csv_small"] = ensure_file(
            workdir / f"endpoints-{small}-s{args.seed}-d{args.defect_rate}.csv",
            small,
            "csv",
            args.defect_rate,
            args.seed,
        )
    if "json" in formats:
        jrows = json_rows_for(csv_bytes, workdir, args.defect_rate, args.seed)
        files["json_large"] = ensure_file(
            workdir / f"endpoints-{jrows}-s{args.seed}-d{args.defect_rate}.json",
            jrows,
            "json",
            args.defect_rate,
            args.seed,
        )
        jsmall = max(jrows // 10, 1)
        files["json_small"] = ensure_file(
            workdir / f"endpoints-{jsmall}-s{args.seed}-d{args.defect_rate}.json",
            jsmall,
            "json",
            args.defect_rate,
            args.seed,
        )
    slice_rows = min(SLICE_ROWS, args.rows)
    slice_stats = make_slice(
        csv_large, workdir / f"slice-{slice_rows}.csv", slice_rows, args.defect_rate, args.seed
    )
    slice_path = workdir / f"slice-{slice_rows}.csv"
    for s in files.values():
        warm(Path(s["path"]))
    warm(slice_path)

    # ---- jobs ------------------------------------------------------------------------------
    def tool_cmd(path: str, fmt: str, w: int) -> list[str]:
        return [
            tool or args.command,
            "validate",
            path,
            "--format",
            fmt.upper(),
            "--output",
            "json",
            "--no-progress",
            "--workers",
            str(w),
        ]

    def base_cmd(path: str, fmt: str) -> list[str]:
        python = tool_py if fmt == "preflight" else sys.executable
        return [python, str(HERE / "baseline.py"), fmt, path]

    jobs: dict[str, list[tuple[str, list[str]]]] = {}
    order = ["csv_small", "csv_large", "json_small", "json_large"]
    for key in order:
        if key not in files:
            continue
        fmt, path = files[key]["format"], files[key]["path"]
        jobs[key] = [("baseline", base_cmd(path, fmt))]
        if tool:
            jobs[key] += [(f"tool_w{w}", tool_cmd(path, fmt, w)) for w in workers]
    fr = shutil.which("frictionless")
    if not args.skip_frictionless:
        sp = str(slice_path)
        jobs["slice"] = []
        if tool:
            jobs["slice"] += [
                ("tool_api", base_cmd(sp, "preflight")),
                ("tool_cli", tool_cmd(sp, "csv", 1)),
            ]
        try:
            import frictionless  # noqa: F401

            jobs["slice"].append(("frictionless_api", base_cmd(sp, "frictionless")))
            if fr:
                jobs["slice"].append(
                    (
                        "frictionless_cli",
                        [fr, "validate", "--json", "--trusted", "--limit-errors", "1000000000", sp],
                    )
                )
        except ImportError:
            log("frictionless is not installed (pip install '.[bench]'): skipped")

    log(
        f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}; "
        f"tool: {tool or 'NOT INSTALLED'} (package {info['tool_package'].get('package')}, "
        f"sources {info['tool_package'].get('sha256')}); subreaper: {subreaper}"
    )
    if not tool:
        log(f"'{args.command}' is not on PATH: only the baselines are timed (pip install .)")

    # warm-up (imports, .pyc, page cache of the code), untimed
    for key in ("csv_small", "json_small"):
        for _, cmd in jobs.get(key, []):
            measure("warmup", cmd, runs_dir / "warmup.out", timeout=args.timeout, interval=10)

    results: dict[str, dict[str, list[Run]]] = {k: {n: [] for n, _ in js} for k, js in jobs.items()}
    t_start = time.perf_counter()
    for r in range(args.repeat):
        for key, js in jobs.items():
            rot = js[r % len(js) :] + js[: r % len(js)]
            for name, cmd in rot:
                outp = runs_dir / f"{key}-{name}-{r}.out"
                run = measure(name, cmd, outp, timeout=args.timeout, interval=args.sample_interval)
                if name.startswith("tool_w") or name == "tool_cli":
                    run.result = read_tool_report(outp)
                    if run.ok and run.result.get("TotalProcessed") is None:
                        run.ok = False  # exit 1 from a traceback is not a report
                        run.stderr_tail = (
                            outp.with_suffix(".stderr")
                            .read_bytes()[-2000:]
                            .decode("utf-8", "replace")
                            or "no JSON report on stdout"
                        )
                elif name == "frictionless_cli":
                    run.result = {}
                else:
                    run.result = read_baseline(outp)
                    if run.ok and not run.result:
                        run.ok = False
                        run.stderr_tail = (
                            outp.with_suffix(".stderr")
                            .read_bytes()[-2000:]
                            .decode("utf-8", "replace")
                            or "no result on stdout"
                        )
                results[key][name].append(run)
                status = "" if run.ok else f"  FAILED rc={run.rc}"
                log(
                    f"[{r + 1}/{args.repeat}] {key:<10} {name:<17} {run.seconds:7.2f} s  "
                    f"peak {run.peak_rss / MiB:6.0f} MiB{status}"
                )
                if not run.ok and run.stderr_tail:
                    log("    " + run.stderr_tail.strip().splitlines()[-1][:300])
    total_s = time.perf_counter() - t_start
    import resource

    if tool:
        after = tool_fingerprint(tool_py)
        info["tool_package_after"] = after
        if after != info["tool_package"]:
            log(
                f"WARNING: the installed tool changed during the run ({info['tool_package']} -> "
                f"{after}): the numbers mix two versions"
            )

    info["bench_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    # ---- aggregate -------------------------------------------------------------------------
    def ok_runs(key: str, name: str) -> list[Run]:
        return [x for x in results.get(key, {}).get(name, []) if x.ok]

    def secs(key: str, name: str) -> float | None:
        return med([x.seconds for x in ok_runs(key, name)])

    def paired(key: str, a: str, b: str, inner: bool = False) -> float | None:
        ra, rb = results.get(key, {}).get(a, []), results.get(key, {}).get(b, [])
        vals = []
        for x, y in zip(ra, rb, strict=False):
            if x.ok and y.ok:
                xs = x.result.get("seconds") if inner else x.seconds
                ys = y.result.get("seconds") if inner else y.seconds
                if xs and ys:
                    vals.append(xs / ys)
        return med(vals)

    def peak(key: str, name: str) -> int | None:
        v = [x.peak_rss for x in ok_runs(key, name)]
        return max(v) if v else None

    summary: dict[str, dict] = {}
    detail_rows = []
    for key in order:
        if key not in files:
            continue
        st = files[key]
        rows, nbytes = st["rows"], st["bytes"]
        d: dict = {"rows": rows, "bytes": nbytes, "path": st["path"]}
        for name in results[key]:
            t = secs(key, name)
            d[name] = {
                "median_s": t,
                "runs_s": [round(x.seconds, 3) for x in results[key][name]],
                "rows_per_s": rows / t if t else None,
                "mb_per_s": nbytes / 1e6 / t if t else None,
                "peak_rss_mib": (peak(key, name) or 0) / MiB or None,
                "tree_peak_mib": max((x.tree_peak for x in ok_runs(key, name)), default=0) / MiB,
                "main_peak_mib": max((x.main_peak for x in ok_runs(key, name)), default=0) / MiB,
                "workers_peak_mib": max((x.others_peak for x in ok_runs(key, name)), default=0)
                / MiB,
                "failed": sum(not x.ok for x in results[key][name]),
                "report": next((x.result for x in reversed(results[key][name]) if x.ok), {}),
            }
            detail_rows.append(
                [
                    f"{key} ({rows:,} rows, {nbytes / 1e6:,.0f} MB)",
                    name,
                    fmt_s(t),
                    f"{rows / t:,.0f}" if t else "-",
                    f"{nbytes / 1e6 / t:,.0f}" if t else "-",
                    f"{d[name]['peak_rss_mib']:.0f}" if d[name]["peak_rss_mib"] else "-",
                    f"{d[name]['main_peak_mib']:.0f}" if d[name]["main_peak_mib"] else "-",
                    f"{d[name]['workers_peak_mib']:.0f}" if d[name]["workers_peak_mib"] else "-",
                    f"{d[name]['tree_peak_mib']:.0f}" if d[name]["tree_peak_mib"] else "-",
                    f"{d[name]['failed']}/{len(results[key][name])}" if d[name]["failed"] else "",
                ]
            )
        if "tool_w1" in results[key]:
            d["ratio_w1_vs_baseline"] = paired(key, "tool_w1", "baseline")
        if "tool_w2" in results[key]:
            d["ratio_w2_vs_baseline"] = paired(key, "tool_w2", "baseline")
            d["speedup_w1_w2"] = paired(key, "tool_w1", "tool_w2")
        d["expected"] = {
            "error_rows": st["error_rows"],
            "warning_rows": st["warning_rows"],
            "parseable_rows": st["parseable_rows"],
        }
        summary[key] = d
    if "slice" in results:
        d = {"rows": slice_rows, "bytes": slice_stats["bytes"]}
        for name in results["slice"]:
            t = secs("slice", name)
            inner = med(
                [x.result.get("seconds") for x in ok_runs("slice", name) if x.result.get("seconds")]
            )
            d[name] = {
                "median_s": t,
                "inner_s": inner,
                "runs_s": [round(x.seconds, 3) for x in results["slice"][name]],
                "rows_per_s": slice_rows / t if t else None,
                "inner_rows_per_s": slice_rows / inner if inner else None,
                "peak_rss_mib": (peak("slice", name) or 0) / MiB or None,
                "failed": sum(not x.ok for x in results["slice"][name]),
            }
            detail_rows.append(
                [
                    f"slice ({slice_rows:,} rows, {slice_stats['bytes'] / 1e6:,.0f} MB)",
                    name,
                    fmt_s(t) + (f" ({inner:.2f} in)" if inner else ""),
                    f"{slice_rows / t:,.0f}" if t else "-",
                    f"{slice_stats['bytes'] / 1e6 / t:,.0f}" if t else "-",
                    f"{d[name]['peak_rss_mib']:.0f}" if d[name]["peak_rss_mib"] else "-",
                    "",
                    "",
                    "",
                    f"{d[name]['failed']}/{len(results['slice'][name])}"
                    if d[name]["failed"]
                    else "",
                ]
            )
        d["x_api"] = paired("slice", "frictionless_api", "tool_api", inner=True)
        d["x_cli"] = paired("slice", "frictionless_cli", "tool_cli")
        summary["slice"] = d

    # ---- targets ---------------------------------------------------------------------------
    def rss_of(key: str) -> float | None:
        v = [
            summary[key][n]["peak_rss_mib"]
            for n in summary.get(key, {})
            if n.startswith("tool_w") and summary[key][n]["peak_rss_mib"]
        ]
        return max(v) if v else None

    def tool_s(key: str, name: str) -> float | None:
        return summary.get(key, {}).get(name, {}).get("median_s")

    def base_s(key: str) -> float | None:
        return summary.get(key, {}).get("baseline", {}).get("median_s")

    got = {
        "csv_ratio_w1": (
            tool_s("csv_large", "tool_w1"),
            base_s("csv_large"),
            summary.get("csv_large", {}).get("ratio_w1_vs_baseline"),
        ),
        "json_ratio_w1": (
            tool_s("json_large", "tool_w1"),
            base_s("json_large"),
            summary.get("json_large", {}).get("ratio_w1_vs_baseline"),
        ),
        "frictionless_x": (
            summary.get("slice", {}).get("tool_api", {}).get("inner_rows_per_s"),
            summary.get("slice", {}).get("frictionless_api", {}).get("inner_rows_per_s"),
            summary.get("slice", {}).get("x_api"),
        ),
        "csv_speedup": (
            tool_s("csv_large", "tool_w2"),
            tool_s("csv_large", "tool_w1"),
            summary.get("csv_large", {}).get("speedup_w1_w2"),
        ),
        "json_speedup": (
            tool_s("json_large", "tool_w2"),
            tool_s("json_large", "tool_w1"),
            summary.get("json_large", {}).get("speedup_w1_w2"),
        ),
        "csv_rss_large": (rss_of("csv_large"), None, rss_of("csv_large")),
        "csv_rss_small": (rss_of("csv_small"), None, rss_of("csv_small")),
        "json_rss_large": (rss_of("json_large"), None, rss_of("json_large")),
        "json_rss_small": (rss_of("json_small"), None, rss_of("json_small")),
        "csv_e2e_w2": (tool_s("csv_large", "tool_w2"), None, tool_s("csv_large", "tool_w2")),
        "json_e2e_w2": (tool_s("json_large", "tool_w2"), None, tool_s("json_large", "tool_w2")),
    }
    targets = []
    for key, (what, target, kind) in TARGETS.items():
        tv, bv, value = got[key]
        met = None if value is None else (value <= target if kind == "max" else value >= target)
        targets.append(
            {
                "key": key,
                "measure": what,
                "tool": tv,
                "baseline": bv,
                "value": value,
                "target": target,
                "kind": kind,
                "met": met,
            }
        )

    # ---- print -----------------------------------------------------------------------------
    large_mb = csv_bytes / 1e6
    print(
        f"\npinpoint-preflight benchmark: {info['nproc']} cores ({info['cpu']}), "
        f"{info['memory_gib']} GiB, Python {info['python']}, "
        f"pyarrow {info['versions'].get('pyarrow')}, orjson {info['versions'].get('orjson')}, "
        f"frictionless {info['versions'].get('frictionless', '-')}",
        file=out,
    )
    print(
        f"command: {' '.join(sys.argv)}   repeats: {args.repeat}   "
        f"wall: {total_s:.0f} s   medians of {args.repeat}",
        file=out,
    )
    pkg = info.get("tool_package") or {}
    print(
        f"tool: {tool or 'not installed'}, package {pkg.get('package')}, "
        f"sources sha256 {pkg.get('sha256')}, pinpoint-preflight "
        f"{info['versions'].get('pinpoint-preflight', '?')}, repo HEAD {info['repo_commit']}",
        file=out,
    )
    print(
        "\n"
        + table(
            detail_rows,
            [
                "file",
                "run",
                "median s",
                "rows/s",
                "MB/s",
                "peak MiB/proc",
                "main",
                "workers",
                "tree MiB",
                "failed",
            ],
        ),
        file=out,
    )
    print(
        "(peak MiB/proc: kernel high-water mark of the largest process, max over repeats; "
        "main / workers: sampled VmHWM of the process started / of its largest descendant; "
        "tree: sampled sum of RSS)",
        file=out,
    )
    checks = []
    for key in order:
        rep = summary.get(key, {}).get("tool_w1", {}).get("report") or {}
        if rep:
            ex = summary[key]["expected"]
            same = (
                rep.get("TotalProcessed") == summary[key]["rows"]
                and rep.get("TotalFailures") == ex["error_rows"]
                and rep.get("TotalWarnings") == ex["warning_rows"]
            )
            checks.append(
                f"  {key}: {'as generated' if same else 'DIFFERS from the generator'}:"
                f" TotalProcessed {rep.get('TotalProcessed')} "
                f"(file: {summary[key]['rows']:,}), TotalFailures "
                f"{rep.get('TotalFailures')} ({ex['error_rows']:,} error rows), "
                f"TotalWarnings {rep.get('TotalWarnings')} "
                f"({ex['warning_rows']:,}), TotalPieces {rep.get('TotalPieces')}"
            )
    if checks:
        print("\nwhat the command reported (sanity check):\n" + "\n".join(checks), file=out)
    trows = []
    for t in targets:
        unit_ratio = t["key"].endswith(("ratio_w1", "speedup", "_x"))
        v = t["value"]
        value_s = "-" if v is None else (fmt_x(v) if unit_ratio else f"{v:.2f}")
        if t["key"].startswith(("csv_rss", "json_rss")):
            tool_s_, base_s_ = fmt_s(t["tool"]), ""
        elif t["key"] == "frictionless_x":
            tool_s_ = "-" if t["tool"] is None else f"{t['tool']:,.0f} rows/s"
            base_s_ = "-" if t["baseline"] is None else f"{t['baseline']:,.0f} rows/s"
        else:
            tool_s_, base_s_ = fmt_s(t["tool"]), fmt_s(t["baseline"])
        sign = "≤" if t["kind"] == "max" else "≥"
        met = {None: "n/a", True: "yes", False: "NO"}[t["met"]]
        trows.append([t["measure"], tool_s_, base_s_, value_s, f"{sign} {t['target']:g}", met])
    print("\n" + table(trows, ["measure", "tool", "baseline", "value", "target", "met?"]), file=out)
    notes = []
    if tool and info.get("tool_package_after") != info.get("tool_package"):
        notes.append("the installed tool CHANGED during the run: these numbers mix two versions")
    if large_mb < 900:
        notes.append(
            f"the large files are {large_mb:,.0f} MB, not 1 GB (--rows {args.rows:,}): "
            "the 1 GB targets (speed-up, RSS, 8 s / 5 s) are only indicative here"
        )
    notes.append(
        "tool/baseline columns: median seconds (speed-up: 2 workers, 1 worker); ratios "
        "are medians of per-repeat paired ratios; frictionless: in-process rows/s "
        "after imports (start-up included, see the slice rows above)"
    )
    print("\n" + "\n".join(f"note: {n}" for n in notes), file=out)

    doc = {
        "machine": info,
        "args": vars(args),
        "wall_s": total_s,
        "files": files,
        "slice": slice_stats,
        "summary": summary,
        "targets": targets,
        "runs": {k: {n: [asdict(x) for x in v] for n, v in d.items()} for k, d in results.items()},
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (workdir / f"results-{stamp}.json").write_text(json.dumps(doc, indent=1, default=str))
    if args.json:
        print(
            json.dumps(
                {k: doc[k] for k in ("machine", "args", "wall_s", "files", "summary", "targets")},
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
