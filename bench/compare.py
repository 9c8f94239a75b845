"""Driver of bench/compare: the PyTorch reference and DetSeg.Bench side by side, alternating, N rounds.

Run through `bench/compare` (it builds DetSeg.Bench and picks the interpreter). Standard library only, so any
python3 runs it; the PyTorch side always runs with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEBIAN_PYTHON = '/usr/bin/python3'
SYSTEM_BLAS = '/usr/lib/x86_64-linux-gnu/libblas.so.3'
THREADS = 2

# (label, PyTorch key, DetSeg key, kind). kind sets the goal of issue 15: data rows <= 0.5, compute rows <= 0.8,
# bf16 rows (DetSeg in bfloat16 against PyTorch in float32) <= 0.5.
ROWS = [
    ('metrics update 4x256x256', 'metrics_update_ms', 'metrics_update_ms', 'data'),
    ('Penn-Fudan train item 256', 'pf_item_ms', 'pf_item_ms', 'data'),
    ('Penn-Fudan eval item 256', 'pf_item_eval_ms', 'pf_item_eval_ms', 'data'),
    ('MNIST-clutter item 128', 'mc_item_ms', 'mc_item_ms', 'data'),
    ('MCDetection item 128', 'mcdet_item_ms', 'mcdet_item_ms', 'data'),
    ('U-Net (64..1024) train step 4x3x256', 'unet_train_step_ms_256_b4', 'unet_train_step_ms_256_b4', 'compute'),
    ('U-Net inference 4x3x256', 'unet_infer_ms_256_b4', 'unet_infer_ms_256_b4', 'compute'),
    ('YOLOv3 forward 416', 'yolo_forward_ms_416_b1', 'yolo_forward_ms_416_b1', 'compute'),
    ('YOLOv3 detect 416', 'yolo_detect_ms_416_b1', 'yolo_detect_ms_416_b1', 'compute'),
    ('YOLOv3 train step 8x128 (heads only)', 'yolo_train_step_ms_128_b8', 'yolo_train_step_ms_128_b8', 'compute'),
    ('attention block 65x32x256', 'attention_block_ms', 'attention_block_ms', 'compute'),
    ('ViT (MNIST) train step b128', 'vit_train_step_ms_b128', 'vit_train_step_ms_b128', 'compute'),
    ('YOLOv3 forward 416, DetSeg BN folded', 'yolo_forward_ms_416_b1', 'yolo_forward_fused_ms_416_b1', 'compute'),
    ('YOLOv3 detect 416, DetSeg BN folded (Predictor)', 'yolo_detect_ms_416_b1', 'yolo_detect_fused_ms_416_b1', 'compute'),
    ('U-Net inference 4x3x256, DetSeg bf16', 'unet_infer_ms_256_b4', 'unet_infer_bf16_ms_256_b4', 'bf16'),
    ('YOLOv3 forward 416, DetSeg bf16 + BN folded', 'yolo_forward_ms_416_b1', 'yolo_forward_bf16_ms_416_b1', 'bf16'),
    ('YOLOv3 detect 416, DetSeg bf16 + BN folded', 'yolo_detect_ms_416_b1', 'yolo_detect_bf16_ms_416_b1', 'bf16'),
]
GOALS = {'data': 0.5, 'compute': 0.8, 'bf16': 0.5}
# DetSeg's native-heap policy (lib/DetSeg/Runtime/NativeHeap.cs) as environment variables. A third side runs PyTorch
# with them, so the table shows how much of a ratio is that policy: the goals are against PyTorch as installed, the
# second ratio against PyTorch given the same policy (PyTorch 1.13 ignores THP_MEM_ALLOC_ENABLE; glibc reads the rest).
HEAP_ENV = {'THP_MEM_ALLOC_ENABLE': '1', 'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': '2147483647'}
SIDES = ['pytorch', 'detseg', 'pytorch_heap']


def log(*a):
    print('[compare]', *a, file=sys.stderr, flush=True)


def fail(msg):
    print(f'bench/compare: {msg}', file=sys.stderr)
    sys.exit(1)


class SideFailed(Exception):
    """One side's process exited non-zero (e.g. a crash): the round is retried once, the failure recorded."""


