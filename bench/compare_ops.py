"""`bench/compare --ops`: raw ops side by side, PyTorch (bench/reference_ops.py) vs DetSeg (DetSeg.Bench -- ops).

Both sides time the same op shapes (those of the U-Net inference at 4x3x256x256 and the YOLOv3-416 forward, a
2048^2 matmul, the metrics-update ops) alternately, N rounds (default 2), 2 threads each, and this writes
bench/results/ops-<date>.json and .md: op, calls per forward, PyTorch ms, DetSeg ms, ratio, notes; then per model
the whole forward against the sum of its ops (kernels vs driving) and the ops' time by kind. Before the rounds, each
side runs every model op once with oneDNN's verbose log on: the table names the kernel each side got.
"""
import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import compare as C

KINDS = ('conv2d', 'conv_transpose2d', 'batch_norm', 'leaky_relu', 'max_pool2d', 'cat')


def kernels(stdout):
    """{key: 'convolution jit:avx512_core + 3 reorders'} from oneDNN's verbose lines after each `OPS_PROBE key` line
    and before `OPS_PROBE_END` (oneDNN 2.x: `onednn_verbose,exec,cpu,KIND,IMPL,...`; 3.x adds fields before `exec`);
    no such line: the op did not run on oneDNN (an ATen kernel, or BLAS)."""
    prims, key = {}, None
    for line in stdout.splitlines():
        if line == 'OPS_PROBE_END':
            key = None
        elif line.startswith('OPS_PROBE '):
            key = line[len('OPS_PROBE '):].strip()
            prims[key] = []
        elif key and 'verbose' in line and ',exec,' in line:
            f = line.split(',')
            i = f.index('exec')
            prims[key].append((f[i + 2], f[i + 3]))
    out = {}
    for key, p in prims.items():
        main = [f'{kind} {impl}' for kind, impl in p if kind != 'reorder']
        n = len(p) - len(main)
        out[key] = ' + '.join(main + ([f'{n} reorder' + ('s' if n > 1 else '')] if n else [])) or 'not oneDNN'
    return out


def probe(cmd, env, what):
    """Runs one side with OPS_PROBE=1 and oneDNN's verbose log on; returns kernels() of its stdout."""
    C.log(f'{what} (kernel probe): ' + ' '.join(cmd))
    env = dict(env, OPS_PROBE='1', ONEDNN_VERBOSE='1', DNNL_VERBOSE='1')
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=C.REPO)
    if r.returncode != 0:
        C.fail(f'{what} kernel probe failed (exit {r.returncode}): {" ".join(cmd)}')
    return kernels(r.stdout)


