"""DLPack arrays on a CUDA device, made from host memory, for tests.

The tests stage them with the fake backend (test_device_staging.py) or with
the CUDA runtime stand-in (cuda_standin_cases.py); both treat host memory as
device memory.
"""

import ctypes


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class DLPackCudaArray:
    """A numpy array's memory that calls itself, through DLPack, an array on
    CUDA device 0 (as a CuPy array would): DLPack type `code` and `bits`,
    optional element strides."""

    def __init__(self, host, code, bits, strides=None):
        self.host = host
        self.code, self.bits = code, bits
        self.strides = strides
        self._keep = []

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None, max_version=None, **kwargs):
        mt = _DLManagedTensor()
        t = mt.dl_tensor
        t.data = self.host.ctypes.data
        t.device = _DLDevice(2, 0)
        t.ndim = self.host.ndim
        t.dtype = _DLDataType(self.code, self.bits, 1)
        shape = (ctypes.c_int64 * max(1, self.host.ndim))(*self.host.shape)
        t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
        if self.strides is not None:
            strides = (ctypes.c_int64 * len(self.strides))(*self.strides)
            t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
            self._keep.append(strides)
        self._keep += [mt, shape]
        return _capsule_new(ctypes.addressof(mt), b"dltensor", None)
