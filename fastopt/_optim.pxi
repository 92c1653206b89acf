# _optim.pxi — boundary wrappers for the optim kernels (filled in by their own issue).
