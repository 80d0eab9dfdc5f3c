"""seqcore vs PyTorch vs Keras 3 (TensorFlow), side by side in one process.

    python benches/run.py [--workloads td_dense,lstm_mid] [--rounds 7] [--threads 2]
                          [--json bench-results/latest.json] [--quick] [--memory]

Every framework gets the same thread count. Each workload is set up and warmed up in every
available framework, then timed in alternating rounds: round r runs one batch of steps per
framework, in an order rotated by r, so slow drifts of a shared, noisy machine hit every framework
alike; batches during which other processes took CPU are set aside (and made up with extra rounds).
The report gives the median ms per step over the quiet batches, the ratio best peer / seqcore (> 1:
seqcore is faster), the workload's FLOPs and its roofline time at this machine's measured SGEMM
peak (NumPy float32 2048^3). Workloads live in benches/workloads.py; see benches/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench-results" / "latest.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", help="comma-separated names (default: every default workload); 'all' = all")
    p.add_argument("--frameworks", default="seqcore,torch,keras,onnxruntime", help="comma-separated subset to run")
    p.add_argument("--rounds", type=int, help="timed rounds per workload (default 7; 3 with --quick)")
    p.add_argument("--threads", type=int, help="threads for every framework (default: seqcore's default)")
    p.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="few short rounds: a smoke test, not a measurement")
    p.add_argument("--batch-seconds", type=float, help="target seconds per timed batch (default 0.3)")
    p.add_argument(
        "--noise-threshold",
        type=float,
        default=0.25,
        help="a batch during which other processes used more CPU than this (in cores) is 'noisy': "
        "extra rounds are run (up to --max-rounds) until every framework has --rounds quiet batches, "
        "and medians use the quiet batches only (default %(default)s; 0 or less disables)",
    )
    p.add_argument("--max-rounds", type=int, help="cap on rounds incl. extra ones (default 2 x --rounds)")
    p.add_argument(
        "--memory",
        action="store_true",
        help="also measure peak RSS of training steps, in a fresh subprocess per framework",
    )
    p.add_argument("--memory-workloads", default="lstm_long", help="workloads for --memory (default %(default)s)")
    p.add_argument("--list", action="store_true", help="list the registered workloads and exit")
    # Internal: the --memory probe re-runs this script with these.
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--keras-mode", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 7
    if args.batch_seconds is None:
        args.batch_seconds = 0.08 if args.quick else 0.3
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if args.max_rounds is None:
        args.max_rounds = args.rounds if args.quick else 2 * args.rounds
    args.max_rounds = max(args.max_rounds, args.rounds)
    return args


def default_threads() -> int:
    """seqcore's default (SEQCORE_NUM_THREADS, else the cores we may use), without importing it yet."""
    v = os.environ.get("SEQCORE_NUM_THREADS", "").strip()
    if v.isdigit() and int(v) >= 1:
        return int(v)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


ARGS = parse_args()
THREADS = ARGS.threads or default_threads()

# Thread pools read their environment once: configure before NumPy / torch / TF are imported.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import frameworks  # noqa: E402

frameworks.configure_env(THREADS)

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import workloads as W  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if x in have]
    except OSError:
        pass
    return []


def sgemm_roofline(reps: int) -> dict[str, Any]:
    """NumPy float32 2048^3 matmul GFLOP/s at THREADS threads, with the CPU other processes used
    during each run (see combine_roofline)."""
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    np.matmul(a, b, out=c)  # warm up (BLAS thread start, page faults)
    gflops, noise = [], []
    for _ in range(reps):
        # Each run lasts >= 0.25 s: /proc/stat counts in 10 ms ticks, too coarse for one matmul.
        snap = cpu_snapshot()
        t0 = time.perf_counter()
        calls = 0
        while calls == 0 or time.perf_counter() - t0 < 0.25:
            np.matmul(a, b, out=c)
            calls += 1
        gflops.append(2 * n**3 * calls / (time.perf_counter() - t0) / 1e9)
        noise.append(other_load(snap, cpu_snapshot()))
    return {"gflops_runs": gflops, "other_load_cores": noise}


