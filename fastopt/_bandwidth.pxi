# _bandwidth.pxi — boundary wrappers for the bandwidth kernels (filled in by their own issue).
