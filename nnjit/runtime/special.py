"""Special functions the oracle needs and numpy lacks.

`erf` follows W. J. Cody's rational Chebyshev approximations (CALERF, Math. Comp. 1969), accurate to
a few ulps in float64; the oracle's tests check it against `math.erf`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
# 631-638, as coded in his CALERF routine (netlib specfun): near-minimax rational approximations,
# accurate to ~1e-16 in float64 on three intervals of |x|.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)  # fmt: skip
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)  # fmt: skip
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
          6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
          2.33520497626869185e-3)  # fmt: skip
_SQRT_PI_INV = 5.6418958354775628695e-1


def _erfc_scaled_exp(y: Array, ratio: Array) -> Array:
    # exp(-y*y) with y*y split into an exact part (y rounded to 1/16) and a small remainder, as
    # Cody does, so the large exponent loses no bits to rounding.
    head = np.trunc(y * 16.0) / 16.0
    return np.exp(-head * head) * np.exp(-(y - head) * (y + head)) * ratio


def _cody_ratio(t: Array, num_coeffs: Sequence[float], den_coeffs: Sequence[float]) -> Array:
    """Cody's nested evaluation of P(t)/Q(t): the last numerator coefficient leads; Q is monic."""
    num, den = num_coeffs[-1] * t, t
    for p, q in zip(num_coeffs[:-2], den_coeffs[:-1], strict=True):
        num, den = (num + p) * t, (den + q) * t
    return (num + num_coeffs[-2]) / (den + den_coeffs[-1])


def erf(x: npt.ArrayLike) -> Array:
    """Gauss error function in float64, vectorised (Cody's CALERF; |error| < 1e-15 against libm)."""
    values = np.asarray(x, dtype=np.float64)
    y = np.abs(values)
    out = np.empty_like(values)
    small, large = y <= 0.46875, y > 4.0
    middle = ~small & ~large
    # |x| <= 0.46875: erf(x) = x P(x^2) / Q(x^2)
    out[small] = values[small] * _cody_ratio(np.square(y[small]), _ERF_A, _ERF_B)
    # 0.46875 < |x| <= 4: erfc(y) = exp(-y^2) P(y) / Q(y)
    erfc_middle = _erfc_scaled_exp(y[middle], _cody_ratio(y[middle], _ERF_C, _ERF_D))
    # |x| > 4: erfc(y) = exp(-y^2) / y * (1/sqrt(pi) - R(1/y^2)); it underflows to 0 past ~26.5
    yl = np.minimum(y[large], 27.0)  # keeps 1/y^2 finite for inf inputs; erfc(27) is 0 in float64
    zsq = 1.0 / np.square(yl)
    erfc_large = _erfc_scaled_exp(yl, (_SQRT_PI_INV - zsq * _cody_ratio(zsq, _ERF_P, _ERF_Q)) / yl)
    out[middle] = np.copysign((0.5 - erfc_middle) + 0.5, values[middle])
    out[large] = np.copysign((0.5 - erfc_large) + 0.5, values[large])
    return out
