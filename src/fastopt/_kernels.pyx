# cython: language_level=3
"""The one boundary between Python and fastopt's C kernels.

Every public function here validates its arguments once (dtype, shape, contiguity,
writeability, memory overlap, hyperparameter ranges), raises TypeError/ValueError naming the
offending argument before anything is modified, then calls C with the GIL released.

The code is split into include files by area. They share one namespace, so each file may
use only what the files above it define (DEVELOPING.md draws the layers):

    _boundary.pxi   array and scalar checks, Batch/prepare (pointer tables), check_status
    _threads.pxi    the thread policy: current_threads()
    _runtime.pxi    build facts
    _norm.pxi       global norms and scaling                  (uses the two above)
    _dlpack.pxi     reading a torch gradient's memory: a DLPack capsule or torch's exchange API
    _optim.pxi      what every optimizer family shares: KernelOptions, StepPlan, all_finite
    _families.pxi   every optimizer family of fastopt/optim/families.py (generated from
                    _families.pxi.tp at build time)           (uses _optim.pxi)
    _lowprec.pxi    state in bfloat16 / int8: conversions, the low-precision step
    _bf16param.pxi  bfloat16 parameters (ml_dtypes arrays) stepped in float32
    _memory.pxi     huge pages: advice for fastopt.torch's state tensors, whole huge pages
                    for the large new outputs of _nn.pxi
    _nn.pxi         dropout and batch norm
    _linalg.pxi     vector kernels of the quasi-Newton minimizers
    _bounds.pxi     L-BFGS-B: box projections, Cauchy point, subspace step (uses _linalg)
    _bandwidth.pxi  memory-bandwidth probes for the benchmarks
"""

include "_boundary.pxi"
include "_threads.pxi"
include "_runtime.pxi"
include "_norm.pxi"
include "_dlpack.pxi"
include "_optim.pxi"
include "_families.pxi"
include "_lowprec.pxi"
include "_bf16param.pxi"
include "_memory.pxi"
include "_nn.pxi"
include "_linalg.pxi"
include "_bounds.pxi"
include "_bandwidth.pxi"

#: What fastopt.kernels re-exports: the functional kernel of every optimizer family, and
#: the gradient check and thread diagnostics that go with them.
__all__ = [*FAMILY_KERNELS, "all_finite", "planned_threads", "last_threads_used"]