def active_blas():
    """Real path of the system BLAS (Debian's alternatives link) or None off Debian."""
    return os.path.realpath(SYSTEM_BLAS) if os.path.exists(SYSTEM_BLAS) else None


def check_blas(install):
    """PyTorch 1.13 from Debian calls the system BLAS for Linear and ConvTranspose2d: with Debian's reference BLAS
    they are ~20x slower and the comparison would flatter DetSeg. Require OpenBLAS (pthread build)."""
    blas = active_blas()
    if blas and 'openblas' not in blas and install:
        log(f'system BLAS is {blas}: installing libopenblas0-pthread')
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'libopenblas0-pthread'], check=False)
        blas = active_blas()
    if blas is None:
        fail(f'{SYSTEM_BLAS} not found: cannot tell which BLAS PyTorch uses (Debian layout expected)')
    if 'openblas' not in blas:
        fail(f'the active system BLAS is {blas} (reference BLAS): PyTorch\'s Linear/ConvTranspose2d would be ~20x slow '
             'and the comparison meaningless. Install libopenblas0-pthread as root (apt-get install -y '
             'libopenblas0-pthread) or rerun with --install.')
    if 'pthread' not in blas:
        log(f'WARNING: system BLAS is {blas}, not the pthread OpenBLAS build the baselines used')
    return blas


def check_torch(install):
    probe = [DEBIAN_PYTHON, '-c', 'import torch, torchvision; print(torch.__version__, torchvision.__version__)']
    r = subprocess.run(probe, capture_output=True, text=True) if os.path.exists(DEBIAN_PYTHON) else None
    if (r is None or r.returncode != 0) and install:
        log('python3-torch missing: installing python3-torch python3-torchvision python3-pil python3-numpy')
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'python3-torch', 'python3-torchvision', 'python3-pil',
                        'python3-numpy'], check=False)
        r = subprocess.run(probe, capture_output=True, text=True)
    if r is None or r.returncode != 0:
        fail(f'{DEBIAN_PYTHON} cannot import torch/torchvision: install Debian\'s python3-torch python3-torchvision '
             '(apt-get install -y python3-torch python3-torchvision python3-pil python3-numpy) or rerun with --install'
             + (f'\n{r.stderr.strip()[-400:]}' if r else ''))
    return r.stdout.strip()


def run_json(cmd, env, what):
    """Runs cmd, streams its stderr, returns the JSON object printed last on stdout."""
    log(what + ': ' + ' '.join(cmd))
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if r.returncode != 0:
        raise SideFailed(f'{what} failed (exit {r.returncode}): {" ".join(cmd)}')
    text = r.stdout.strip()
    start = text.find('{')
    if start < 0:
        fail(f'{what} printed no JSON')
    out = json.loads(text[start:])
    log(f'{what} took {time.perf_counter() - t0:.0f} s')
    return out


def pytorch_round(ref, env, tmp):
    base = run_json([DEBIAN_PYTHON, str(ref / 'bench.py')], dict(env, BENCH_OUT=str(tmp / 'bench_py.json')), 'PyTorch bench.py')
    extra = run_json([DEBIAN_PYTHON, str(REPO / 'bench' / 'reference_extra.py')], env, 'PyTorch reference_extra.py')
    base.pop('facts', None)
    details = dict(base.pop('details', {}), **extra.pop('details', {}))
    contention = [base.pop('contention', None), extra.pop('contention', None)]
    return dict(base, **extra, details=details, contention=contention)


def detseg_round(dll, env):
    report = run_json(['dotnet', str(dll), 'compare'], env, 'DetSeg.Bench compare')
    return dict(report['compare'], machine=report['machine'])


def spread(values):
    return [min(values), max(values)] if values else None


