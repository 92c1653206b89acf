"""fastopt: fast numerical optimization for numpy code (C + OpenMP kernels)."""
