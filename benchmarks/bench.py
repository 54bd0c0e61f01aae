"""Time the installed ``pinpoint-preflight validate`` against issue 10's targets, in one run.

    python benchmarks/bench.py --rows 5000000      # the full run: 1 GB files, 3 repeats
    python benchmarks/bench.py --quick             # a sanity check: 100k rows, 1 repeat (~2 min)

Files (made by generate.py, cached in --workdir and reused while their parameters match): for
each format a large file (--rows CSV rows, 5M ≈ 1 GB; NDJSON: the same bytes) three times, with
no defect, with 1 % rule defects and with structural defects sprinkled (CSV: 90 broken quotes
per million rows; NDJSON: 0.1 % invalid lines), and a small one (rows/10) with rule defects; a
5-record file (start-up); 2,000 part files of 500 records and one file of the same records;
a 1M-row CSV slice with a Table Schema for frictionless; a 213 MB CSV for S3.

Every timing is one child process, timed from spawn to exit (start-up included) with a warm page
cache. In each repeat the runs of one group (a file's baseline, --workers 1 and 2; the part
files and the single file; the S3 object and download-then-validate) run back to back in an
order that rotates between repeats, so noise hits all of them. Ratios are medians of the ratios
of runs paired within one repeat; times are medians. Peak RSS is the kernel's high-water mark
(``ru_maxrss`` from ``wait4``) of the largest process of the run's tree (this process is a
child subreaper); main and workers are sampled VmHWM. The 1-minute load average is recorded at
the start of every run. The S3 measures run on a real server on 127.0.0.1 (SeaweedFS, else
moto), each run through bench_s3's measuring helper so that the server stays outside the tree.

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
from typing import Any

HERE = Path(__file__).resolve().parent

MiB = 1 << 20
TOOL = "pinpoint-preflight"
SLICE_ROWS = 100_000

# The targets of issue 10: (key, measure, today, target, "max"|"min", unit)
TARGETS: list[tuple[str, str, str, float, str, str]] = [
    (
        "csv_clean_w1",
        "CSV validate ÷ pyarrow parse, 1 worker: no defect",
        "3.6-3.9x",
        2.0,
        "max",
        "x",
    ),
    (
        "csv_rules_w1",
        "CSV validate ÷ pyarrow parse, 1 worker: 1 % rule defects",
        "3.6-3.9x",
        2.0,
        "max",
        "x",
    ),
    (
        "csv_structural_w1",
        "CSV validate ÷ pyarrow parse, 1 worker: broken quotes",
        "8.3-9.7x",
        2.0,
        "max",
        "x",
    ),
    (
        "json_clean_w1",
        "NDJSON validate ÷ orjson per line, 1 worker: no defect",
        "2.6x",
        2.0,
        "max",
        "x",
    ),
    (
        "json_rules_w1",
        "NDJSON validate ÷ orjson per line, 1 worker: 1 % rule defects",
        "7.0x",
        2.0,
        "max",
        "x",
    ),
    (
        "json_structural_w1",
        "NDJSON validate ÷ orjson per line, 1 worker: 0.1 % bad lines",
        "6.0x",
        2.0,
        "max",
        "x",
    ),
    (
        "csv_speedup",
        "CSV 1 → 2 workers, large file (1 % rule defects)",
        "1.37-1.74x",
        1.8,
        "min",
        "x",
    ),
    (
        "json_speedup",
        "NDJSON 1 → 2 workers, large file (1 % rule defects)",
        "1.56-1.61x",
        1.8,
        "min",
        "x",
    ),
    ("csv_e2e_w2", "CSV large file end to end, 2 workers", "6.1 s", 4.0, "max", "s"),
    ("json_e2e_w2", "NDJSON large file end to end, 2 workers", "13.8 s", 4.0, "max", "s"),
    (
        "rss_large",
        "peak RSS of every process, large files (main and workers)",
        "504-1229 MiB",
        256,
        "max",
        "MiB",
    ),
    (
        "rss_small",
        "peak RSS of every process, small files (main and workers)",
        "-",
        256,
        "max",
        "MiB",
    ),
    (
        "frictionless_x",
        "whole-process rows/s ÷ frictionless validate (Table Schema)",
        "4.4x",
        25,
        "min",
        "x",
    ),
    (
        "s3_ratio",
        "S3 object, 2 workers ÷ (boto3 download + local validate)",
        "1.16-1.31",
        1.0,
        "max",
        "x",
    ),
    (
        "many_local",
        "many part files ÷ one file of the same records, local",
        "3.3x",
        1.3,
        "max",
        "x",
    ),
    ("many_s3", "many part files ÷ one file of the same records, S3", "5.0x", 1.5, "max", "x"),
    ("startup", "start-up: validate a 5-record file", "0.6-1.0 s", 0.35, "max", "s"),
]
# What the sprinkled ("structural") files carry: real exports' rates (issue 10).
STRUCTURAL_RATE = {"csv": 0.00009, "json": 0.001}


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
    env: dict | None = None,
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
            env=env,
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


def ensure_file(
    path: Path, rows: int, fmt: str, rate: float, seed: int, structural: float = 0.0
) -> dict:
    meta = path.with_name(path.name + ".stats.json")
    if path.exists() and meta.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            s = json.loads(meta.read_text())
            if (
                s["rows"],
                s["format"],
                s["defect_rate"],
                s["seed"],
                s.get("structural_rate", 0.0),
            ) == (rows, fmt, rate, seed, structural) and s["bytes"] == path.stat().st_size:
                return s
    log(f"generating {path.name}: {rows:,} {fmt} rows ...")
    s = _generate(path, rows, fmt, rate, seed, meta, structural)
    log(
        f"  {s['bytes'] / 1e6:,.0f} MB in {s['generate_seconds']:.1f} s "
        f"({rows / max(s['generate_seconds'], 1e-9):,.0f} rows/s)"
    )
    return s


def _generate(
    path: Path, rows: int, fmt: str, rate: float, seed: int, meta: Path, structural: float = 0.0
) -> dict:
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
            "--structural-rate",
            repr(structural),
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


# ------------------------------------------------------------------------------------------
# The groups of paired runs
# ------------------------------------------------------------------------------------------


@dataclass
class Job:
    name: str
    cmd: list[str]
    kind: str = "tool"  # tool | baseline | frictionless (how its stdout is read)
    s3: bool = False  # run through bench_s3's measuring helper, with the server's env


@dataclass
class Group:
    """Jobs timed back to back in each repeat, in an order rotating between repeats, so
    their ratios pair runs made under the same load."""

    key: str
    label: str
    rows: int
    nbytes: int
    jobs: list[Job]
    expected: dict = field(default_factory=dict)
    inner: int = 1  # runs of each job per repeat (start-up: short runs, several)
    runs: dict[str, list[Run]] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)


DOWNLOAD_THEN_VALIDATE = (
    "import subprocess, sys, boto3\n"
    "url, endpoint, dest, *cmd = sys.argv[1:]\n"
    "bucket, key = url[5:].split('/', 1)\n"
    "boto3.client('s3', endpoint_url=endpoint).download_file(bucket, key, dest)\n"
    "sys.exit(subprocess.run([*cmd, dest]).returncode)\n"
)


def write_table_schema(path: Path) -> Path:
    """A Table Schema for the generated CSV (frictionless' own way of saying the rules):
    every column typed, ChannelType and OptOut enums, country and date patterns, lengths."""
    sys.path.insert(0, str(HERE))
    import generate  # only the pools, no pyarrow work here: the module imports pyarrow though

    fields, seen = [], set()
    for name in generate.CSV_HEADER:
        f: dict = {"name": name if name not in seen else name + ".2", "type": "string"}
        seen.add(name)
        if name == "ChannelType":
            f["constraints"] = {"required": True, "enum": generate.CHANNELS}
        elif name == "OptOut":
            f["constraints"] = {"enum": ["ALL", "NONE"]}
        elif name.startswith("Metrics.") or name in ("Location.Latitude", "Location.Longitude"):
            f["type"] = "number"
        elif name == "Location.Country":
            f["constraints"] = {"pattern": "[A-Z]{2}"}
        elif name.startswith("Attributes."):
            f["constraints"] = {"maxLength": 100}
        elif name == "EffectiveDate":
            f["constraints"] = {"pattern": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z"}
        fields.append(f)
    path.write_text(json.dumps({"fields": fields}, indent=1))
    return path


def split_into_parts(src: Path, dest: Path, part_rows: int) -> list[Path]:
    """The file's records as part files of ``part_rows`` records, each with the header (the
    way Spark writes an audience); reused while the source is the same."""
    stamp = dest / ".source"
    want = f"{src.name} {src.stat().st_size} {part_rows}"
    if stamp.exists() and stamp.read_text() == want:
        return sorted(dest.glob("part-*.csv"))
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    parts = []
    with open(src, "rb") as f:
        header = f.readline()
        n = 0
        while True:
            lines = [line for _, line in zip(range(part_rows), f, strict=False)]
            if not lines:
                break
            p = dest / f"part-{n:05d}.csv"
            p.write_bytes(header + b"".join(lines))
            parts.append(p)
            n += 1
    stamp.write_text(want)
    return parts


def read_frictionless(path: Path) -> dict:
    """Rows validated and errors found, from ``frictionless validate --json``."""
    try:
        task = json.loads(path.read_bytes())["tasks"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return {}
    stats = task.get("stats", {})
    first = (task.get("errors") or [{}])[0].get("message", "")
    return {"rows": stats.get("rows"), "errors": stats.get("errors"), "first_error": first[:200]}


def loadavg() -> float:
    with contextlib.suppress(OSError):
        return os.getloadavg()[0]
    return float("nan")


def run_group(g: Group, r: int, runs_dir: Path, args: argparse.Namespace, env: dict | None) -> None:
    rot = g.jobs[r % len(g.jobs) :] + g.jobs[: r % len(g.jobs)]
    for i in range(g.inner):
        for job in rot:
            outp = runs_dir / f"{g.key}-{job.name}-{r}-{i}.out"
            g.load.append(loadavg())
            if job.s3:
                import bench_s3

                d = bench_s3.measured(job.name, job.cmd, outp, env or {}, args)
                d.pop("report", None)
                run = Run(**{k: v for k, v in d.items() if k in Run.__dataclass_fields__})
            else:
                run = measure(
                    job.name, job.cmd, outp, timeout=args.timeout, interval=args.sample_interval
                )
            if job.kind == "tool":
                run.result = read_tool_report(outp)
                if run.ok and run.result.get("TotalProcessed") is None:
                    run.ok = False  # exit 1 from a traceback is not a report
            elif job.kind == "baseline":
                run.result = read_baseline(outp)
                run.ok = run.ok and bool(run.result)
            elif job.kind == "frictionless":
                run.result = read_frictionless(outp)
                if run.ok and run.result.get("rows") != g.rows:
                    run.ok = False  # it did not validate the rows (an error about the file)
                    run.stderr_tail = f"frictionless: {run.result}"
            if not run.ok and not run.stderr_tail:
                with contextlib.suppress(OSError):
                    run.stderr_tail = (
                        outp.with_suffix(".stderr").read_bytes()[-2000:].decode("utf-8", "replace")
                    )
            g.runs.setdefault(job.name, []).append(run)
            status = "" if run.ok else f"  FAILED rc={run.rc}"
            log(
                f"[{r + 1}/{args.repeat}] {g.key:<16} {job.name:<14} {run.seconds:7.2f} s  "
                f"peak {run.peak_rss / MiB:5.0f} MiB  load {g.load[-1]:.1f}{status}"
            )
            if not run.ok and run.stderr_tail.strip():
                log("    " + run.stderr_tail.strip().splitlines()[-1][:300])


def secs(g: Group | None, name: str) -> float | None:
    if g is None:
        return None
    return med([x.seconds for x in g.runs.get(name, []) if x.ok])


def paired(g: Group | None, a: str, b: str) -> float | None:
    """Median of the ratios a/b of runs made one after the other in the same repeat."""
    if g is None:
        return None
    ra, rb = g.runs.get(a, []), g.runs.get(b, [])
    return med([x.seconds / y.seconds for x, y in zip(ra, rb, strict=False) if x.ok and y.ok])


def peaks(g: Group | None, prefix: str = "tool") -> tuple[float | None, float | None]:
    """(largest process, largest worker) peak MiB over the group's tool runs."""
    if g is None:
        return None, None
    runs = [x for n, v in g.runs.items() if n.startswith(prefix) for x in v if x.ok]
    if not runs:
        return None, None
    return max(x.peak_rss for x in runs) / MiB, max(x.others_peak for x in runs) / MiB or None


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows",
        type=int,
        default=5_000_000,
        help="CSV rows of the large files (5M ≈ 1 GB); the small one has rows/10",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a fast sanity check: 100k rows, 1 repeat, 100 part files, small S3 and "
        "frictionless files (any option given as well wins)",
    )
    ap.add_argument("--repeat", type=int)
    ap.add_argument("--workdir", default="/tmp/ppbench")
    ap.add_argument("--skip-frictionless", action="store_true")
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-many", action="store_true", help="skip the many-small-files measure")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON on stdout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--defect-rate", type=float, default=0.01, help="the rule-defect files")
    ap.add_argument("--csv-structural-rate", type=float, default=STRUCTURAL_RATE["csv"])
    ap.add_argument("--json-structural-rate", type=float, default=STRUCTURAL_RATE["json"])
    ap.add_argument("--formats", default="csv,json")
    ap.add_argument("--parts", type=int, help="part files of the many-files measure (2000)")
    ap.add_argument("--part-rows", type=int, default=500)
    ap.add_argument("--s3-rows", type=int, help="rows of the S3 object (1,070,000 ≈ 213 MB)")
    ap.add_argument("--frictionless-rows", type=int, help="rows for frictionless (1,000,000)")
    ap.add_argument("--server", choices=("auto", "seaweedfs", "moto"), default="auto")
    ap.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed")
    ap.add_argument("--sample-interval", type=float, default=0.2)
    ap.add_argument("--command", default=TOOL, help="the command to time (default: installed)")
    args = ap.parse_args(argv)
    quick = args.quick
    if quick and "--rows" not in (argv if argv is not None else sys.argv[1:]):
        args.rows = 100_000
    args.repeat = args.repeat or (1 if quick else 3)
    args.parts = args.parts or (100 if quick else 2000)
    args.s3_rows = args.s3_rows or (min(args.rows, 100_000) if quick else 1_070_000)
    args.frictionless_rows = args.frictionless_rows or (
        min(args.rows, 20_000) if quick else min(args.rows, 1_000_000)
    )

    out = sys.stderr if args.json else sys.stdout  # with --json, the JSON alone on stdout
    workdir = Path(args.workdir)
    runs_dir = workdir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    subreaper = become_subreaper()
    info = machine()
    tool = shutil.which(args.command)
    if not tool:
        log(f"'{args.command}' is not on PATH (pip install .)")
        return 2
    tool_py = tool_python(tool)
    info["tool"] = tool
    info["tool_package"] = tool_fingerprint(tool_py)
    info["load_at_start"] = os.getloadavg()
    formats = [f.strip().lower() for f in args.formats.split(",")]
    rate, seed = args.defect_rate, args.seed
    log(
        f"machine: {info['nproc']} cores, {info['cpu']}, load {info['load_at_start'][0]:.1f}; "
        f"tool: {tool} (sources {info['tool_package'].get('sha256')}); subreaper: {subreaper}"
    )

    def tool_cmd(path: str, fmt: str, w: int, *extra: str) -> list[str]:
        c = [tool, "validate", path, "--format", fmt.upper(), "--output", "json"]
        return [*c, "--no-progress", "--workers", str(w), *extra]

    def base_cmd(path: str, fmt: str) -> list[str]:
        return [sys.executable, str(HERE / "baseline.py"), fmt, path]

    def exp(st: dict) -> dict:
        return {k: st[k] for k in ("rows", "error_rows", "warning_rows")}

    # ---- files and the local groups -----------------------------------------------------------
    groups: dict[str, Group] = {}
    csv_rules_large: dict | None = None
    rows_of = {"csv": args.rows}
    for fmt in formats:
        if fmt == "json":
            csv_bytes = args.rows * 199
            rows_of["json"] = json_rows_for(csv_bytes, workdir, rate, seed)
        rows = rows_of[fmt]
        for variant, drate, srate in (
            ("clean", 0.0, 0.0),
            ("rules", rate, 0.0),
            ("structural", 0.0, getattr(args, f"{fmt}_structural_rate")),
        ):
            for size, n in (("large", rows), ("small", max(rows // 10, 1))):
                if size == "small" and variant != "rules":
                    continue
                path = workdir / f"endpoints-{n}-s{seed}-d{drate}-q{srate}.{fmt}"
                st = ensure_file(path, n, fmt, drate, seed, srate)
                if (fmt, variant, size) == ("csv", "rules", "large"):
                    csv_rules_large = st
                key = f"{fmt}_{variant}_{size}"
                jobs = (
                    []
                    if size == "small"
                    else [Job("baseline", base_cmd(str(path), fmt), "baseline")]
                )
                jobs += [Job(f"tool_w{w}", tool_cmd(str(path), fmt, w)) for w in (1, 2)]
                groups[key] = Group(key, f"{fmt} {variant}", n, st["bytes"], jobs, exp(st))
    tiny = ensure_file(workdir / "endpoints-5.csv", 5, "csv", 0.0, seed)
    groups["startup"] = Group(
        "startup",
        "5-record CSV",
        5,
        tiny["bytes"],
        [Job("tool_w1", tool_cmd(tiny["path"], "csv", 1))],
        exp(tiny),
        inner=5,
    )
    many_one: Path | None = None
    many_dir: Path | None = None
    if not args.skip_many:
        n = args.parts * args.part_rows
        st = ensure_file(workdir / f"endpoints-{n}-s{seed}-d{rate}.csv", n, "csv", rate, seed)
        many_one = Path(st["path"])
        many_dir = workdir / f"parts-{args.parts}x{args.part_rows}"
        split_into_parts(many_one, many_dir, args.part_rows)
        groups["many_local"] = Group(
            "many_local",
            f"{args.parts:,} part files of {args.part_rows} records vs one file",
            n,
            st["bytes"],
            [
                Job("tool_parts", tool_cmd(str(many_dir), "csv", 2)),
                Job("tool_one", tool_cmd(str(many_one), "csv", 2)),
            ],
            exp(st),
        )
    fr_exe = shutil.which("frictionless")
    if not args.skip_frictionless and csv_rules_large is not None:
        fr_rows = args.frictionless_rows
        slice_path = workdir / f"slice-{fr_rows}.csv"
        sl = make_slice(Path(csv_rules_large["path"]), slice_path, fr_rows, rate, seed)
        schema = write_table_schema(workdir / "endpoint.tableschema.json")
        jobs = [Job("tool_w1", tool_cmd(str(slice_path), "csv", 1))]
        if fr_exe:
            # --trusted: frictionless refuses absolute paths as "not safe" without it
            fr_cmd = [fr_exe, "validate", "--trusted", "--schema", str(schema), "--json"]
            fr_cmd += ["--limit-errors", "1000000000", str(slice_path)]
            jobs.append(Job("frictionless", fr_cmd, "frictionless"))
        else:
            log("frictionless is not installed (pip install '.[bench]'): skipped")
        groups["frictionless"] = Group(
            "frictionless", "CSV slice, Table Schema", fr_rows, sl["bytes"], jobs
        )
    for g in groups.values():
        for job in g.jobs:
            for a in job.cmd:
                if a.startswith(str(workdir)) and Path(a).is_file():
                    warm(Path(a))

    # warm-up (imports, .pyc, page cache of the code), untimed
    for key in ("startup", "csv_rules_small", "json_rules_small"):
        for job in groups[key].jobs if key in groups else []:
            measure("warmup", job.cmd, runs_dir / "warmup.out", timeout=args.timeout, interval=10)

    t_start = time.perf_counter()
    for r in range(args.repeat):
        for g in groups.values():
            run_group(g, r, runs_dir, args, None)

    # ---- S3: a real server on 127.0.0.1, every run through the measuring helper ---------------
    if not args.skip_s3:
        try:
            s3_groups = run_s3(args, workdir, runs_dir, tool, tool_cmd, many_one, many_dir)
            groups.update(s3_groups)
        except Exception as exc:  # the rest of the table still stands
            log(f"S3 measures skipped: {type(exc).__name__}: {exc}")
    total_s = time.perf_counter() - t_start
    info["load_at_end"] = os.getloadavg()
    after = tool_fingerprint(tool_py)
    info["tool_package_after"] = after
    import resource

    info["bench_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    # ---- the target table ---------------------------------------------------------------------
    G = groups.get
    got: dict[str, tuple[float | None, str]] = {}
    for fmt in ("csv", "json"):
        for variant in ("clean", "rules", "structural"):
            g = G(f"{fmt}_{variant}_large")
            got[f"{fmt}_{variant}_w1"] = (
                paired(g, "tool_w1", "baseline"),
                f"{fmt_s(secs(g, 'tool_w1'))} s / {fmt_s(secs(g, 'baseline'))} s",
            )
        g = G(f"{fmt}_rules_large")
        got[f"{fmt}_speedup"] = (
            paired(g, "tool_w1", "tool_w2"),
            f"{fmt_s(secs(g, 'tool_w1'))} s / {fmt_s(secs(g, 'tool_w2'))} s",
        )
        got[f"{fmt}_e2e_w2"] = (secs(g, "tool_w2"), f"{(g.nbytes if g else 0) / 1e6:,.0f} MB")
    for size in ("large", "small"):
        top, worker, which = None, None, ""
        for key, g in groups.items():
            if key.endswith(f"_{size}") and key.split("_")[0] in ("csv", "json"):
                p, w = peaks(g)
                if p is not None and (top is None or p > top):
                    top, which = p, key
                if w is not None:
                    worker = max(worker or 0, w)
        got[f"rss_{size}"] = (
            top,
            f"largest: {which}; largest worker {worker:.0f}" if top and worker else which,
        )
    g = G("frictionless")
    got["frictionless_x"] = (
        paired(g, "frictionless", "tool_w1"),
        f"{fmt_s(secs(g, 'tool_w1'))} s / {fmt_s(secs(g, 'frictionless'))} s, "
        f"{(g.rows if g else 0):,} rows",
    )
    g = G("s3_large")
    got["s3_ratio"] = (
        paired(g, "tool_s3_w2", "download_local_w2"),
        f"{fmt_s(secs(g, 'tool_s3_w2'))} s / {fmt_s(secs(g, 'download_local_w2'))} s, "
        f"{(g.nbytes if g else 0) / 1e6:,.0f} MB",
    )
    for where in ("local", "s3"):
        g = G(f"many_{where}")
        got[f"many_{where}"] = (
            paired(g, "tool_parts", "tool_one"),
            f"{fmt_s(secs(g, 'tool_parts'))} s / {fmt_s(secs(g, 'tool_one'))} s",
        )
    g = G("startup")
    got["startup"] = (secs(g, "tool_w1"), f"{len(g.runs.get('tool_w1', [])) if g else 0} runs")

    targets, trows = [], []
    for key, what, today, target, kind, unit in TARGETS:
        value, detail = got.get(key, (None, ""))
        met = None if value is None else (value <= target if kind == "max" else value >= target)
        targets.append(
            {
                "key": key,
                "measure": what,
                "today": today,
                "target": target,
                "kind": kind,
                "value": value,
                "detail": detail,
                "met": met,
            }
        )
        shown = (
            "-"
            if value is None
            else (
                f"{value:.2f}x"
                if unit == "x"
                else f"{value:.0f} MiB"
                if unit == "MiB"
                else f"{value:.2f} s"
            )
        )
        sign = "≤" if kind == "max" else "≥"
        tgt = f"{sign} {target:g}{'x' if unit == 'x' else ' ' + unit}"
        trows.append(
            [what, today, tgt, shown, {None: "n/a", True: "yes", False: "NO"}[met], detail]
        )

    # ---- print --------------------------------------------------------------------------------
    loads = [x for g in groups.values() for x in g.load]
    print(
        f"\npinpoint-preflight benchmark: {info['nproc']} cores ({info['cpu']}), "
        f"{info['memory_gib']} GiB, Python {info['python']}, "
        f"pyarrow {info['versions'].get('pyarrow')}, orjson {info['versions'].get('orjson')}, "
        f"frictionless {info['versions'].get('frictionless', '-')}",
        file=out,
    )
    print(
        f"command: {' '.join(sys.argv)}   repeats: {args.repeat}   wall: {total_s:.0f} s",
        file=out,
    )
    pkg = info.get("tool_package") or {}
    print(
        f"tool: {tool}, package {pkg.get('package')}, sources sha256 {pkg.get('sha256')}, "
        f"repo HEAD {info['repo_commit']}",
        file=out,
    )
    if loads:
        print(
            f"machine load (1-min load average at each run's start): min {min(loads):.1f}, "
            f"median {statistics.median(loads):.1f}, max {max(loads):.1f} on {info['nproc']} "
            f"cores; {info['load_at_start'][0]:.1f} at the start, "
            f"{info['load_at_end'][0]:.1f} at the end",
            file=out,
        )
    detail_rows = []
    for g in groups.values():
        for name, runs in g.runs.items():
            ok = [x for x in runs if x.ok]
            t = med([x.seconds for x in ok])
            detail_rows.append(
                [
                    f"{g.key} ({g.rows:,} rows, {g.nbytes / 1e6:,.1f} MB)",
                    name,
                    fmt_s(t),
                    "/".join(f"{x.seconds:.2f}" for x in runs),
                    f"{g.rows / t:,.0f}" if t else "-",
                    f"{max((x.peak_rss for x in ok), default=0) / MiB:.0f}",
                    f"{max((x.main_peak for x in ok), default=0) / MiB:.0f}",
                    f"{max((x.others_peak for x in ok), default=0) / MiB:.0f}",
                    f"{len(runs) - len(ok)}/{len(runs)}" if len(ok) < len(runs) else "",
                ]
            )
    print(
        "\n"
        + table(
            detail_rows,
            [
                "group",
                "run",
                "median s",
                "runs s",
                "rows/s",
                "peak MiB",
                "main",
                "workers",
                "failed",
            ],
        ),
        file=out,
    )
    print(
        "(peak MiB: the kernel's high-water mark of the largest process of the run, max over "
        "repeats; main / workers: sampled VmHWM of the process started / its largest descendant)",
        file=out,
    )
    checks = []
    for g in groups.values():
        rep = next((x.result for x in g.runs.get("tool_w1", []) if x.ok and x.result), None)
        if rep and g.expected:
            ex = g.expected
            same = (
                rep.get("TotalProcessed"),
                rep.get("TotalFailures"),
                rep.get("TotalWarnings"),
            ) == (ex["rows"], ex["error_rows"], ex["warning_rows"])
            checks.append(
                f"  {g.key}: {'as generated' if same else 'DIFFERS from the generator'}: "
                f"TotalProcessed {rep.get('TotalProcessed')} ({ex['rows']:,}), TotalFailures "
                f"{rep.get('TotalFailures')} ({ex['error_rows']:,}), TotalWarnings "
                f"{rep.get('TotalWarnings')} ({ex['warning_rows']:,})"
            )
    if checks:
        print("\nwhat the command reported (sanity check):\n" + "\n".join(checks), file=out)
    print(
        "\n"
        + table(trows, ["measure (issue 10)", "today", "target", "measured", "met?", "detail"]),
        file=out,
    )
    notes = [
        "ratios are medians of ratios of runs paired within one repeat; seconds are medians; "
        "every run is a whole process, start-up included, warm page cache",
    ]
    if after != info["tool_package"]:
        notes.append("the installed tool CHANGED during the run: these numbers mix two versions")
    if args.rows < 4_500_000:
        notes.append(
            f"the large files have {args.rows:,} CSV rows, not 5M (1 GB): the 1 GB targets "
            "(speed-up, end to end, RSS) are only indicative here"
        )
    print("\n" + "\n".join(f"note: {n}" for n in notes), file=out)

    doc = {
        "machine": info,
        "args": vars(args),
        "wall_s": total_s,
        "targets": targets,
        "groups": {
            k: {
                "label": g.label,
                "rows": g.rows,
                "bytes": g.nbytes,
                "load": g.load,
                "runs": {n: [asdict(x) for x in v] for n, v in g.runs.items()},
            }
            for k, g in groups.items()
        },
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (workdir / f"results-{stamp}.json").write_text(json.dumps(doc, indent=1, default=str))
    if args.json:
        print(
            json.dumps(
                {k: doc[k] for k in ("machine", "args", "wall_s", "targets")}, indent=1, default=str
            )
        )
    return 0


def run_s3(
    args: argparse.Namespace,
    workdir: Path,
    runs_dir: Path,
    tool: str,
    tool_cmd: Any,
    many_one: Path | None,
    many_dir: Path | None,
) -> dict[str, Group]:
    """The S3 measures on a real server (SeaweedFS, else moto) on 127.0.0.1: one large object
    against downloading it with bare boto3 and validating the copy, and the part files as
    objects against one object of the same records."""
    from concurrent.futures import ThreadPoolExecutor

    import bench_s3

    groups: dict[str, Group] = {}
    rate, seed = args.defect_rate, args.seed
    n = args.s3_rows
    st = ensure_file(workdir / f"endpoints-{n}-s{seed}-d{rate}.csv", n, "csv", rate, seed)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir / "seaweedfs", ignore_errors=True)
        server = bench_s3.start_server(stack, args.server, workdir)
        log(f"{server.name} S3 server at {server.endpoint_url}")
        bucket = server.make_bucket("ppbench")
        key = f"one/{Path(st['path']).name}"
        up = bench_s3.upload(server, bucket, Path(st["path"]), key)
        log(f"uploaded s3://{bucket}/{key}: {up['bytes'] / 1e6:,.0f} MB, {up['parts']} parts")
        env = bench_s3.tool_env(server, workdir)
        url = f"s3://{bucket}/{key}"
        ep = ["--endpoint-url", server.endpoint_url]
        dl_cmd = [
            sys.executable,
            "-c",
            DOWNLOAD_THEN_VALIDATE,
            url,
            server.endpoint_url,
            str(workdir / "downloaded.csv"),
            tool,
            "validate",
            "--format",
            "CSV",
            "--output",
            "json",
            "--no-progress",
            "--workers",
            "2",
        ]
        groups["s3_large"] = Group(
            "s3_large",
            "one S3 object",
            n,
            st["bytes"],
            [
                Job("tool_s3_w2", tool_cmd(url, "csv", 2, *ep), s3=True),
                Job("download_local_w2", dl_cmd, s3=True),
            ],
            {k: st[k] for k in ("rows", "error_rows", "warning_rows")},
        )
        if many_one is not None and many_dir is not None:
            parts = sorted(many_dir.glob("part-*.csv"))
            client = server.client()

            def put(p: Path) -> None:
                client.upload_file(str(p), bucket, f"parts/{p.name}")

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, parts))
            bench_s3.upload(server, bucket, many_one, f"whole/{many_one.name}")
            log(f"uploaded {len(parts):,} part files and their single file")
            groups["many_s3"] = Group(
                "many_s3",
                f"{len(parts):,} part objects vs one object",
                args.parts * args.part_rows,
                many_one.stat().st_size,
                [
                    Job("tool_parts", tool_cmd(f"s3://{bucket}/parts/", "csv", 2, *ep), s3=True),
                    Job(
                        "tool_one",
                        tool_cmd(f"s3://{bucket}/whole/{many_one.name}", "csv", 2, *ep),
                        s3=True,
                    ),
                ],
            )
        # warm-up: the server's caches, the client's imports
        for g in groups.values():
            bench_s3.measured("warmup", g.jobs[0].cmd, runs_dir / "warmup.out", env, args)
        for r in range(args.repeat):
            for g in groups.values():
                run_group(g, r, runs_dir, args, env)
    return groups


if __name__ == "__main__":
    sys.exit(main())
