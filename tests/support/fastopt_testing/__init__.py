"""fastopt's shared test support: numpy statements of the kernels' formulas
(optim_reference), torch's recorded semantics (torch_reference), the fuzzing harness and its
table of kernels (fuzz_harness, fuzz_specs), objectives for the search and distributed tests,
and the MPI launcher. ``tests/support`` is on pytest's pythonpath (pyproject.toml), so test
files in any folder import ``fastopt_testing.<module>``."""
