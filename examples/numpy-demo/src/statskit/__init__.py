"""Written in 2022 against numpy 1.23; each function leans on something numpy later changed."""

import numpy as np


def mean_as_float(values):
    # np.float was an alias of the builtin float, deprecated in 1.20 and removed in 1.24.
    return np.float(np.mean(values))


def total_product(values):
    # np.product was deprecated in 1.25 and removed in 2.0 (use np.prod).
    return np.product(values)


def scaled(value, factor):
    # numpy 1.x upcast a float32 scalar times a Python float to float64; numpy 2's
    # promotion rules (NEP 50) keep float32, silently losing precision.
    return np.float32(value) * factor


def normalise(values):
    array = np.asarray(values, dtype=float)
    return (array - array.min()) / (array.max() - array.min())