def summarize(rounds):
    rows = []
    for label, pk, dk, kind in ROWS:
        py = [r['pytorch'][pk] for r in rounds if isinstance(r['pytorch'].get(pk), (int, float))]
        ds = [r['detseg'][dk] for r in rounds if isinstance(r['detseg'].get(dk), (int, float))]
        ph = [r['pytorch_heap'][pk] for r in rounds if isinstance(r.get('pytorch_heap', {}).get(pk), (int, float))]
        row = {'work': label, 'kind': kind, 'pytorch_key': pk, 'detseg_key': dk,
               'pytorch_ms_rounds': py, 'detseg_ms_rounds': ds, 'pytorch_heap_ms_rounds': ph}
        if py and ds:
            pm, dm = statistics.median(py), statistics.median(ds)
            per_round = [d / p for p, d in zip(py, ds)]
            row.update(pytorch_ms=round(pm, 3), detseg_ms=round(dm, 3), ratio=round(dm / pm, 3),
                       ratio_rounds=[round(x, 3) for x in per_round], goal=GOALS[kind], met=dm / pm <= GOALS[kind])
        if ph and ds:
            hm = statistics.median(ph)
            row.update(pytorch_heap_ms=round(hm, 3), ratio_heap=round(statistics.median(ds) / hm, 3))
        rows.append(row)
    return rows


def fmt(v):
    if v is None:
        return 'n/a'
    return f'{v:,.0f}' if v >= 100 else f'{v:.3g}' if v < 1 else f'{v:.1f}'