def combine_roofline(runs: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The machine's SGEMM peak: median of the quiet runs (start and end of the benchmark together);
    with fewer than 3 quiet runs, the best run (noise only ever lowers it), flagged."""
    g = [x for r in runs for x in r["gflops_runs"]]
    nz = [x for r in runs for x in r["other_load_cores"]]
    quiet = [x for x, z in zip(g, nz, strict=True) if threshold <= 0 or not z > threshold]
    enough = len(quiet) >= 3
    peak = statistics.median(quiet) if enough else max(g)
    if enough:
        how = f"median of {len(quiet)}/{len(g)} quiet runs"
    else:
        how = f"best of {len(g)} runs, only {len(quiet)} quiet: NOISY"
    return {
        "what": f"numpy float32 matmul 2048x2048x2048, {how}",
        "gflops": peak,
        "noisy": not enough,
        "gflops_runs": g,
        "other_load_cores": nz,
        "numpy": np.__version__,
    }


def cpu_snapshot() -> tuple[float, float, float]:
    """(seconds of busy CPU on the whole machine, CPU seconds of this process, wall seconds)."""
    busy = float("nan")
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return busy, ru.ru_utime + ru.ru_stime, time.perf_counter()


def other_load(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Cores' worth of CPU that *other* processes used between two snapshots (noise indicator)."""
    wall = b[2] - a[2]
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / wall) if wall > 0 else float("nan")


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------
def settle(max_seconds: float = 1.0, window: float = 0.01, idle_cores: float = 0.05) -> float:
    """Waits until this process's threads are idle, and returns the seconds waited (at most
    ``max_seconds``). After a batch, a framework's worker threads keep spinning for a while (GNU
    OpenMP's spin-wait in torch, TensorFlow's Eigen pool, rayon): left alone, they would share the
    two cores with the next framework's batch, and whichever framework runs after a spinner would be
    timed slow. Every framework gets the same settled start."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_seconds:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(window)
        if (time.process_time() - c0) / (time.perf_counter() - t0) < idle_cores:
            break
    return time.perf_counter() - start


class Runner:
    """One framework's step for one workload, with its calibrated batch size and its rounds."""

    def __init__(self, fw: str, step: W.Step):
        self.fw = fw
        self.step = step
        self.n = 1
        self.rounds_ms: list[float] = []
        self.rounds_noise: list[float] = []  # cores used by other processes during each batch
        self.first_loss: float | None = step.details.get("first_loss")
        self.last_loss: float | None = None
        self.error: str | None = None
        # Steps marked ``per_call`` (microsecond latencies: streaming) also time every call, for
        # the latency percentiles a batch median hides.
        self.calls_ns: list[int] = []

    def warmup(self, calls: int, min_seconds: float, batch_seconds: float) -> None:
        """Runs the step ``calls`` times and for at least ``min_seconds`` (first calls: lazy init,
        tracing, allocator growth), then sizes the timed batch from a few more timed calls."""
        start = time.perf_counter()
        done = 0
        while done < calls or time.perf_counter() - start < min_seconds:
            loss = self.step()
            done += 1
            if self.first_loss is None:
                self.first_loss = float(loss)
        times = []
        start = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - start < 0.1 * batch_seconds and len(times) < 50):
            t0 = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - t0)
        self.n = max(1, min(100_000, round(batch_seconds / statistics.median(times))))

    def run_batch(self) -> None:
        step, n = self.step, self.n
        gc_was = gc.isenabled()
        gc.disable()
        try:
            snap = cpu_snapshot()
            t0 = time.perf_counter()
            if step.details.get("per_call"):
                clock, calls = time.perf_counter_ns, self.calls_ns
                for _ in range(n):
                    c0 = clock()
                    loss = step()
                    calls.append(clock() - c0)
            else:
                for _ in range(n):
                    loss = step()
            dt = time.perf_counter() - t0
            self.rounds_noise.append(other_load(snap, cpu_snapshot()))
        finally:
            if gc_was:
                gc.enable()
        self.last_loss = float(loss)
        self.rounds_ms.append(dt / n * 1e3)

    def quiet(self, threshold: float) -> list[float]:
        """ms/step of the batches during which other processes used at most ``threshold`` cores."""
        if threshold <= 0:
            return list(self.rounds_ms)
        return [ms for ms, nz in zip(self.rounds_ms, self.rounds_noise, strict=True) if not nz > threshold]


