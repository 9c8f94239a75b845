"""Raw torch ops on the shapes the course's models run, for bench/compare --ops (PyTorch side).

Run with Debian's interpreter (python3-torch): `/usr/bin/python3 bench/reference_ops.py`. Prints one JSON object:
`{op_key: median_ms, ...}` plus `counts` (calls per forward), `specs` (what each key ran) and `details`
(every timing). DetSeg's side is `DetSeg.Bench -- ops` (bench/DetSeg.Bench/OpsBench.cs): same keys, same protocol.

The op list is not typed in: forward hooks on seed_ref's SemanticSegmentor(3, 2) at 4x3x256x256 and YOLOv3(3, 80)
at 1x3x416x416 record every Conv2d, ConvTranspose2d, BatchNorm2d (eval), LeakyReLU and MaxPool2d call; each
distinct shape is then timed alone through torch.nn.functional on random tensors. U-Net's torch.cat follows each
transposed conv (its output and the equal-sized skip). Keys: `<model> <op> <in>><out> @<H>` (input side H).
`<model> forward (model)` is the whole module forward, `<model> ops sum` is sum(count x median) over that model's
keys (YOLO's lacks the residual adds, the upsampling and its cats). Plus a 2048^2 float32 matmul and the ops of
the metrics update (seed_ref.ClassificationMetrics.update, and DetSeg's bincount form) on 4x256x256.

Protocol: bench.py's timeit (2 threads, 2 warm-ups, median of BENCH_REPS repetitions, a repetition during which
other processes used more than BENCH_FOREIGN_MAX of the CPUs is redone), except that the idle wait runs once
per section, not per op (~140 ops x 3 s). OPS_ONLY=unet,yolo,matmul,metrics runs some sections only;
OPS_PROBE=1 runs each model op once, untimed, between `OPS_PROBE <key>` and `OPS_PROBE_END` (for oneDNN's verbose log).
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_extra import REF  # noqa: E402,F401  (puts ../shared/reference on sys.path)
import seed_ref as S  # noqa: E402
import bench as B  # noqa: E402  (sets 2 threads; its snapshot/idle helpers are the protocol)

ONLY = [s.strip() for s in os.environ.get('OPS_ONLY', '').split(',') if s.strip()]
PROBE = os.environ.get('OPS_PROBE') == '1'  # each model op once after a marker line, for oneDNN's verbose log
SMALL_REPS = max(B.REPS, 20)  # the metrics ops take ~1 ms: more repetitions, as bench.py's metrics row


def timeit(fn, reps=B.REPS, warmup=B.WARMUP):
    """bench.timeit without its idle wait up front (see the module docstring)."""
    for _ in range(warmup):
        fn()
    times, foreign, discarded = [], [], 0
    while len(times) < reps:
        a = B._cpu_snapshot()
        t0 = time.perf_counter()
        fn()
        dt = (time.perf_counter() - t0) * 1000.0
        f = B._foreign(a, B._cpu_snapshot())
        if f > B.FOREIGN_MAX and discarded < 30:
            discarded += 1
            B.wait_idle()
            continue
        times.append(dt)
        foreign.append(f)
    B.CONTENTION['discarded_reps'] += discarded
    return {'median': round(statistics.median(times), 4), 'min': round(min(times), 4), 'max': round(max(times), 4),
            'reps': reps, 'warmup': warmup, 'discarded_reps': discarded, 'max_foreign_cpu_share': round(max(foreign), 3)}


def side(t):
    return f'@{t.shape[2]}' if t.shape[2] == t.shape[3] else f'@{t.shape[2]}x{t.shape[3]}'


def record(prefix, model, x):
    """{key: spec} of the module calls of one eval forward, in first-call order, with `count`."""
    specs = {}

    def add(key, spec):
        specs.setdefault(key, dict(spec, count=0))['count'] += 1

    def hook(m, inp, out):
        t = inp[0]
        shape = list(t.shape)
        if isinstance(m, nn.ConvTranspose2d):
            k, s = m.kernel_size[0], m.stride[0]
            add(f'{prefix} convT{k}x{k}s{s} {m.in_channels}>{m.out_channels} {side(t)}',
                dict(kind='conv_transpose2d', input=shape, out=m.out_channels, k=k, stride=s, pad=m.padding[0], bias=m.bias is not None))
            add(f'{prefix} cat {m.out_channels}+{m.out_channels} {side(out)}', dict(kind='cat', input=list(out.shape)))
        elif isinstance(m, nn.Conv2d):
            k, s = m.kernel_size[0], m.stride[0]
            add(f'{prefix} conv{k}x{k}{"s%d" % s if s != 1 else ""} {m.in_channels}>{m.out_channels} {side(t)}',
                dict(kind='conv2d', input=shape, out=m.out_channels, k=k, stride=s, pad=m.padding[0], bias=m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            add(f'{prefix} bn {m.num_features} {side(t)}', dict(kind='batch_norm', input=shape))
        elif isinstance(m, nn.LeakyReLU):
            add(f'{prefix} leaky {shape[1]} {side(t)}', dict(kind='leaky_relu', input=shape, slope=m.negative_slope, inplace=m.inplace))
        elif isinstance(m, nn.MaxPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            add(f'{prefix} maxpool{k} {shape[1]} {side(t)}', dict(kind='max_pool2d', input=shape, k=k))

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.LeakyReLU, nn.MaxPool2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return specs


def op_fn(spec):
    """A closure running the spec's op once on fresh random tensors (made here, outside the timing)."""
    x = torch.randn(*spec['input'])
    kind, c = spec['kind'], spec['input'][1]
    if kind in ('conv2d', 'conv_transpose2d'):
        k, out = spec['k'], spec['out']
        w = torch.randn(out, c, k, k) * 0.05 if kind == 'conv2d' else torch.randn(c, out, k, k) * 0.05
        b = torch.randn(out) if spec['bias'] else None
        if kind == 'conv2d':
            return lambda: F.conv2d(x, w, b, spec['stride'], spec['pad'])
        return lambda: F.conv_transpose2d(x, w, b, spec['stride'], spec['pad'])
    if kind == 'batch_norm':
        mean, var, w, b = torch.randn(c), torch.rand(c) + 0.5, torch.randn(c), torch.randn(c)
        return lambda: F.batch_norm(x, mean, var, w, b, False, 0.1, 1e-5)
    if kind == 'leaky_relu':
        if spec['inplace']:
            x.abs_()  # repeated in-place calls would shrink the negatives to denormals (slow); the kernel is sign-blind
            return lambda: F.leaky_relu_(x, spec['slope'])
        return lambda: F.leaky_relu(x, spec['slope'])
    if kind == 'max_pool2d':
        return lambda: F.max_pool2d(x, spec['k'])
    if kind == 'cat':
        y = torch.randn(*spec['input'])
        return lambda: torch.cat([x, y], 1)
    raise ValueError(f'reference_ops.py: unknown op kind {kind!r}')


