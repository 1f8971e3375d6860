"""Initializers (``fastmlp.initializers``) against Keras 3's formulas, by statistics of large draws.

Keras 3 (keras/src/initializers/random_initializers.py, constant_initializers.py):

* VarianceScaling(scale, mode, distribution): n = fan_in, fan_out or (fan_in + fan_out) / 2 (for
  a kernel of shape (in, out): fan_in = in, fan_out = out; for a 1-D shape both are its length),
  variance = scale / max(1, n); "uniform" draws U(-sqrt(3 variance), +sqrt(3 variance)),
  "truncated_normal" a normal truncated at two standard deviations with stddev
  sqrt(variance) / 0.87962566103423978 (so that the truncated draw has the asked variance),
  "untruncated_normal" N(0, variance). Defaults: scale 1, fan_in, truncated_normal.
* glorot_* = VarianceScaling(1, fan_avg), he_* = (2, fan_in), lecun_* = (1, fan_in), with
  distribution uniform or truncated_normal.
* RandomNormal(mean 0, stddev 0.05), RandomUniform(-0.05, 0.05), Zeros, Ones, Constant(0).

Statistical tolerances (N = 210,000 draws, all seeded so the tests are deterministic, but the
bounds hold for any seed with overwhelming probability): the sample mean is within 5 standard
errors sigma / sqrt(N); the sample variance within 5 standard errors sigma^2 sqrt((kappa - 1) / N)
(kappa the distribution's kurtosis: 3 normal, 9/5 uniform, computed below for the truncated
normal); and the largest distance between the empirical CDF and the formula's CDF over a grid
is below the Kolmogorov-Smirnov critical value 1.95 / sqrt(N) (significance 0.001). A wrong
formula (fan_in for fan_avg, a missing truncation correction, scale 1 for 2) changes the
variance by 20% or more: 50 standard errors at this N.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import initializers as inits

SHAPE = (300, 700)  # fan_in 300, fan_out 700, fan_avg 500: every mode gives another variance
N = SHAPE[0] * SHAPE[1]
FAN = {"fan_in": 300.0, "fan_out": 700.0, "fan_avg": 500.0}
TRUNCATION_STD = 0.87962566103423978  # Keras's constant


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def truncated_moments(a: float = 2.0) -> tuple[float, float]:
    """E[x^2] and E[x^4] of a standard normal truncated to [-a, a], by the recursion
    E[x^2k] = (2k - 1) E[x^(2k-2)] - 2 a^(2k-1) phi(a) / Z, Z = P(|x| <= a)."""
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    z = math.erf(a / math.sqrt(2))
    m2 = 1 - 2 * a * phi / z
    m4 = 3 * m2 - 2 * a**3 * phi / z
    return m2, m4


def test_keras_truncation_constant_is_the_truncated_normals_stddev() -> None:
    m2, _ = truncated_moments()
    assert math.sqrt(m2) == pytest.approx(TRUNCATION_STD, rel=1e-15)


@dataclass(frozen=True)
class Dist:
    """What a draw should look like: its kind ("uniform", "normal", "truncated"), mean and
    variance, and for uniform draws the bounds."""

    kind: str
    variance: float
    mean: float = 0.0
    low: float = 0.0
    high: float = 0.0

    @property
    def kurtosis(self) -> float:
        if self.kind == "uniform":
            return 9 / 5
        if self.kind == "normal":
            return 3.0
        m2, m4 = truncated_moments()
        return m4 / m2**2

    @property
    def underlying_std(self) -> float:
        """The stddev of the normal before truncation (truncated draws only)."""
        return math.sqrt(self.variance) / TRUNCATION_STD

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "uniform":
            return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.kind == "normal":
            return normal_cdf((x - self.mean) / math.sqrt(self.variance))
        s = self.underlying_std
        lo = normal_cdf(np.array(-2.0))
        return np.clip((normal_cdf((x - self.mean) / s) - lo) / (1 - 2 * lo), 0.0, 1.0)


def uniform(limit: float) -> Dist:
    return Dist("uniform", limit * limit / 3, low=-limit, high=limit)


def scaled(scale: float, mode: str, distribution: str) -> Dist:
    variance = scale / FAN[mode]
    if distribution == "uniform":
        return uniform(math.sqrt(3 * variance))
    return Dist("truncated" if distribution == "truncated_normal" else "normal", variance)


# name -> (the initializer from its name, the class, the expected distribution for SHAPE)
RANDOM: dict[str, tuple[type[Any], Dist]] = {
    # Glorot: variance 2 / (fan_in + fan_out) = 1 / 500; uniform limit sqrt(6 / 1000).
    "glorot_uniform": (inits.GlorotUniform, uniform(math.sqrt(6 / 1000))),
    "glorot_normal": (inits.GlorotNormal, Dist("truncated", 2 / 1000)),
    # He: variance 2 / fan_in; uniform limit sqrt(6 / 300).
    "he_uniform": (inits.HeUniform, uniform(math.sqrt(6 / 300))),
    "he_normal": (inits.HeNormal, Dist("truncated", 2 / 300)),
    # LeCun: variance 1 / fan_in; uniform limit sqrt(3 / 300).
    "lecun_uniform": (inits.LecunUniform, uniform(math.sqrt(3 / 300))),
    "lecun_normal": (inits.LecunNormal, Dist("truncated", 1 / 300)),
    "random_normal": (inits.RandomNormal, Dist("normal", 0.05**2)),
    "random_uniform": (inits.RandomUniform, uniform(0.05)),
    # VarianceScaling's defaults: scale 1, fan_in, truncated normal.
    "variance_scaling": (inits.VarianceScaling, Dist("truncated", 1 / 300)),
}


def check_distribution(values: np.ndarray, dist: Dist, what: str) -> None:
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    sigma = math.sqrt(dist.variance)
    mean = float(np.mean(x))
    assert abs(mean - dist.mean) <= 5 * sigma / math.sqrt(n), f"{what}: mean {mean}"
    var = float(np.var(x))
    se = dist.variance * math.sqrt((dist.kurtosis - 1) / n)
    assert abs(var - dist.variance) <= 5 * se, (
        f"{what}: variance {var:.6g}, expected {dist.variance:.6g} +- {5 * se:.2g}"
    )
    if dist.kind == "uniform":
        assert np.all(x >= dist.low) and np.all(x <= dist.high), f"{what}: outside the bounds"
        # With N draws the extremes come within ~(high - low) / N of the bounds.
        span = dist.high - dist.low
        assert x.min() < dist.low + 1e-3 * span and x.max() > dist.high - 1e-3 * span
    elif dist.kind == "truncated":
        bound = 2 * dist.underlying_std
        # (float32 rounding of a value at the bound may add half an ulp)
        assert np.max(np.abs(x - dist.mean)) <= bound * (1 + 1e-6), f"{what}: beyond 2 stddev"
        assert np.max(np.abs(x - dist.mean)) > 0.99 * bound, f"{what}: truncated too early"
    else:
        # An untruncated normal puts 4.55% of its mass beyond 2 stddev.
        beyond = float(np.mean(np.abs(x - dist.mean) > 2 * sigma))
        assert abs(beyond - 0.0455) < 5 * math.sqrt(0.0455 * 0.9545 / n), f"{what}: tails"
    # Kolmogorov-Smirnov distance over a grid of 401 points spanning the draws.
    grid = np.linspace(x.min(), x.max(), 401)
    empirical = np.searchsorted(np.sort(x), grid, side="right") / n
    distance = float(np.max(np.abs(empirical - dist.cdf(grid))))
    assert distance < 1.95 / math.sqrt(n), f"{what}: KS distance {distance:.3g}"


@pytest.mark.parametrize("name", list(RANDOM))
def test_random_initializer_statistics_by_name_and_object(name: str) -> None:
    cls, dist = RANDOM[name]
    by_name = inits.get(name)
    assert type(by_name) is cls
    check_distribution(by_name(SHAPE), dist, f"{name} by name")
    check_distribution(cls(seed=123)(SHAPE, "float64"), dist, f"{name} object")


VARIANCE_SCALING = [
    (scale, mode, distribution)
    for scale, mode in ((3.0, "fan_out"), (0.5, "fan_avg"), (2.0, "fan_in"))
    for distribution in ("uniform", "truncated_normal", "untruncated_normal")
]


@pytest.mark.parametrize("scale,mode,distribution", VARIANCE_SCALING)
def test_variance_scaling_every_mode_and_distribution(
    scale: float, mode: str, distribution: str
) -> None:
    init = inits.VarianceScaling(scale=scale, mode=mode, distribution=distribution, seed=5)
    check_distribution(init(SHAPE), scaled(scale, mode, distribution), f"{init}")


def test_one_dimensional_shape_uses_its_length_as_both_fans() -> None:
    # Glorot on (n,): fan_in = fan_out = n, so the variance is 2 / (2n) = 1 / n.
    n = 200_000
    check_distribution(inits.GlorotUniform(seed=1)((n,)), uniform(math.sqrt(3 / n)), "glorot 1-D")
    check_distribution(inits.HeNormal(seed=2)((n,)), Dist("truncated", 2 / n), "he_normal 1-D")


def test_random_normal_and_uniform_with_arguments() -> None:
    check_distribution(
        inits.RandomNormal(mean=1.5, stddev=0.3, seed=4)(SHAPE), Dist("normal", 0.09, 1.5), "normal"
    )
    check_distribution(
        inits.RandomUniform(minval=2.0, maxval=5.0, seed=4)(SHAPE),
        Dist("uniform", 9 / 12, mean=3.5, low=2.0, high=5.0),
        "uniform",
    )


@pytest.mark.parametrize(
    "init,value",
    [
        (inits.get("zeros"), 0.0),
        (inits.get("ones"), 1.0),
        (inits.get("constant"), 0.0),  # Keras's Constant(value=0.0)
        (inits.Zeros(), 0.0),
        (inits.Ones(), 1.0),
        (inits.Constant(2.5), 2.5),
        (inits.Constant(-3), -3.0),
    ],
)
def test_constant_initializers(init: Any, value: float) -> None:
    for dtype in ("float32", "float64"):
        out = init((4, 7), dtype)
        assert out.shape == (4, 7) and out.dtype == np.dtype(dtype)
        assert np.all(out == value)


# ---------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------

SEEDED: list[Callable[..., Any]] = [
    inits.GlorotUniform,
    inits.GlorotNormal,
    inits.HeUniform,
    inits.HeNormal,
    inits.LecunUniform,
    inits.LecunNormal,
    inits.RandomNormal,
    inits.RandomUniform,
    inits.VarianceScaling,
]


@pytest.mark.parametrize("cls", SEEDED, ids=lambda c: c.__name__)
def test_same_seed_same_values_different_seed_different_values(cls: Callable[..., Any]) -> None:
    shape = (30, 20)
    a = cls(seed=7)(shape)
    # A seeded initializer gives the same values on every call (as Keras's does).
    np.testing.assert_array_equal(a, cls(seed=7)(shape))
    init = cls(seed=7)
    np.testing.assert_array_equal(init(shape), init(shape))
    b = cls(seed=8)(shape)
    assert np.mean(a == b) < 0.01
    # Unseeded ones draw their seed from fastmlp's stream: reproducible after set_random_seed,
    # and different from call to call.
    fm.utils.set_random_seed(11)
    c1, c2 = cls()(shape), cls()(shape)
    fm.utils.set_random_seed(11)
    np.testing.assert_array_equal(cls()(shape), c1)
    assert np.mean(c1 == c2) < 0.01


def build(seed: int, **dense_kwargs: Any) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    return fm.Sequential(
        [
            fm.layers.Input(shape=(300,)),
            fm.layers.Dense(700, activation="relu", **dense_kwargs),
            fm.layers.Dense(10),
        ]
    )


def test_set_random_seed_makes_dense_weights_reproducible() -> None:
    first = build(21).get_weights()
    again = build(21).get_weights()
    other = build(22).get_weights()
    assert len(first) == 4
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # Kernels differ with another seed (biases are zeros either way).
    assert np.mean(first[0] == other[0]) < 0.01 and np.mean(first[2] == other[2]) < 0.01
    # The two layers of one model do not share a seed.
    assert not np.array_equal(first[0][:10, :10], first[2][:10, :10])


# ---------------------------------------------------------------------------------------------
# Dense uses what it is given
# ---------------------------------------------------------------------------------------------


def test_dense_default_initializers() -> None:
    kernel, bias = build(1).get_weights()[:2]
    assert kernel.shape == (300, 700) and kernel.dtype == np.float32
    check_distribution(kernel, RANDOM["glorot_uniform"][1], "default kernel")
    assert np.all(bias == 0)


@pytest.mark.parametrize("name", ["he_normal", "lecun_uniform", "glorot_normal", "random_normal"])
def test_dense_kernel_initializer_by_name(name: str) -> None:
    kernel, bias = build(2, kernel_initializer=name, bias_initializer="ones").get_weights()[:2]
    check_distribution(kernel, RANDOM[name][1], f"Dense kernel {name}")
    np.testing.assert_array_equal(bias, np.ones(700, np.float32))


def test_dense_kernel_initializer_object() -> None:
    init = inits.VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform", seed=9)
    model = build(3, kernel_initializer=init, bias_initializer=inits.Constant(0.25))
    kernel, bias = model.get_weights()[:2]
    np.testing.assert_array_equal(kernel, init((300, 700), "float32"))
    check_distribution(kernel, scaled(3.0, "fan_out", "uniform"), "Dense kernel object")
    assert np.all(bias == np.float32(0.25))


def test_dense_float64_model_draws_float64() -> None:
    fm.utils.set_random_seed(4)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(300,)),
            fm.layers.Dense(700, kernel_initializer=inits.HeUniform(seed=1)),
        ],
        dtype="float64",
    )
    kernel = model.get_weights()[0]
    assert kernel.dtype == np.float64
    np.testing.assert_array_equal(kernel, inits.HeUniform(seed=1)((300, 700), "float64"))


# ---------------------------------------------------------------------------------------------
# Invalid names and arguments
# ---------------------------------------------------------------------------------------------

INVALID: list[tuple[Callable[[], Any], str]] = [
    (lambda: inits.get("glorot"), "glorot"),
    (lambda: inits.get("he_normall"), "he_normall"),
    (lambda: inits.get(3), "3"),
    (lambda: inits.VarianceScaling(scale=0.0), "scale"),
    (lambda: inits.VarianceScaling(scale=-1.0), "scale"),
    (lambda: inits.VarianceScaling(mode="fan_sum"), "mode"),
    (lambda: inits.VarianceScaling(distribution="cauchy"), "distribution"),
    (lambda: inits.RandomUniform(minval=0.1, maxval=-0.1), "minval"),
    (lambda: inits.RandomUniform(minval=0.1, maxval=0.1), "minval"),
    (lambda: inits.Constant(float("nan")), "value"),
    (lambda: inits.Constant("a"), "value"),
    (lambda: inits.GlorotUniform(seed=-1), "seed"),
    (lambda: inits.HeNormal(seed=1.5), "seed"),
    (lambda: inits.RandomNormal(seed="x"), "seed"),
    (lambda: fm.layers.Dense(3, kernel_initializer="nope"), "nope"),
    (lambda: fm.layers.Dense(3, bias_initializer="glorot"), "glorot"),
]


@pytest.mark.parametrize(
    "make,fragment", INVALID, ids=[f"{i}-{f}" for i, (_, f) in enumerate(INVALID)]
)
def test_invalid_names_and_arguments_raise_value_error(
    make: Callable[[], Any], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        make()