def bench_workload(w: W.Workload, fws: list[str], args: argparse.Namespace) -> dict[str, Any]:
    ctx = W.Context(threads=THREADS, quick=args.quick, log=log)
    result: dict[str, Any] = {
        "description": w.description,
        "kind": w.kind,
        "shape": dict(w.shape),
        "flops": w.flops,
        "flops_formula": w.flops_formula,
        "frameworks": {},
    }
    runners: list[Runner] = []
    for fw in fws:
        t0 = time.perf_counter()
        try:
            step = w.setup(fw, ctx)
        except W.Unavailable as e:
            result["frameworks"][fw] = {"status": "skipped", "reason": str(e)}
            log(f"  {fw:8s} skipped: {e}")
            continue
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            result["frameworks"][fw] = {"status": "error", "reason": f"setup failed: {type(e).__name__}: {e}"}
            log(f"  {fw:8s} setup FAILED: {type(e).__name__}: {e}")
            continue
        r = Runner(fw, step)
        try:
            r.warmup(2 if args.quick else 3, 0.1 if args.quick else 0.5, args.batch_seconds)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            result["frameworks"][fw] = {"status": "error", "reason": f"step failed: {type(e).__name__}: {e}"}
            log(f"  {fw:8s} step FAILED: {type(e).__name__}: {e}")
            continue
        runners.append(r)
        log(f"  {fw:8s} ready in {time.perf_counter() - t0:5.1f} s, {r.n} steps/batch: {step.how}")

    snap = cpu_snapshot()
    rnd = 0
    while rnd < args.max_rounds:
        live = [r for r in runners if r.error is None]
        if rnd >= args.rounds and all(len(r.quiet(args.noise_threshold)) >= args.rounds for r in live):
            break
        k = rnd % max(1, len(runners))
        for r in runners[k:] + runners[:k]:
            if r.error is None:
                settle()
                try:
                    r.run_batch()
                except Exception as e:
                    traceback.print_exc(file=sys.stderr)
                    r.error = f"step failed in round {rnd}: {type(e).__name__}: {e}"
        rnd += 1
    result["rounds_run"] = rnd
    result["other_load_cores"] = other_load(snap, cpu_snapshot())
    for r in runners:
        if r.error is not None:
            result["frameworks"][r.fw] = {"status": "error", "reason": r.error, "how": r.step.how}
            continue
        quiet = r.quiet(args.noise_threshold)
        # Quiet batches only, when there are enough of them; else every batch, flagged as noisy.
        noisy = len(quiet) < min(3, args.rounds)
        ms = r.rounds_ms if noisy else quiet
        med = statistics.median(ms)
        result["frameworks"][r.fw] = {
            "status": "ok",
            "how": r.step.how,
            "details": r.step.details,
            "steps_per_round": r.n,
            "rounds_ms": r.rounds_ms,
            "rounds_other_load_cores": r.rounds_noise,
            "quiet_rounds": len(quiet),
            "noisy": noisy,
            "median_ms": med,
            "min_ms": min(ms),
            "max_ms": max(ms),
            "gflops": w.flops / (med * 1e-3) / 1e9,
            "first_loss": r.first_loss,
            "last_loss": r.last_loss,
        }
        if r.calls_ns:
            calls = sorted(r.calls_ns)
            result["frameworks"][r.fw]["call_us"] = {
                q: calls[min(len(calls) - 1, int(len(calls) * p))] / 1e3 for q, p in (("p50", 0.5), ("p99", 0.99))
            }
            log(
                f"  {r.fw:8s} per call: p50 {result['frameworks'][r.fw]['call_us']['p50']:.1f} us, "
                f"p99 {result['frameworks'][r.fw]['call_us']['p99']:.1f} us ({len(calls)} calls)"
            )
    # Release every model before the next workload.
    del runners
    gc.collect()

    ok = {fw: v for fw, v in result["frameworks"].items() if v["status"] == "ok"}
    peers = {fw: v["median_ms"] for fw, v in ok.items() if fw != "seqcore"}
    result["best_peer"] = min(peers, key=lambda fw: peers[fw]) if peers else None
    if "seqcore" in ok and peers:
        result["ratio_best_peer_over_seqcore"] = peers[result["best_peer"]] / ok["seqcore"]["median_ms"]
    else:
        result["ratio_best_peer_over_seqcore"] = None
    if w.shared_init:
        losses = {fw: v["first_loss"] for fw, v in ok.items() if v.get("first_loss") is not None}
        if len(losses) > 1:
            vals = list(losses.values())
            rel = (max(vals) - min(vals)) / max(abs(statistics.median(vals)), 1e-12)
            result["first_loss_check"] = {"losses": losses, "max_rel_diff": rel, "agree": rel < 1e-3}
    return result