def model_section(prefix, model, x, out, counts, specs, details):
    model.eval()
    found = record(prefix, model, x)
    if PROBE:
        for key, spec in found.items():
            print(f'OPS_PROBE {key}', flush=True)
            op_fn(spec)()
            print('OPS_PROBE_END', flush=True)
        return

    def forward():
        with torch.no_grad():
            model(x)
    details[f'{prefix} forward (model)'] = timeit(forward)
    total = 0.0
    for key, spec in found.items():
        details[key] = timeit(op_fn(spec))
        out[key], counts[key], specs[key] = details[key]['median'], spec['count'], spec
        total += spec['count'] * out[key]
        B.log(f'{key} x{spec["count"]}: {out[key]} ms')
    out[f'{prefix} forward (model)'] = details[f'{prefix} forward (model)']['median']
    out[f'{prefix} ops sum'] = round(total, 4)
    B.log(f'{prefix}: forward {out[f"{prefix} forward (model)"]} ms, ops sum {out[f"{prefix} ops sum"]} ms')


def metrics_section(out, details):
    torch.manual_seed(0)
    pred = torch.randint(0, 2, (4, 256, 256)).flatten()
    true = torch.randint(-1, 2, (4, 256, 256)).flatten()
    classes = torch.arange(0, 2)
    valid = (0 <= true) & (true < 2)
    p, t = pred[valid], true[valid]
    pos, tpos = classes.view(-1, 1) == p.view(1, -1), classes.view(-1, 1) == t.view(1, -1)
    index = true.clamp(-1, 2).mul_(4).add_(pred.clamp(-1, 2)).add_(5)
    ops = {
        'metrics valid mask': lambda: (0 <= true) & (true < 2),
        'metrics boolean index': lambda: pred[valid],
        'metrics class compare': lambda: classes.view(-1, 1) == p.view(1, -1),
        'metrics and-sum': lambda: (pos & tpos).sum(dim=1),
        'metrics seed update': lambda: S.ClassificationMetrics(2).update(pred, true),
        'metrics bincount index': lambda: true.clamp(-1, 2).mul_(4).add_(pred.clamp(-1, 2)).add_(5),
        'metrics bincount': lambda: torch.bincount(index, minlength=16),
    }
    for key, fn in ops.items():
        details[key] = timeit(fn, reps=SMALL_REPS)
        out[key] = details[key]['median']
        B.log(f'{key}: {out[key]} ms')


def main():
    out, counts, specs, details = {}, {}, {}, {}
    on = lambda s: not ONLY or s in ONLY  # noqa: E731
    wait = (lambda: B.wait_idle()) if B.FOREIGN_MAX < 1 else (lambda: None)
    torch.manual_seed(0)
    if on('unet'):
        wait()
        model_section('unet', S.SemanticSegmentor(3, 2), torch.randn(4, 3, 256, 256), out, counts, specs, details)
    if on('yolo'):
        wait()
        model_section('yolo', S.YOLOv3(3, 80), torch.randn(1, 3, 416, 416), out, counts, specs, details)
    if on('matmul') and not PROBE:
        wait()
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        details['matmul 2048 f32'] = timeit(lambda: a @ b)
        out['matmul 2048 f32'] = details['matmul 2048 f32']['median']
    if on('metrics') and not PROBE:
        wait()
        metrics_section(out, details)
    cfg = torch.__config__.show()
    out.update(counts=counts, specs=specs, details=details,
               meta={'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas_library': B.blas_library(),
                     'mkldnn': torch.backends.mkldnn.is_available(),
                     'cpu_capability': next((line.split(':', 1)[1].strip() for line in cfg.splitlines()
                                             if 'CPU capability' in line), None),
                     'contention': dict(B.CONTENTION, foreign_max=B.FOREIGN_MAX)})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
