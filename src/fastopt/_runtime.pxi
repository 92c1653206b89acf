# _runtime.pxi — build facts for show_config().

cdef extern from "fastopt.h" nogil:
    const char *fo_version()
    int fo_openmp_enabled()
    int fo_simd_clones_enabled()
    const char *fo_simd_target()
    const char *fo_compiler()

from fastopt._openmp cimport FO_SERIAL_BELOW


def build_info():
    """A dict of facts about the compiled kernels."""
    return {
        "kernels_version": fo_version().decode(),
        "openmp": bool(fo_openmp_enabled()),
        "simd_clones": bool(fo_simd_clones_enabled()),
        "simd_target": fo_simd_target().decode(),
        "compiler": fo_compiler().decode(),
        "serial_below": FO_SERIAL_BELOW,
    }