# --------------------------------------------------------------------------------------------------
# Peak memory (--memory): one fresh process per framework
# --------------------------------------------------------------------------------------------------


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError):
        pass
    return None


def _peak_mib() -> float:
    """High-water RSS of this process image. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    fork and exec, so a child of this (torch + TF sized) parent would start at the parent's peak."""
    hwm = _status_mib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(args: argparse.Namespace) -> None:
    """Runs in the subprocess: import one framework, set up one workload, run a few steps, and print
    the peak RSS after each phase as one JSON line."""
    (fw,) = args.frameworks.split(",")
    (name,) = args.workloads.split(",")
    out: dict[str, Any] = {"framework": fw, "workload": name, "rss_start_mib": _peak_mib()}
    loaded = frameworks.load(fw, THREADS)
    if not loaded.ok:
        out.update(status="skipped", reason=loaded.reason)
    else:
        out["rss_after_import_mib"] = _peak_mib()
        ctx = W.Context(threads=THREADS, quick=True, keras_mode=args.keras_mode, log=log)
        try:
            step = W.WORKLOADS[name].setup(fw, ctx)
        except W.Unavailable as e:
            out.update(status="skipped", reason=str(e))
        else:
            gc.collect()
            out["rss_after_setup_mib"] = _peak_mib()
            baseline = _status_mib("VmRSS") if _reset_peak() else None
            out["peak_reset"] = baseline is not None
            for _ in range(4):
                step()
            out["rss_peak_mib"] = _peak_mib()
            # Peak during the steps above the resident set before them (model, data, framework).
            ref = baseline if baseline is not None else out["rss_after_setup_mib"]
            out["step_peak_delta_mib"] = out["rss_peak_mib"] - ref
            out.update(status="ok", how=step.how)
    print("MEMORY_RESULT " + json.dumps(out), flush=True)


def measure_memory(names: list[str], fws: list[str], results: dict[str, Any]) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    for name in names:
        mem[name] = {}
        for fw in fws:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child"]
            cmd += ["--workloads", name, "--frameworks", fw, "--threads", str(THREADS)]
            if fw == "keras":
                # The mode the timing picked for this workload, else train_on_batch: the memory probe
                # must not time candidates (that would run steps before the baseline is taken).
                kind = W.WORKLOADS[name].kind
                picked = results.get(name, {}).get("frameworks", {}).get("keras", {}).get("details", {}).get("mode")
                cmd += ["--keras-mode", picked or ("train_on_batch" if kind == "train" else "tf.function")]
            log(f"memory: {name} / {fw} (fresh process)")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEMORY_RESULT ")]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                mem[name][fw] = {"status": "error", "reason": f"exit {proc.returncode}: {tail}"}
            else:
                mem[name][fw] = json.loads(lines[-1].split(" ", 1)[1])
    return mem


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms * 1e3:.0f} us"


