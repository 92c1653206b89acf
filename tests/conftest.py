import numpy as np
import pytest

import fastopt


def pytest_report_header(config):
    info = fastopt._kernels.build_info()
    return (f"fastopt {fastopt.__version__} from {fastopt.__file__}; openmp={info['openmp']}, "
            f"threads={fastopt.get_num_threads()}, simd={info['simd_target']}")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(autouse=True)
def _restore_threads():
    before = fastopt._kernels._get_user_threads()
    yield
    fastopt._kernels._set_user_threads(before)
