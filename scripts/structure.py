#!/usr/bin/env python3
"""How much of a photo's structure a filter keeps: mean SSIM of the luminance (Wang et al. 2004, 7x7 uniform
window, at 128x128) between each photo in PHOTOS and the picture of the same name in STYLISED.
1 = the same picture; unrelated pictures give about 0. Usage: structure.py PHOTOS STYLISED (needs numpy, pillow)."""
import os
import sys

import numpy as np
from PIL import Image


def luma(path):
    img = Image.open(path).convert("RGB").resize((128, 128), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float64)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def box(x, k=7):
    # Mean over k x k windows (valid part), by an integral image.
    c = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(a, b):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = box(a), box(b)
    va, vb, cov = box(a * a) - ma**2, box(b * b) - mb**2, box(a * b) - ma * mb
    return float((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean())


def main():
    photos, stylised = sys.argv[1], sys.argv[2]
    out = {os.path.splitext(f)[0]: f for f in os.listdir(stylised)}
    scores = [ssim(luma(os.path.join(photos, f)), luma(os.path.join(stylised, out[os.path.splitext(f)[0]])))
              for f in sorted(os.listdir(photos)) if os.path.splitext(f)[0] in out]
    print(f"{len(scores)} pairs, mean luminance SSIM {np.mean(scores):.3f} (min {np.min(scores):.3f})")


if __name__ == "__main__":
    main()
