"""scipy L-BFGS-B's stop messages as the installed scipy words them.

scipy 1.15 translated L-BFGS-B from Fortran to C and reworded its messages; fastopt
answers in the words of the scipy it runs beside, so a ported scipy test expects the
installed version's words (the literal strings of both are here, independent of
fastopt's own table).
"""
from __future__ import annotations

import scipy

__all__ = ["lbfgsb_message"]

_C = {  # scipy >= 1.15
    "gtol": "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    "ftol": "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
    "maxiter": "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    "maxfun": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
}
_FORTRAN = {  # scipy < 1.15
    "gtol": "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL",
    "ftol": "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH",
    "maxiter": "STOP: TOTAL NO. of ITERATIONS REACHED LIMIT",
    "maxfun": "STOP: TOTAL NO. of f AND g EVALUATIONS EXCEEDS LIMIT",
}


def lbfgsb_message(reason: str) -> str:
    major, minor = (int("".join(c for c in part if c.isdigit()) or 0)
                    for part in scipy.__version__.split(".")[:2])
    return (_FORTRAN if (major, minor) < (1, 15) else _C)[reason]
