"""ctypes binding of the ganime plug-in C ABI (plugin-abi/include/ganime_plugin.h), version 1.

Usable outside Krita too: ``Plugin(path).load("animegan:paprika.pt", ROLE_FILTER).stylize_in_place(...)``.
"""

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_float, c_int32, c_size_t, c_uint8, c_uint32,
                    c_uint64, c_void_p)

ABI_VERSION = 1

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
        entry.restype = POINTER(PluginV1)
        table = entry(ABI_VERSION)
        if not table:
            last = self._lib.ganime_plugin_last_error
            last.restype = c_char_p
            raise GanimeError(ERR_LOAD_FAILED, "%s refused ABI version %d: %s" % (path, ABI_VERSION,
                                                                                  last().decode("utf-8", "replace")))
        self.table = table.contents
        if self.table.abi_version != ABI_VERSION or self.table.struct_size < ctypes.sizeof(PluginV1):
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
