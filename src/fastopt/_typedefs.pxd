# The one fused floating type used by fastopt's Cython code.
ctypedef fused floating:
    float
    double
