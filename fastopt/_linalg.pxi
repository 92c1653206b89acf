# _linalg.pxi — boundary wrappers for the linalg kernels (filled in by their own issue).