def numeric(report):
    return {k: v for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def median_over(rounds, side, key):
    vals = [r[side][key] for r in rounds if isinstance(r[side].get(key), (int, float))]
    return (statistics.median(vals) if vals else None), vals


def note(py, ds):
    """What the two models ran differently for one key (from the specs), and DetSeg's ConvGuard hooks."""
    if not py or not ds:
        return 'DetSeg only' if ds else 'PyTorch only' if py else ''
    out = []
    for field in ('inplace', 'slope', 'bias', 'k', 'stride', 'pad', 'count'):
        if field in py and field in ds and py[field] != ds[field]:
            out.append(f'{field}: PyTorch {py[field]}, DetSeg {ds[field]}')
    if ds.get('conv_guard'):
        out.append('ConvGuard hooks')
    return '; '.join(out)


def summarize(rounds, probed=None):
    """Table rows (PyTorch's key order, then DetSeg-only keys) and, per model, forward vs ops sum and time by kind."""
    keys = list(numeric(rounds[0]['pytorch'])) + [k for k in numeric(rounds[0]['detseg']) if k not in rounds[0]['pytorch']]
    specs = {s: rounds[-1][s].get('specs', {}) for s in ('pytorch', 'detseg')}
    rows = []
    for key in keys:
        pm, pv = median_over(rounds, 'pytorch', key)
        dm, dv = median_over(rounds, 'detseg', key)
        spec = specs['pytorch'].get(key) or specs['detseg'].get(key) or {}
        rows.append({'op': key, 'count': spec.get('count'), 'pytorch_ms': pm, 'detseg_ms': dm,
                     'ratio': round(dm / pm, 3) if pm and dm is not None else None,
                     'pytorch_ms_rounds': pv, 'detseg_ms_rounds': dv,
                     'note': note(specs['pytorch'].get(key), specs['detseg'].get(key)) if spec else '',
                     'kernels': {side: (probed or {}).get(side, {}).get(key) for side in ('pytorch', 'detseg')}})
    by = {r['op']: r for r in rows}
    models = {}
    for model in ('unet', 'yolo'):
        if f'{model} forward (model)' not in by:
            continue
        m = {'forward_ms': {}, 'ops_sum_ms': {}, 'by_kind_ms': {}}
        for side in ('pytorch', 'detseg'):
            m['forward_ms'][side] = by[f'{model} forward (model)'][f'{side}_ms']
            kinds = {k: 0.0 for k in KINDS}
            for key, spec in specs[side].items():
                if key.startswith(model + ' ') and by.get(key, {}).get(f'{side}_ms') is not None:
                    kinds[spec['kind']] += spec['count'] * by[key][f'{side}_ms']
            m['by_kind_ms'][side] = {k: round(v, 3) for k, v in kinds.items() if v}
            m['ops_sum_ms'][side] = round(sum(kinds.values()), 3)
        models[model] = m
    return rows, models


def fmt(v):
    return 'n/a' if v is None else C.fmt(v)


def markdown(report):
    lines = [f"# bench/compare --ops, {report['when_utc']}", '',
             f"Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} CPUs, load average at start "
             f"{report['machine']['loadavg_start']}, at end {report['machine']['loadavg_end']}.  ",
             f"PyTorch {report['pytorch']['versions']} ({C.DEBIAN_PYTHON}, CPU capability {report['pytorch'].get('cpu_capability')}, "
             f"BLAS {report['pytorch']['blas']}); DetSeg.Bench ({report['detseg'].get('dotnet')}, libtorch via TorchSharp); "
             f"{C.THREADS} threads each.  ",
             f"Command: `{report['command']}` — {report['rounds']} alternating round(s), BENCH_REPS={report['reps']}, "
             f"BENCH_FOREIGN_MAX={report['foreign_max']}; per side the median over rounds of each op's median; "
             'ratio = DetSeg / PyTorch; calls = per forward (PyTorch\'s model).', '']
    for name, m in report['models'].items():
        f, s = m['forward_ms'], m['ops_sum_ms']
        lines.append(f"**{name}**: forward PyTorch {fmt(f['pytorch'])} ms, DetSeg {fmt(f['detseg'])} ms; sum of its ops "
                     f"(calls x ms) PyTorch {fmt(s['pytorch'])} ms, DetSeg {fmt(s['detseg'])} ms.  ")
        kinds = sorted(set(m['by_kind_ms']['pytorch']) | set(m['by_kind_ms']['detseg']))
        lines.append('by kind (PyTorch / DetSeg ms): ' + ', '.join(
            f"{k} {fmt(m['by_kind_ms']['pytorch'].get(k))} / {fmt(m['by_kind_ms']['detseg'].get(k))}" for k in kinds) + '  ')
    lines += ['', '| op | calls | PyTorch ms | DetSeg ms | ratio | notes | oneDNN kernel PyTorch / DetSeg |',
              '|---|---|---|---|---|---|---|']
    for r in report['rows']:
        ratio = 'n/a' if r['ratio'] is None else f"**{r['ratio']:.2f}**" if r['ratio'] > 1.25 else f"{r['ratio']:.2f}"
        k = r.get('kernels') or {}
        kern = '' if not any(k.values()) else k['pytorch'] if k['pytorch'] == k['detseg'] else f"{k['pytorch']} / {k['detseg']}"
        lines.append(f"| {r['op']} | {r['count'] or ''} | {fmt(r['pytorch_ms'])} | {fmt(r['detseg_ms'])} | {ratio} | {r['note']} | {kern} |")
    lines += ['', 'Bold: DetSeg more than 1.25x slower. YOLO\'s ops sum lacks its residual adds, upsampling and cats. '
              'Raw per-round JSON: the .json beside this file.']
    return '\n'.join(lines) + '\n'


def selftest():
    """Table and per-model arithmetic on made-up rounds (CI-safe; called by compare.py --selftest)."""
    spec = lambda kind, n, **kw: dict(kind=kind, count=n, **kw)  # noqa: E731
    py = {'unet forward (model)': 100.0, 'unet conv3x3 3>64 @256': 10.0, 'unet leaky 64 @256': 2.0,
          'specs': {'unet conv3x3 3>64 @256': spec('conv2d', 2), 'unet leaky 64 @256': spec('leaky_relu', 4, inplace=False)}}
    ds = {'unet forward (model)': 150.0, 'unet conv3x3 3>64 @256': 20.0, 'unet leaky 64 @256': 1.0, 'metrics x': 3.0,
          'specs': {'unet conv3x3 3>64 @256': spec('conv2d', 2, conv_guard=True), 'unet leaky 64 @256': spec('leaky_relu', 4, inplace=True)}}
    rounds = [{'pytorch': py, 'detseg': ds}, {'pytorch': dict(py, **{'unet conv3x3 3>64 @256': 14.0}), 'detseg': ds}]
    rows, models = summarize(rounds)
    by = {r['op']: r for r in rows}
    conv = by['unet conv3x3 3>64 @256']
    assert (conv['pytorch_ms'], conv['detseg_ms'], conv['ratio'], conv['count']) == (12.0, 20.0, 1.667, 2), conv
    assert conv['note'] == 'ConvGuard hooks', conv
    assert by['unet leaky 64 @256']['note'] == 'inplace: PyTorch False, DetSeg True', by['unet leaky 64 @256']
    assert by['metrics x']['pytorch_ms'] is None and by['metrics x']['ratio'] is None and by['metrics x']['note'] == ''
    u = models['unet']
    assert u['ops_sum_ms'] == {'pytorch': 32.0, 'detseg': 44.0}, u          # 2 x 12 + 4 x 2 ; 2 x 20 + 4 x 1
    assert u['by_kind_ms']['detseg'] == {'conv2d': 40.0, 'leaky_relu': 4.0}, u
    report = {'when_utc': 'now', 'command': 'x', 'rounds': 2, 'reps': 1, 'foreign_max': 2.0, 'rows': rows, 'models': models,
              'machine': {'cpu_model': 'x', 'cpu_count': 2, 'loadavg_start': None, 'loadavg_end': None},
              'pytorch': {'versions': 'v', 'blas': 'b'}, 'detseg': {}}
    md = markdown(report)
    assert '| unet conv3x3 3>64 @256 | 2 | 12.0 | 20.0 | **1.67** | ConvGuard hooks |' in md, md
    assert 'sum of its ops (calls x ms) PyTorch 32.0 ms, DetSeg 44.0 ms' in md, md
    log = '\n'.join(['onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward', 'OPS_PROBE a',
                     'onednn_verbose,exec,cpu,reorder,jit:blk,undef,x', 'onednn_verbose,exec,cpu,convolution,jit:avx2,fwd',
                     'onednn_verbose,exec,cpu,reorder,jit:uni,undef,x', 'OPS_PROBE b',
                     'onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward', 'OPS_PROBE_END',
                     'onednn_verbose,exec,cpu,convolution,jit:avx2,fwd', 'OPS_PROBE c', 'OPS_PROBE_END'])
    assert kernels(log) == {'a': 'convolution jit:avx2 + 2 reorders', 'b': 'convolution brg_conv_fwd:avx512_core',
                            'c': 'not oneDNN'}, kernels(log)
    print('bench/compare --ops selftest: ok')


def main():
    ap = argparse.ArgumentParser(prog='bench/compare --ops', description=__doc__)
    ap.add_argument('--ops', action='store_true', required=True)
    ap.add_argument('--rounds', type=int, default=2, help='alternating rounds (default 2)')
    ap.add_argument('--reps', type=int, default=5, help='repetitions per op and side (BENCH_REPS; default 5)')
    ap.add_argument('--foreign-max', type=float, default=0.10, help='BENCH_FOREIGN_MAX (default 0.10; 2 turns it off)')
    ap.add_argument('--only', help='sections, e.g. unet,metrics (OPS_ONLY: unet, yolo, matmul, metrics)')
    ap.add_argument('--install', action='store_true', help='apt-get install what is missing (root)')
    ap.add_argument('--out', default=str(C.REPO / 'bench' / 'results'), help='folder for ops-<date>.json/.md')
    ap.add_argument('--dll', required=True, help='built DetSeg.Bench.dll (bench/compare passes it)')
    ap.add_argument('--command', default='bench/compare --ops', help=argparse.SUPPRESS)
    args = ap.parse_args()
    versions = C.check_torch(args.install)
    blas = C.check_blas(args.install)
    env = dict(os.environ, BENCH_REPS=str(args.reps), BENCH_FOREIGN_MAX=str(args.foreign_max),
               DETSEG_BENCH_THREADS=str(C.THREADS), OMP_NUM_THREADS=str(C.THREADS))
    if args.only:
        env['OPS_ONLY'] = args.only
    started = dt.datetime.now(dt.timezone.utc)
    load_start = C.loadavg()
    py_cmd = [C.DEBIAN_PYTHON, str(C.REPO / 'bench' / 'reference_ops.py')]
    ds_cmd = ['dotnet', str(args.dll), 'ops']
    probed = {'pytorch': probe(py_cmd, env, 'PyTorch reference_ops.py'), 'detseg': probe(ds_cmd, env, 'DetSeg.Bench ops')}
    rounds = []
    for i in range(args.rounds):
        r = {}
        for side in (['pytorch', 'detseg'] if i % 2 == 0 else ['detseg', 'pytorch']):
            C.log(f'ops round {i + 1}/{args.rounds}: {side}')
            if side == 'pytorch':
                r[side] = C.run_json(py_cmd, env, 'PyTorch reference_ops.py')
            else:
                report = C.run_json(ds_cmd, env, 'DetSeg.Bench ops')
                r[side] = dict(report['ops'], machine=report['machine'])
        rounds.append(r)
    rows, models = summarize(rounds, probed)
    meta = rounds[-1]['pytorch'].get('meta', {})
    report = {'when_utc': started.strftime('%Y-%m-%d %H:%M UTC'), 'command': args.command, 'rounds': args.rounds,
              'reps': args.reps, 'foreign_max': args.foreign_max, 'threads': C.THREADS,
              'wall_s': round((dt.datetime.now(dt.timezone.utc) - started).total_seconds()),
              'machine': {'cpu_model': C.cpu_model(), 'cpu_count': os.cpu_count(), 'os': platform.platform(),
                          'loadavg_start': load_start, 'loadavg_end': C.loadavg()},
              'pytorch': {'versions': versions, 'blas': blas, 'blas_loaded': meta.get('blas_library'),
                          'cpu_capability': meta.get('cpu_capability'), 'mkldnn': meta.get('mkldnn')},
              'detseg': {'dotnet': rounds[-1]['detseg']['machine'].get('dotnet'), 'device': rounds[-1]['detseg']['machine'].get('device')},
              'models': models, 'rows': rows, 'kernels': probed, 'raw_rounds': rounds}
    stamp = started.strftime('%Y%m%d-%H%M')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f'ops-{stamp}.json').write_text(json.dumps(report, indent=1) + '\n')
    md = markdown(report)
    (out / f'ops-{stamp}.md').write_text(md)
    print(md)
    C.log(f'wrote {out}/ops-{stamp}.json and .md in {report["wall_s"]} s')


if __name__ == '__main__':
    sys.exit(main())
