"""Seeded synthetic market of yield-bearing, (nearly) pegged assets: stablecoin pools, T-bill funds.

:func:`make_yield_market` returns a :class:`~sb3_trading.data.market_data.MarketData` whose
prices hover around a peg of ``1.0`` with rare de-peg shocks that recover gradually, and
whose ``features`` carry each asset's quoted yield (APY) and a causal de-peg flag. It feeds
``sb3_trading/YieldAllocation-v0``.

Like the other generators (:mod:`sb3_trading.data.synthetic`) it draws from one
``np.random.default_rng(seed)`` only: the same arguments give the same data bit for bit.
Timestamps are business days from 2010-01-01, so ``periods_per_year=252`` by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sb3_trading.data.market_data import MarketData
from sb3_trading.data.synthetic import _asset_names, _check_int, _check_real, _correlated_normals, _ohlcv, _timestamps

#: the price every asset is pegged to
PEG = 1.0


def apy_column(asset: str) -> str:
    """Name of the APY feature column of ``asset``: ``"apy[<asset>]"``."""
    return f"apy[{asset}]"


def depeg_column(asset: str) -> str:
    """Name of the de-peg flag feature column of ``asset``: ``"depeg[<asset>]"``."""
    return f"depeg[{asset}]"


def _per_asset(name: str, value: float | Sequence[float], n_assets: int, low: float, high: float | None = None) -> np.ndarray:
    """A scalar or one value per asset, validated, as a ``(n_assets,)`` float array."""
    if np.ndim(value) == 0:
        return np.full(n_assets, _check_real(name, value, low, high))
    values = np.asarray(value, dtype=np.float64)
    if values.shape != (n_assets,):
        raise ValueError(f"{name} must be a number or have one value per asset, shape ({n_assets},), got {values.shape}")
    for v in values:
        _check_real(name, float(v), low, high)
    return values


def make_yield_market(
    n_steps: int = 2520,
    n_assets: int = 4,
    seed: int | None = 0,
    apy_mean: float | Sequence[float] = 0.04,
    apy_vol: float = 0.01,
    apy_reversion: float = 2.0,
    apy_correlation: float = 0.5,
    price_vol: float = 0.005,
    peg_reversion: float = 50.0,
    depeg_prob: float | Sequence[float] = 0.002,
    depeg_depth: tuple[float, float] = (0.02, 0.10),
    depeg_half_life: float = 10.0,
    peg_tolerance: float = 0.005,
    periods_per_year: int = 252,
) -> MarketData:
    """Pegged, yield-bearing assets: OU yields, small-vol prices around the peg, rare de-peg shocks.

    With ``dt = 1 / periods_per_year`` (one bar), per asset ``i``:

    * **APY** (annualised fraction, the rate quoted at the close of bar ``t`` and earned over
      ``t -> t+1``): an Ornstein-Uhlenbeck state ``x`` with exact discretisation
      ``x[t+1] = m + (x[t] - m) exp(-k dt) + s sqrt((1 - exp(-2 k dt)) / (2 k)) eps[t+1]``,
      ``x[0] = m`` (``m = apy_mean``, ``k = apy_reversion``, ``s = apy_vol``, the shocks
      ``eps`` pairwise correlated by ``apy_correlation``), reported as ``apy[t] = max(x[t], 0)``.
    * **Price** ``p[t] = PEG * exp(z[t]) * (1 - d[t])``. The peg noise ``z`` is a GBM log-return
      ``price_vol * sqrt(dt) * eta`` per bar pulled back to the peg:
      ``z[t+1] = z[t] exp(-peg_reversion dt) + price_vol sqrt(dt) eta[t+1]``, ``z[0] = 0``
      (``peg_reversion=0`` gives a plain driftless GBM). With the defaults its std is about
      ``0.005 / sqrt(2 * 50) = 0.05 %``, far inside the tolerance.
    * **De-peg shocks**: on each bar after the first, with probability ``depeg_prob``, a shock of
      depth ``D ~ Uniform(depeg_depth)`` hits: ``d[t] = 1 - (1 - g d[t-1]) (1 - D)``; otherwise
      ``d[t] = g d[t-1]`` with ``g = 0.5 ** (1 / depeg_half_life)``. So the price drops by
      ``D`` at once and recovers geometrically toward the peg (half the gap closes every
      ``depeg_half_life`` bars). ``d[0] = 0``.
    * **De-peg flag** ``depeg[t] = 1.0 if p[t] < PEG * (1 - peg_tolerance) else 0.0``: computed from
      the price of bar ``t`` alone, so it is causal.

    ``features`` holds ``apy[<asset>]`` for every asset, then ``depeg[<asset>]`` for every asset
    (see :func:`apy_column`, :func:`depeg_column`). Opens/highs/lows/volumes decorate the close
    path as in :mod:`sb3_trading.data.synthetic` (scaled by ``price_vol``).

    :param n_steps: number of bars ``T`` (``>= 2``).
    :param n_assets: number of assets ``K``.
    :param seed: seed for ``np.random.default_rng``.
    :param apy_mean: long-run APY ``m``, annualised fraction, a number or ``(K,)``.
    :param apy_vol: APY volatility ``s``, per sqrt(year), ``>= 0``.
    :param apy_reversion: APY mean-reversion speed ``k``, per year, ``> 0`` (half-life ``ln 2 / k`` years).
    :param apy_correlation: pairwise correlation of the APY shocks (a common rate factor), in ``[-1/(K-1), 1]``.
    :param price_vol: annualised volatility of the peg noise, ``>= 0``.
    :param peg_reversion: pull of the peg noise back to the peg, per year, ``>= 0``.
    :param depeg_prob: per-bar probability of a de-peg shock, in ``[0, 1]``, a number or ``(K,)``.
    :param depeg_depth: ``(low, high)`` range of shock depths, fractions of the price, ``0 <= low <= high < 1``.
    :param depeg_half_life: recovery half-life of a de-peg, in bars, ``> 0``.
    :param peg_tolerance: relative distance below the peg that counts as de-pegged, in ``[0, 1)``.
    :param periods_per_year: bars per year (252: business days).
    :return: ``MarketData`` with prices/open/high/low/volume ``(T, K)`` and features ``(T, 2K)``.
    """
    n_steps = _check_int("n_steps", n_steps, 2)
    n_assets = _check_int("n_assets", n_assets, 1)
    apy_mean_arr = _per_asset("apy_mean", apy_mean, n_assets, -1.0, 10.0)
    apy_vol = _check_real("apy_vol", apy_vol, 0.0)
    apy_reversion = _check_real("apy_reversion", apy_reversion, 0.0, open_low=True)
    apy_correlation = _check_real("apy_correlation", apy_correlation, -1.0, 1.0)
    if n_assets > 1 and apy_correlation < -1.0 / (n_assets - 1):
        raise ValueError(f"apy_correlation={apy_correlation} is impossible for {n_assets} equicorrelated assets")
    price_vol = _check_real("price_vol", price_vol, 0.0)
    peg_reversion = _check_real("peg_reversion", peg_reversion, 0.0)
    depeg_prob_arr = _per_asset("depeg_prob", depeg_prob, n_assets, 0.0, 1.0)
    if len(depeg_depth) != 2:
        raise ValueError(f"depeg_depth must be a (low, high) pair, got {depeg_depth!r}")
    depth_lo = _check_real("depeg_depth[0]", depeg_depth[0], 0.0)
    depth_hi = _check_real("depeg_depth[1]", depeg_depth[1], depth_lo)
    if depth_hi >= 1.0:
        raise ValueError(f"depeg_depth must lie in [0, 1) (a price drop of 100 % leaves no price), got {depeg_depth!r}")
    depeg_half_life = _check_real("depeg_half_life", depeg_half_life, 0.0, open_low=True)
    peg_tolerance = _check_real("peg_tolerance", peg_tolerance, 0.0)
    if peg_tolerance >= 1.0:
        raise ValueError(f"peg_tolerance must be in [0, 1), got {peg_tolerance!r}")
    periods_per_year = _check_int("periods_per_year", periods_per_year, 1)

    rng = np.random.default_rng(seed)
    dt = 1.0 / periods_per_year
    n_moves = n_steps - 1

    # APY: exact OU recursion, correlated shocks
    phi = math.exp(-apy_reversion * dt)
    apy_innovation = apy_vol * math.sqrt(-math.expm1(-2.0 * apy_reversion * dt) / (2.0 * apy_reversion))
    apy_shocks = apy_innovation * _correlated_normals(rng, n_moves, n_assets, apy_correlation)
    # peg noise: GBM log-returns pulled back to the peg
    peg_decay = math.exp(-peg_reversion * dt)
    peg_shocks = price_vol * math.sqrt(dt) * rng.standard_normal((n_moves, n_assets))
    # de-pegs: arrivals and depths
    hits = rng.random((n_moves, n_assets)) < depeg_prob_arr
    depths = np.where(hits, rng.uniform(depth_lo, depth_hi, size=(n_moves, n_assets)), 0.0)
    recovery = 0.5 ** (1.0 / depeg_half_life)

    apy_state = np.empty((n_steps, n_assets))
    noise = np.empty((n_steps, n_assets))
    gap = np.empty((n_steps, n_assets))
    apy_state[0] = apy_mean_arr
    noise[0] = 0.0
    gap[0] = 0.0
    for t in range(n_moves):  # AR(1) recursions over time, vectorised over assets
        apy_state[t + 1] = apy_mean_arr + (apy_state[t] - apy_mean_arr) * phi + apy_shocks[t]
        noise[t + 1] = noise[t] * peg_decay + peg_shocks[t]
        gap[t + 1] = 1.0 - (1.0 - recovery * gap[t]) * (1.0 - depths[t])
    apy = np.maximum(apy_state, 0.0)
    close = PEG * np.exp(noise) * (1.0 - gap)
    flags = (close < PEG * (1.0 - peg_tolerance)).astype(np.float64)

    names = _asset_names(n_assets)
    return MarketData(
        prices=close,
        features=np.hstack([apy, flags]),
        timestamps=_timestamps(n_steps),
        asset_names=names,
        feature_names=[apy_column(name) for name in names] + [depeg_column(name) for name in names],
        periods_per_year=periods_per_year,
        calendar=f"synthetic: {periods_per_year} bars a year (timestamps are business days)",
        **_ohlcv(close, price_vol * math.sqrt(dt), rng),
    )