def markdown(report):
    lines = [f"# bench/compare, {report['when_utc']}", '',
             f"Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} CPUs, "
             f"load average at start {report['machine']['loadavg_start']}, at end {report['machine']['loadavg_end']}.  ",
             f"PyTorch {report['pytorch']['versions']} ({DEBIAN_PYTHON}), BLAS {report['pytorch']['blas']}; "
             f"DetSeg.Bench ({report['detseg']['dotnet']}, libtorch via TorchSharp); {THREADS} threads each.  ",
             f"Command: `{report['command']}` — {report['rounds']} alternating round(s), BENCH_REPS={report['reps']}, "
             f"BENCH_FOREIGN_MAX={report['foreign_max']}; per side and round the median of the repetitions, here the "
             'median over rounds; spread = min–max over rounds; ratio = DetSeg / PyTorch (lower is better).  ',
             'DetSeg runs with its native-heap policy (huge pages for large tensors, freed memory kept: '
             '`lib/DetSeg/Runtime/NativeHeap.cs`); the goals are against PyTorch as installed. "PyTorch, same heap" '
             f"is PyTorch given that policy through the environment ({' '.join(f'{k}={v}' for k, v in HEAP_ENV.items())}), "
             'and the last ratio DetSeg / that.', '',
             '| work | PyTorch ms | DetSeg ms | ratio | goal | PyTorch spread | DetSeg spread | ratio per round '
             '| PyTorch, same heap ms | ratio to it |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in report['rows']:
        if 'ratio' not in r:
            lines.append(f"| {r['work']} | {fmt(statistics.median(r['pytorch_ms_rounds'])) if r['pytorch_ms_rounds'] else 'n/a'} | "
                         f"{fmt(statistics.median(r['detseg_ms_rounds'])) if r['detseg_ms_rounds'] else 'n/a'} | n/a | | | | | | |")
            continue
        ps, ds = spread(r['pytorch_ms_rounds']), spread(r['detseg_ms_rounds'])
        ratio = f"**{r['ratio']:.2f}**" if not r['met'] else f"{r['ratio']:.2f}"
        heap = f"{r['ratio_heap']:.2f}" if 'ratio_heap' in r else 'n/a'
        lines.append(f"| {r['work']} | {fmt(r['pytorch_ms'])} | {fmt(r['detseg_ms'])} | {ratio} | ≤ {r['goal']} | "
                     f"{fmt(ps[0])}–{fmt(ps[1])} | {fmt(ds[0])}–{fmt(ds[1])} | {', '.join(f'{x:.2f}' for x in r['ratio_rounds'])} | "
                     f"{fmt(r.get('pytorch_heap_ms'))} | {heap} |")
    roof = report.get('roofline')
    if roof:
        lines += ['', 'Roofline (DetSeg, last round): ' + '; '.join(f'{k} {v}' for k, v in roof.items())]
    if report.get('rounds_planned', report['rounds']) > report['rounds']:
        lines += ['', f"**Incomplete:** {report['rounds']} of {report['rounds_planned']} planned rounds."]
    for f in report.get('failures') or []:
        lines += ['', f"Round {f['round']}, {f['side']}, attempt {f['attempt']}: {f['error']}"]
    lines += ['', 'Bold ratios miss the goal of issue 15. Raw per-round JSON: the .json beside this file.']
    return '\n'.join(lines) + '\n'


def cpu_model():
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def loadavg():
    try:
        return open('/proc/loadavg').read().split()[0:3]
    except OSError:
        return None


def selftest():
    """Checks the table arithmetic on made-up rounds (no torch, no .NET): medians over rounds, ratio of medians,
    per-round ratios, goals, and a row missing on one side. Run by `bench/compare --selftest` (CI-safe, < 1 s)."""
    py = {'metrics_update_ms': 4.0, 'unet_infer_ms_256_b4': 2000.0}
    rounds = [{'pytorch': dict(py), 'detseg': {'metrics_update_ms': 1.0, 'unet_infer_ms_256_b4': 1800.0,
                                               'unet_infer_bf16_ms_256_b4': 900.0}},
              {'pytorch': dict(py, metrics_update_ms=6.0), 'detseg': {'metrics_update_ms': 2.0, 'unet_infer_ms_256_b4': 1500.0}},
              {'pytorch': dict(py, metrics_update_ms=5.0), 'detseg': {'metrics_update_ms': 4.0, 'unet_infer_ms_256_b4': 1700.0}}]
    rounds[0]['pytorch_heap'] = {'metrics_update_ms': 3.0, 'unet_infer_ms_256_b4': 1000.0}
    rounds[1]['pytorch_heap'] = {'metrics_update_ms': 5.0}
    rows = {r['work']: r for r in summarize(rounds)}
    m = rows['metrics update 4x256x256']
    # medians 5.0 and 2.0 -> 0.4 (data goal 0.5: met); per round 1/4, 2/6, 4/5
    assert (m['pytorch_ms'], m['detseg_ms'], m['ratio'], m['met']) == (5.0, 2.0, 0.4, True), m
    assert m['ratio_rounds'] == [0.25, 0.333, 0.8], m
    assert (m['pytorch_heap_ms'], m['ratio_heap']) == (4.0, 0.5), m   # median of 3 and 5; DetSeg's median 2.0 / 4.0
    u = rows['U-Net inference 4x3x256']
    assert (u['ratio'], u['met']) == (0.85, False), u          # 1700 / 2000 > compute goal 0.8
    assert (u['pytorch_heap_ms'], u['ratio_heap']) == (1000.0, 1.7), u  # the heap side only in round 1
    b = rows['U-Net inference 4x3x256, DetSeg bf16']
    assert b['detseg_ms_rounds'] == [900.0] and b['ratio'] == 0.45, b  # only rounds that have the row count
    assert 'ratio' not in rows['YOLOv3 forward 416']
    report = {'when_utc': 'now', 'command': 'bench/compare --selftest', 'rounds': 3, 'reps': 1, 'foreign_max': 2.0,
              'machine': {'cpu_model': 'x', 'cpu_count': 2, 'loadavg_start': None, 'loadavg_end': None},
              'pytorch': {'versions': 'v', 'blas': 'openblas'}, 'detseg': {'dotnet': 'd'}, 'rows': summarize(rounds),
              'roofline': {'yolo_forward_gflop_416': 65.88}}
    md = markdown(report)
    assert '| metrics update 4x256x256 | 5.0 | 2.0 | 0.40 | ≤ 0.5 |' in md, md
    assert '| 0.25, 0.33, 0.80 | 4.0 | 0.50 |' in md, md
    assert '**0.85**' in md and '| YOLOv3 forward 416 | n/a | n/a | n/a |' in md, md
    # an interrupted run: the complete rounds are written, with the failures, and no half-written file is left
    import tempfile, types
    with tempfile.TemporaryDirectory() as d:
        done = [dict(r, detseg=dict(r['detseg'], machine={'dotnet': 'd'}), pytorch=dict(r['pytorch'], blas_library=['/x/openblas.so']))
                for r in rounds[:2]]
        failures = [{'round': 3, 'side': 'detseg', 'attempt': 1, 'error': 'DetSeg.Bench compare failed (exit -11)'}]
        write_report(types.SimpleNamespace(command='bench/compare --selftest', out=d), done, failures, 3, 1, 2.0,
                     dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), None, 'v', 'openblas', final=False)
        written = sorted(p.name for p in Path(d).iterdir())
        assert written == ['compare-20260101-0000.json', 'compare-20260101-0000.md'], written
        saved = json.loads((Path(d) / 'compare-20260101-0000.json').read_text())
        assert (saved['rounds'], saved['rounds_planned'], len(saved['failures'])) == (2, 3, 1), saved
        md2 = (Path(d) / 'compare-20260101-0000.md').read_text()
        assert '**Incomplete:** 2 of 3 planned rounds.' in md2 and 'exit -11' in md2, md2
    print('bench/compare selftest: ok')
    import compare_ops
    compare_ops.selftest()