def print_report(report: dict[str, Any], fws: list[str]) -> None:
    peak = report["roofline"]["gflops"]
    print()
    print(
        f"seqcore {report['seqcore'].get('version', '?')} | {report['machine']['cpu_model']} | "
        f"{report['threads']} threads for every framework | SGEMM roofline {peak:.0f} GFLOP/s "
        f"({report['roofline']['what']})"
    )
    print(
        f"median ms per step over {report['rounds']}+ alternating rounds (quiet batches only: other "
        f"processes <= {report['noise_threshold']} cores); (x%) = roofline time / step time; "
        "ratio = best peer / seqcore (> 1: seqcore faster); * = not enough quiet batches, median of all"
    )
    print()
    head = ["workload", "GFLOP", "roofline", *fws, "ratio"]
    rows = []
    for name, r in report["workloads"].items():
        row = [name, f"{r['flops'] / 1e9:.3g}", fmt_ms(r["roofline_ms"])]
        for fw in fws:
            v = r["frameworks"].get(fw)
            if v is None:
                row.append("-")
            elif v["status"] == "ok":
                flag = "*" if v.get("noisy") else ""
                row.append(f"{fmt_ms(v['median_ms'])}{flag} ({r['roofline_ms'] / v['median_ms']:.0%})")
            else:
                row.append(v["status"])
        ratio = r["ratio_best_peer_over_seqcore"]
        row.append(f"{ratio:.2f}x vs {r['best_peer']}" if ratio is not None else "-")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for i, row in enumerate([head, *rows]):
        print(
            "  ".join(
                str(x).ljust(wd) if j == 0 else str(x).rjust(wd)
                for j, (x, wd) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * wd for wd in widths))

    print()
    print("How each framework ran, round spread (min-max ms/step), and skips:")
    for name, r in report["workloads"].items():
        print(f"  {name}: {r['description']}  [FLOPs: {r['flops_formula']}]")
        for fw in fws:
            v = r["frameworks"].get(fw)
            if v is None:
                continue
            if v["status"] == "ok":
                nq, nr = v["quiet_rounds"], len(v["rounds_ms"])
                used = f"all {nr} batches (only {nq} quiet: NOISY)" if v["noisy"] else f"{nq}/{nr} quiet batches"
                print(
                    f"    {fw:8s} {v['how']}; {v['steps_per_round']} steps/batch, {used}, "
                    f"{fmt_ms(v['min_ms'])} - {fmt_ms(v['max_ms'])}"
                )
            else:
                print(f"    {fw:8s} {v['status'].upper()}: {v['reason']}")
        noise = r.get("other_load_cores")
        if noise is not None and noise == noise:
            warn = "  <- noisy machine" if noise > 0.25 else ""
            print(f"    other processes used {noise:.2f} cores on average over the {r['rounds_run']} rounds{warn}")
        chk = r.get("first_loss_check")
        if chk:
            losses = ", ".join(f"{fw} {x:.6g}" for fw, x in chk["losses"].items())
            verdict = "agree" if chk["agree"] else f"DISAGREE (rel diff {chk['max_rel_diff']:.2g})"
            print(f"    first-step loss from the same data and weights: {losses} -> {verdict}")
    for note in report.get("notes", []):
        print(f"  note: {note}")
    skipped = {fw: v for fw, v in report["frameworks"].items() if not v["ok"]}
    for fw, v in skipped.items():
        print(f"  framework {fw} skipped everywhere: {v['reason']}")

    if report.get("memory"):
        print()
        print("Peak RSS (--memory; VmHWM of a fresh process per framework, MiB). step delta = peak during 4")
        print("steps minus the resident set just before them (framework + model + data + compiled graphs):")
        print("  workload       framework  after import  after setup  peak after 4 steps  step delta")
        for name, per_fw in report["memory"].items():
            for fw, m in per_fw.items():
                if m.get("status") == "ok":
                    print(
                        f"  {name:14s} {fw:9s}  {m['rss_after_import_mib']:12.0f}"
                        f"  {m['rss_after_setup_mib']:11.0f}  {m['rss_peak_mib']:18.0f}"
                        f"  {m['step_peak_delta_mib']:10.0f}"
                    )
                else:
                    print(f"  {name:14s} {fw:9s}  {m.get('status', '?')}: {m.get('reason')}")


