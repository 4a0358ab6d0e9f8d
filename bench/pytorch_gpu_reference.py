#!/usr/bin/env python3
"""PyTorch on a GPU for the ganime benchmark workloads, to compare with `ganime bench WORKLOAD --device cuda`.

    python3 bench/pytorch_gpu_reference.py [WORKLOAD ...] [--reference PATH] [--seconds 5] [--dtype f32|f16|bf16]

Reuses the workload builders of the shared CPU reference (`../shared/bench/pytorch_reference.py`, which loads
its model classes from `../golden/make_goldens.py` beside it): each builder runs with torch's default device
set to CUDA, so the models, the fixed inputs and every tensor a step creates live on the GPU. Timing is the
reference's (warm-up of >= 2 runs and min(3 s, 15 % of the budget), then the median over `--seconds`) with
`torch.cuda.synchronize()` before each clock read, since CUDA calls return before the work is done.

`--dtype f16|bf16` applies to the inference workloads (style-320x240, style-640x480, animegan-256): the same
networks with weights and input cast to that type (`module.to(dtype)`), the counterpart of
`ganime bench --dtype`. Training workloads stay f32.

Prints one JSON line per workload (the reference's fields plus "device", "dtype", "gpu", "tf32_conv"); a
workload that fails prints a line with "error" and the others still run.
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REFERENCES = [
    os.path.join(HERE, "..", "..", "shared", "bench", "pytorch_reference.py"),  # ../shared beside the checkout
    os.path.join(HERE, "..", ".devcarry", "bench", "pytorch_reference.py"),      # scripts/prepare-device.sh
]
INFERENCE = ("style-320x240", "style-640x480", "animegan-256")


def load_reference(path):
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        # make_goldens.py imports safetensors only to write golden files, which the workloads never do; a GPU box
        # with bare torch lacks it, so an inert stand-in lets the module load.
        def unavailable(*_a, **_k):
            raise RuntimeError("safetensors is not installed")
        pkg, sub = types.ModuleType("safetensors"), types.ModuleType("safetensors.torch")
        sub.save_file = sub.load_file = unavailable
        pkg.torch = sub
        sys.modules.update({"safetensors": pkg, "safetensors.torch": sub})
    spec = importlib.util.spec_from_file_location("pytorch_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def half_inference(ref, workload, dtype):
    """The inference workloads with weights and input in `dtype` (same architectures as the reference's)."""
    import torch
    mg = ref.mg
    if workload == "animegan-256":
        net = mg.AnimeGANv2Generator(div=1).eval().to(dtype)
        x = (torch.rand(1, 3, 256, 256) * 2 - 1).to(dtype)
        forward = lambda: net(x, "align_corners")
    else:
        h, w = (240, 320) if workload == "style-320x240" else (480, 640)
        net = mg.TransformerNet((32, 64, 128)).eval().to(dtype)
        x = (torch.rand(1, 3, h, w) * 255.0).to(dtype)
        forward = lambda: net(x)

    def step():
        with torch.no_grad():
            forward()

    return "frames/s", 1, step


def measure(step, seconds, min_runs):
    import torch
    sync = torch.cuda.synchronize
    t0 = time.perf_counter()
    n = 0
    while n < 2 or time.perf_counter() - t0 < min(3.0, 0.15 * seconds):
        step()
        n += 1
    sync()
    times = []
    t0 = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - t0 < seconds:
        sync()
        s = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - s)
    return statistics.median(times), len(times), n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workloads", nargs="*", help="default: all but gatys-256-iter")
    ap.add_argument("--reference", help="path of pytorch_reference.py")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--min-runs", type=int, default=3)
    ap.add_argument("--dtype", default="f32", help="f32, f16, bf16, or a comma list (f16,bf16)")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu for a dry run")
    args = ap.parse_args()

    path = args.reference or next((p for p in DEFAULT_REFERENCES if os.path.exists(p)), None)
    if not path or not os.path.exists(path):
        sys.exit(f"pytorch_reference.py not found (tried {args.reference or DEFAULT_REFERENCES}); pass --reference")
    import torch
    ref = load_reference(path)
    workloads = args.workloads or [w for w in ref.WORKLOADS if w != "gatys-256-iter"]
    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    names = [d.strip() for d in args.dtype.split(",")]
    if any(d not in dtypes for d in names):
        sys.exit(f"--dtype must be f32, f16 or bf16 (or a comma list), not {args.dtype}")
    on_gpu = args.device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        sys.exit("torch sees no CUDA GPU")
    gpu = torch.cuda.get_device_name(torch.device(args.device)) if on_gpu else "cpu"
    if not on_gpu:
        torch.cuda.synchronize = lambda *a, **k: None  # dry run on the CPU
    torch.set_default_device(args.device)

    for name in names:
        for w in workloads:
            print(json.dumps(run_one(ref, w, name, dtypes[name], args, gpu)), flush=True)


def run_one(ref, w, dtype_name, dtype, args, gpu):
    import torch
    line = {"workload": w, "impl": "pytorch", "torch": torch.__version__, "device": args.device, "dtype": dtype_name,
            "gpu": gpu, "tf32_conv": bool(torch.backends.cudnn.allow_tf32)}
    try:
        if w not in ref.WORKLOADS:
            raise ValueError(f"unknown workload {w}; known: {', '.join(sorted(ref.WORKLOADS))}")
        torch.manual_seed(0)
        if dtype_name == "f32":
            unit, items, step = ref.WORKLOADS[w]()
        elif w in INFERENCE:
            unit, items, step = half_inference(ref, w, dtype)
        else:
            raise ValueError(f"--dtype {dtype_name} applies to {', '.join(INFERENCE)} only")
        med, runs, warmup = measure(step, args.seconds, args.min_runs)
        line.update(unit=unit, value=round(items / med, 4), median_ms=round(med * 1e3, 3), runs=runs, warmup_runs=warmup)
    except Exception as e:  # one failing workload must not hide the others
        line["error"] = f"{type(e).__name__}: {e}"
    return line

if __name__ == "__main__":
    main()