def main():
    if '--selftest' in sys.argv:
        return selftest()
    if '--ops' in sys.argv:  # raw ops side by side: bench/compare_ops.py
        import compare_ops
        return compare_ops.main()
    ap = argparse.ArgumentParser(prog='bench/compare', description=__doc__)
    ap.add_argument('--rounds', type=int, default=3, help='alternating rounds (default 3)')
    ap.add_argument('--reps', type=int, help='repetitions per row and side (BENCH_REPS; default 5, quick 1)')
    ap.add_argument('--quick', action='store_true', help='1 round, 1 repetition, no idle-waiting: a smoke test')
    ap.add_argument('--foreign-max', type=float, help='BENCH_FOREIGN_MAX: redo repetitions while other processes use '
                    'more than this share of the CPUs (default 0.10; quick: off)')
    ap.add_argument('--install', action='store_true', help='apt-get install what is missing (root)')
    ap.add_argument('--out', default=str(REPO / 'bench' / 'results'), help='folder for compare-<date>.json/.md')
    ap.add_argument('--dll', required=True, help='built DetSeg.Bench.dll (bench/compare passes it)')
    ap.add_argument('--command', default='bench/compare', help=argparse.SUPPRESS)
    args = ap.parse_args()
    rounds = 1 if args.quick and args.rounds == 3 else args.rounds
    reps = args.reps or (1 if args.quick else 5)
    foreign = args.foreign_max if args.foreign_max is not None else (2.0 if args.quick else 0.10)

    versions = check_torch(args.install)
    blas = check_blas(args.install)
    ref = Path(os.environ.get('DETSEG_REFERENCE') or (REPO / '..' / 'shared' / 'reference')).resolve()
    if not (ref / 'bench.py').is_file():
        fail(f'the PyTorch reference bench is not at {ref}/bench.py (shared/reference beside the clone, or set DETSEG_REFERENCE)')
    data = os.environ.get('DETSEG_DATA') or str((REPO / '..' / 'shared' / 'data').resolve())
    base_env = {k: v for k, v in os.environ.items() if k not in HEAP_ENV}
    env = dict(base_env, BENCH_REPS=str(reps), BENCH_FOREIGN_MAX=str(foreign), DETSEG_BENCH_THREADS=str(THREADS),
               DETSEG_DATA=data, DETSEG_REFERENCE=str(ref),
               PENNFUDAN_ROOT=os.environ.get('PENNFUDAN_ROOT', str(Path(data) / 'PennFudanPed')),
               MNIST_ROOT=os.environ.get('MNIST_ROOT', str(Path(data) / 'MNIST')),
               OMP_NUM_THREADS=str(THREADS))
    tmp = Path(args.out) / '.tmp'
    tmp.mkdir(parents=True, exist_ok=True)

    started = dt.datetime.now(dt.timezone.utc)
    load_start = loadavg()
    results, failures = [], []
    for i in range(rounds):
        r = {}
        # rotate who goes first, so a drift in machine load over a round does not always hit the same side
        for side in SIDES[i % 3:] + SIDES[:i % 3]:
            for attempt in (1, 2):
                log(f'round {i + 1}/{rounds}: {side}' + (' (retry)' if attempt == 2 else ''))
                try:
                    r[side] = (detseg_round(args.dll, env) if side == 'detseg'
                               else pytorch_round(ref, dict(env, **HEAP_ENV) if side == 'pytorch_heap' else env, tmp))
                    break
                except SideFailed as e:
                    # recorded in the report: a crash is a finding, not something to hide behind the retry
                    failures.append({'round': i + 1, 'side': side, 'attempt': attempt, 'error': str(e)})
                    log(str(e))
            if side not in r:
                break
        if len(r) < len(SIDES):
            log(f'round {i + 1} failed twice on one side: writing the {len(results)} complete round(s)')
            break
        results.append(r)
        # every complete round is on disk at once: a later crash or a kill loses no finished round
        write_report(args, results, failures, rounds, reps, foreign, started, load_start, versions, blas, final=i + 1 == rounds)
    shutil.rmtree(tmp, ignore_errors=True)
    if not results:
        fail('no round completed: ' + '; '.join(f['error'] for f in failures))
    if len(results) < rounds:
        write_report(args, results, failures, rounds, reps, foreign, started, load_start, versions, blas, final=True)
        sys.exit(1)


