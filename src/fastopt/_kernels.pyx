# cython: language_level=3
"""The one boundary between Python and fastopt's C kernels.

Every public function here validates its arguments once (dtype, shape, contiguity,
writeability, memory overlap, hyperparameter ranges), raises TypeError/ValueError naming the
offending argument before anything is modified, then calls C with the GIL released.
The code is split into include files by area; each `.pxi` holds one area's wrappers.
"""

include "_boundary.pxi"
include "_threads.pxi"
include "_runtime.pxi"
include "_sgd.pxi"
include "_norm.pxi"
include "_optim.pxi"
include "_nn.pxi"
include "_linalg.pxi"
include "_bandwidth.pxi"