def main() -> int:
    args = ARGS
    if args.list:
        for name, w in W.WORKLOADS.items():
            flag = "" if w.default else "  (not in the default set)"
            print(f"{name:14s} {w.flops / 1e9:8.3g} GFLOP  {w.description}{flag}")
        return 0
    if args.memory_child:
        memory_child(args)
        return 0

    if args.workloads in (None, ""):
        names = [n for n, w in W.WORKLOADS.items() if w.default]
    elif args.workloads == "all":
        names = list(W.WORKLOADS)
    else:
        names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in W.WORKLOADS]
    if unknown:
        log(f"unknown workload(s) {unknown}; registered: {', '.join(W.WORKLOADS)}")
        return 2
    fws = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    bad = [f for f in fws if f not in W.FRAMEWORKS]
    if bad:
        log(f"unknown framework(s) {bad}; known: {', '.join(W.FRAMEWORKS)}")
        return 2

    t_start = time.perf_counter()
    loadavg_start = os.getloadavg()
    notes = frameworks.isolate(fws)
    loaded = {fw: frameworks.load(fw, THREADS) for fw in fws}
    for fw, lo in loaded.items():
        log(f"{fw:8s} {lo.version} threads {lo.threads}" if lo.ok else f"{fw:8s} SKIPPED: {lo.reason}")
    active = [fw for fw in fws if loaded[fw].ok]

    seqcore_info: dict[str, Any] = {}
    if loaded.get("seqcore") and loaded["seqcore"].ok:
        import seqcore

        seqcore_info = seqcore.info()

    reps = 3 if args.quick else 5
    log("SGEMM roofline (numpy float32 2048^3) ...")
    roof_runs = [sgemm_roofline(reps)]
    log(f"  {statistics.median(roof_runs[0]['gflops_runs']):.0f} GFLOP/s")

    results: dict[str, Any] = {}
    for name in names:
        w = W.WORKLOADS[name]
        log(f"{name}: {w.description}")
        r = bench_workload(w, active, args)
        for fw in fws:
            if not loaded[fw].ok:
                r["frameworks"][fw] = {"status": "skipped", "reason": loaded[fw].reason}
        results[name] = r

    # Measured again at the end: the quiet runs of both measurements make the roofline.
    roof_runs.append(sgemm_roofline(reps))
    roof = combine_roofline(roof_runs, args.noise_threshold)
    log(f"SGEMM roofline: {roof['gflops']:.0f} GFLOP/s ({roof['what']})")
    for name, r in results.items():
        r["roofline_ms"] = W.WORKLOADS[name].flops / (roof["gflops"] * 1e9) * 1e3

    memory = None
    if args.memory:
        mem_names = [n.strip() for n in args.memory_workloads.split(",") if n.strip()]
        memory = measure_memory([n for n in mem_names if n in W.WORKLOADS], fws, results)

    report = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "quick": args.quick,
        "rounds": args.rounds,
        "max_rounds": args.max_rounds,
        "noise_threshold": args.noise_threshold,
        "batch_seconds": args.batch_seconds,
        "threads": THREADS,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_flags": cpu_flags(),
            "logical_cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_start": loadavg_start,
            "loadavg_end": os.getloadavg(),
        },
        "seqcore": seqcore_info,
        "frameworks": {
            fw: {"ok": lo.ok, "version": lo.version, "reason": lo.reason, "threads": lo.threads}
            for fw, lo in loaded.items()
        },
        "roofline": roof,
        "notes": notes,
        "workloads": results,
        "memory": memory,
        "wall_seconds": time.perf_counter() - t_start,
    }
    print_report(report, fws)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {path} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