def write_report(args, results, failures, rounds, reps, foreign, started, load_start, versions, blas, final):
    last = results[-1]['detseg']
    report = {
        'when_utc': started.strftime('%Y-%m-%d %H:%M UTC'),
        'command': args.command,
        'rounds': len(results), 'rounds_planned': rounds, 'reps': reps, 'foreign_max': foreign, 'threads': THREADS,
        'failures': failures,
        'wall_s': round((dt.datetime.now(dt.timezone.utc) - started).total_seconds()),
        'machine': {'cpu_model': cpu_model(), 'cpu_count': os.cpu_count(), 'os': platform.platform(),
                    'loadavg_start': load_start, 'loadavg_end': loadavg()},
        'pytorch': {'versions': versions, 'python': DEBIAN_PYTHON, 'blas': blas,
                    'blas_loaded': results[-1]['pytorch'].get('blas_library')},
        'detseg': {'dotnet': last['machine'].get('dotnet'), 'device': last['machine'].get('device'),
                   'torch_threads': last['machine'].get('torch_threads')},
        'roofline': last.get('roofline'),
        'rows': summarize(results),
        'raw_rounds': results,
    }
    loaded = report['pytorch']['blas_loaded'] or []
    if loaded and not any('openblas' in p for p in loaded):
        fail(f'PyTorch loaded {loaded}, no OpenBLAS: results not written')
    stamp = started.strftime('%Y%m%d-%H%M')
    out = Path(args.out)
    # written whole to a temporary name, then renamed: a reader never sees half a report
    for suffix, text in (('json', json.dumps(report, indent=1) + '\n'), ('md', markdown(report))):
        part = out / f'.compare-{stamp}.{suffix}.part'
        part.write_text(text)
        os.replace(part, out / f'compare-{stamp}.{suffix}')
    if final:
        print(markdown(report))
    log(f'wrote {out}/compare-{stamp}.json and .md ({len(results)} of {rounds} round(s), {report["wall_s"]} s)')

if __name__ == '__main__':
    main()
