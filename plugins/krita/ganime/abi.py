"""ctypes binding of the ganime plug-in C ABI (plugin-abi/include/ganime_plugin.h), version 2.

Usable outside Krita too: ``Plugin(path).load("animegan:paprika.pt", ROLE_FILTER).stylize_in_place(...)``.
"""

import ctypes
import json
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_float, c_int32, c_size_t, c_uint8, c_uint32,
                    c_uint64, c_void_p)

ABI_VERSION = 2

OK = 0
ERR_NULL_POINTER = 1
ERR_INVALID_ARGUMENT = 2
ERR_UNKNOWN_FORMAT = 3
ERR_WRONG_MODEL_KIND = 4
ERR_LOAD_FAILED = 5
ERR_COMPUTE_FAILED = 6
ERR_CANCELLED = 7
ERR_INTERNAL = 8

FORMAT_RGBA8 = 1
FORMAT_RGB8 = 2
FORMAT_GRAY8 = 3
FORMAT_GRAYA8 = 4

ROLE_AUTO = 0
ROLE_GENERATOR = 1
ROLE_FILTER = 2


class Image(Structure):
    _fields_ = [("data", POINTER(c_uint8)), ("width", c_uint32), ("height", c_uint32), ("stride", c_size_t),
                ("format", c_uint32)]


class ModelInfo(Structure):
    _fields_ = [("role", c_uint32), ("width", c_uint32), ("height", c_uint32), ("latent_dim", c_uint32),
                ("name", c_char_p)]


PROGRESS_FN = CFUNCTYPE(c_int32, c_void_p, c_uint32, c_uint32)


class Progress(Structure):
    _fields_ = [("callback", PROGRESS_FN), ("user_data", c_void_p)]


class PluginV1(Structure):
    _fields_ = [
        ("abi_version", c_uint32),
        ("struct_size", c_uint32),
        ("describe", CFUNCTYPE(c_char_p)),
        ("last_error", CFUNCTYPE(c_char_p)),
        ("load_model", CFUNCTYPE(c_int32, c_char_p, c_uint32, POINTER(c_void_p))),
        ("model_info", CFUNCTYPE(c_int32, c_void_p, POINTER(ModelInfo))),
        ("generate", CFUNCTYPE(c_int32, c_void_p, c_uint64, c_uint32, POINTER(c_float), POINTER(Image),
                               POINTER(Progress))),
        ("generate_sheet", CFUNCTYPE(c_int32, c_void_p, c_uint64, c_uint32, c_uint32, POINTER(c_float), c_uint32,
                                     POINTER(Image), POINTER(Progress))),
        ("stylize", CFUNCTYPE(c_int32, c_void_p, POINTER(Image), POINTER(Image), c_float, POINTER(Progress))),
        ("free_image", CFUNCTYPE(None, POINTER(Image))),
        ("free_model", CFUNCTYPE(None, c_void_p)),
    ]


class PluginV2(Structure):
    _fields_ = [
        ("base", PluginV1),
        ("model_axes", CFUNCTYPE(c_int32, c_void_p, POINTER(c_char_p))),
        ("render_sheet", CFUNCTYPE(c_int32, c_void_p, c_char_p, c_uint32, POINTER(Image), POINTER(c_char_p),
                                   POINTER(Progress))),
        ("generate_character", CFUNCTYPE(c_int32, c_void_p, c_char_p, POINTER(Image), POINTER(c_char_p),
                                         POINTER(Progress))),
    ]


class GanimeError(Exception):
    """A failed plug-in call: ``status`` is one of the ERR_* codes, the message is the plug-in's."""

    def __init__(self, status, message):
        super().__init__("%s (status %d)" % (message, status))
        self.status = status


def default_library_path():
    """$GANIME_PLUGIN_LIB, else libganime_plugin.so installed beside this file."""
    return os.environ.get("GANIME_PLUGIN_LIB") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "libganime_plugin.so")


def _progress(callback):
    if callback is None:
        return None, None
    # Keep the ctypes thunk alive for the duration of the call (the caller holds the returned tuple).
    thunk = PROGRESS_FN(lambda _user, done, total: 0 if callback(done, total) is not False else 1)
    return thunk, ctypes.pointer(Progress(thunk, None))


