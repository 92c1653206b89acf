# _nn.pxi — boundary wrappers for the nn kernels (filled in by their own issue).
