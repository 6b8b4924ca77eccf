import numpy as np

import statskit


def test_normalise():
    assert statskit.normalise([1, 2, 3]).tolist() == [0.0, 0.5, 1.0]


def test_mean_as_float():
    assert statskit.mean_as_float([1, 2, 3]) == 2.0


def test_total_product():
    assert statskit.total_product([1, 2, 3, 4]) == 24


def test_scaled_keeps_double_precision():
    assert statskit.scaled(3, 0.1).dtype == np.float64