class Plugin:
    def __init__(self, path=None):
        path = path or default_library_path()
        self._lib = ctypes.CDLL(path)
        entry = self._lib.ganime_plugin_entry
        entry.argtypes = [c_uint32]
        entry.restype = POINTER(PluginV2)
        table = entry(ABI_VERSION)
        if not table:
            last = self._lib.ganime_plugin_last_error
            last.restype = c_char_p
            raise GanimeError(ERR_LOAD_FAILED, "%s refused ABI version %d: %s" % (path, ABI_VERSION,
                                                                                  last().decode("utf-8", "replace")))
        self.table_v2 = table.contents
        self.table = self.table_v2.base
        if self.table.abi_version != ABI_VERSION or self.table.struct_size < ctypes.sizeof(PluginV2):
            raise GanimeError(ERR_LOAD_FAILED, "%s answered with ABI version %d" % (path, self.table.abi_version))

    def describe(self):
        return self.table.describe().decode("utf-8")

    def check(self, status):
        if status != OK:
            raise GanimeError(status, (self.table.last_error() or b"").decode("utf-8", "replace"))

    def load(self, spec, role=ROLE_AUTO):
        handle = c_void_p()
        self.check(self.table.load_model(spec.encode("utf-8"), role, ctypes.byref(handle)))
        return Model(self, handle)


class Model:
    """A loaded model; ``close()`` (or ``with``) releases it."""

    def __init__(self, plugin, handle):
        self._plugin = plugin
        self._handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._handle:
            self._plugin.table.free_model(self._handle)
            self._handle = None

    def info(self):
        info = ModelInfo()
        self._plugin.check(self._plugin.table.model_info(self._handle, ctypes.byref(info)))
        return info

    def sheet(self, seed, count, columns=0, fmt=FORMAT_RGBA8, progress=None):
        """A sheet of ``count`` characters from ``seed``: (width, height, bytes packed in ``fmt``)."""
        out = Image()
        _keep, p = _progress(progress)
        self._plugin.check(self._plugin.table.generate_sheet(self._handle, seed, count, columns, None, fmt,
                                                             ctypes.byref(out), p))
        try:
            data = ctypes.string_at(out.data, out.stride * out.height)
            return out.width, out.height, data
        finally:
            self._plugin.table.free_image(ctypes.byref(out))

    def axes(self):
        """The generator's attribute axes: {"axes": ["hair=blonde", ...], "attributes": [...], "variation_strength"}."""
        out = c_char_p()
        self._plugin.check(self._plugin.table_v2.model_axes(self._handle, ctypes.byref(out)))
        return json.loads(out.value.decode("utf-8"))

    def render_sheet(self, request, fmt=FORMAT_RGBA8, progress=None):
        """The page ``ganime sheet`` makes for ``request`` (a dict of its flags, e.g. {"seed": 3, "count": 6,
        "variations": [3]}): (width, height, bytes packed in ``fmt``, metadata dict with every cell's recipe)."""
        out, meta = Image(), c_char_p()
        _keep, p = _progress(progress)
        self._plugin.check(self._plugin.table_v2.render_sheet(self._handle, json.dumps(request).encode("utf-8"), fmt,
                                                              ctypes.byref(out), ctypes.byref(meta), p))
        try:
            data = ctypes.string_at(out.data, out.stride * out.height)
            return out.width, out.height, data, json.loads(meta.value.decode("utf-8"))
        finally:
            self._plugin.table.free_image(ctypes.byref(out))

    def character(self, recipe, width, height, fmt=FORMAT_RGBA8, progress=None):
        """One character from ``recipe`` (text, e.g. "seed=3 variation=1@0.75 set=hair=blonde:+1.5") at
        ``width`` x ``height``: (bytes packed in ``fmt``, the recipe's canonical text)."""
        bpp = {FORMAT_RGBA8: 4, FORMAT_RGB8: 3, FORMAT_GRAY8: 1, FORMAT_GRAYA8: 2}.get(fmt, 1)
        buf = (c_uint8 * (width * height * bpp))()
        img = Image(ctypes.cast(buf, POINTER(c_uint8)), width, height, width * bpp, fmt)
        canonical = c_char_p()
        _keep, p = _progress(progress)
        self._plugin.check(self._plugin.table_v2.generate_character(self._handle, recipe.encode("utf-8"),
                                                                    ctypes.byref(img), ctypes.byref(canonical), p))
        return bytes(buf), canonical.value.decode("utf-8")

    def stylize_in_place(self, width, height, pixels, strength=1.0, fmt=FORMAT_RGBA8, progress=None):
        """Stylises ``pixels`` (a bytearray, rows packed, ``fmt``) in place."""
        buf = (c_uint8 * len(pixels)).from_buffer(pixels)
        bpp = {FORMAT_RGBA8: 4, FORMAT_RGB8: 3, FORMAT_GRAY8: 1, FORMAT_GRAYA8: 2}.get(fmt, 1)
        img = Image(ctypes.cast(buf, POINTER(c_uint8)), width, height, width * bpp, fmt)
        _keep, p = _progress(progress)
        try:
            self._plugin.check(self._plugin.table.stylize(self._handle, ctypes.byref(img), ctypes.byref(img),
                                                          strength, p))
        finally:
            del buf
