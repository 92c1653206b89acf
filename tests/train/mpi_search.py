"""Run under MPI by tests/train/test_mpi_search.py (not a test module itself):

    mpirun -n 3 python -m mpi4py.futures tests/train/mpi_search.py OUT_DIR

Rank 0 runs this script; the other ranks are the MPIPoolExecutor's workers. It writes the
trials of a random search and of an ASHA search to OUT_DIR as JSON.
"""
import json
import os
import sys

from mpi4py.futures import MPIPoolExecutor

from fastopt.train import Choice, Uniform, asha_search, random_search, trials_to_json
from fastopt_testing.search_objectives import curve, distance

if __name__ == "__main__":
    out = sys.argv[1]
    # the objectives refuse to run in this process: every trial must go to a worker
    space = {"x": Uniform(0.0, 1.0), "parent": Choice([os.getpid()])}
    with MPIPoolExecutor() as executor:
        trials_to_json(random_search(distance, space, 12, seed=3, executor=executor),
                       os.path.join(out, "random.json"))
        trials_to_json(asha_search(curve, space, 20, seed=4, executor=executor, max_resource=9),
                       os.path.join(out, "asha.json"))
        info = {"parent": os.getpid(), "workers": executor.num_workers}
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump(info, f)
