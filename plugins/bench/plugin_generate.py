"""dcgan64-generate through the editor plug-in, timed like ../shared/bench/pytorch_reference.py:
    python3 plugins/bench/plugin_generate.py LIBGANIME_PLUGIN.so GENERATOR [--seconds 20] [--min-runs 3]
One iteration = generate 64 images from a fresh seed into host RGBA8 buffers (the work an editor asks for:
latents, G in eval mode, conversion to 8-bit pixels). Prints one JSON line.
"""

import argparse
import ctypes
import importlib.util
import json
import os
import statistics
import time

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ganime_abi", os.path.join(here, "..", "krita", "ganime", "abi.py"))
abi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(abi)

parser = argparse.ArgumentParser()
parser.add_argument("lib")
parser.add_argument("generator")
parser.add_argument("--seconds", type=float, default=20.0)
parser.add_argument("--min-runs", type=int, default=3)
args = parser.parse_args()

plugin = abi.Plugin(args.lib)
model = plugin.load(args.generator, abi.ROLE_GENERATOR)
info = model.info()
count = 64
buffers = [(ctypes.c_uint8 * (info.width * info.height * 4))() for _ in range(count)]
images = (abi.Image * count)(*[abi.Image(ctypes.cast(b, ctypes.POINTER(ctypes.c_uint8)), info.width, info.height,
                                         info.width * 4, abi.FORMAT_RGBA8) for b in buffers])
seed = 0


def step():
    global seed
    seed += 1
    plugin.check(plugin.table.generate(model._handle, seed, count, None, images, None))


t0 = time.perf_counter()
warmup = 0
while warmup < 2 or time.perf_counter() - t0 < min(3.0, 0.15 * args.seconds):
    step()
    warmup += 1
times = []
t0 = time.perf_counter()
while len(times) < args.min_runs or time.perf_counter() - t0 < args.seconds:
    s = time.perf_counter()
    step()
    times.append(time.perf_counter() - s)
median = statistics.median(times)
print(json.dumps({"workload": "dcgan64-generate (plug-in)", "unit": "images/s", "value": round(count / median, 4),
                  "median_ms": round(median * 1000, 3), "runs": len(times), "warmup_runs": warmup,
                  "model": info.name.decode()}))
model.close()
