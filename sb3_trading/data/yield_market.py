"""Seeded synthetic market of yield-bearing, (nearly) pegged assets: stablecoin pools, T-bill funds.

:func:`make_yield_market` returns a :class:`~sb3_trading.data.market_data.MarketData` whose
prices hover around a peg of ``1.0`` with rare de-peg shocks that recover gradually, and
whose ``features`` carry each asset's quoted yield (APY) and a causal de-peg flag. It feeds
``sb3_trading/YieldAllocation-v0``. Optionally (all off by default, so the default market is unchanged) it adds
the continuous peg deviation of every asset (``peg_dev[<asset>]``), exogenous drivers (ETH and BTC prices, BTC
dominance, a policy rate, a market lending APY, gas; :class:`YieldDrivers`) to which the assets' yields respond,
and volatile *staked* assets (stETH-like) whose price follows ETH with a beta.

Like the other generators (:mod:`sb3_trading.data.synthetic`) it draws from one
``np.random.default_rng(seed)`` only: the same arguments give the same data bit for bit.
Timestamps are business days from 2010-01-01, so ``periods_per_year=252`` by default. The new parts draw
after everything the default market draws, so turning them on leaves the pegged assets' prices (and, without
drivers, their APYs) bit for bit as they were for the same seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sb3_trading.data.market_data import MarketData
from sb3_trading.data.synthetic import _asset_names, _check_int, _check_real, _correlated_normals, _ohlcv, _timestamps

#: the price every asset is pegged to
PEG = 1.0
#: the feature columns of the exogenous drivers (:class:`YieldDrivers`), in ``features`` order
DRIVER_COLUMNS: tuple[str, ...] = ("eth_price", "btc_price", "btc_dominance", "policy_rate", "lending_apy", "gas")


def apy_column(asset: str) -> str:
    """Name of the APY feature column of ``asset``: ``"apy[<asset>]"``."""
    return f"apy[{asset}]"


def depeg_column(asset: str) -> str:
    """Name of the de-peg flag feature column of ``asset``: ``"depeg[<asset>]"``."""
    return f"depeg[{asset}]"


def peg_dev_column(asset: str) -> str:
    """Name of the continuous peg-deviation feature column of ``asset``: ``"peg_dev[<asset>]"``."""
    return f"peg_dev[{asset}]"


def staked_names(n_staked: int) -> list[str]:
    """Names of the staked assets of :func:`make_yield_market`: ``staked_0, staked_1, ...``."""
    return [f"staked_{j}" for j in range(n_staked)]


def compute_peg_deviation(prices: np.ndarray, peg: float | np.ndarray = PEG) -> np.ndarray:
    """Relative distance of each price from its peg, ``prices / peg - 1`` (negative below the peg).

    :param prices: ``(T, K)`` prices.
    :param peg: the peg: a number, ``(K,)`` (one per asset) or ``(T, K)`` (a moving fair value, e.g. a staked
        asset's beta-implied price), ``> 0``.
    :return: ``(T, K)`` float64 deviations, causal when ``peg`` at ``t`` uses data up to ``t`` only.
    :raises ValueError: for a peg that is not finite and ``> 0``.
    """
    peg_arr = np.asarray(peg, dtype=np.float64)
    if not (np.isfinite(peg_arr).all() and (peg_arr > 0).all()):
        raise ValueError("peg must be finite prices > 0")
    return np.asarray(prices, dtype=np.float64) / peg_arr - 1.0


def with_peg_deviation(data: MarketData, peg: float | Sequence[float] | np.ndarray = PEG) -> MarketData:
    """``data`` with a ``peg_dev[<asset>]`` feature column per asset appended: :func:`compute_peg_deviation` of its prices.

    For hand-built or loaded markets (:func:`make_yield_market` makes them itself with ``peg_deviation=True``);
    YieldAllocation-v0 reads these columns as the assets' pegs when built with ``peg=None``.

    :param data: the market; it must not have the columns yet.
    :param peg: a number, ``(K,)`` or ``(T, K)``, as :func:`compute_peg_deviation`.
    :raises ValueError: for a peg of another shape, or columns that already exist.
    """
    peg_arr = np.asarray(peg, dtype=np.float64)
    if peg_arr.ndim > 0 and peg_arr.shape not in {(data.n_assets,), data.prices.shape}:
        raise ValueError(
            f"peg must be a number, one per asset, shape ({data.n_assets},), or one per bar and asset, shape "
            f"{data.prices.shape}, got {peg_arr.shape}"
        )
    columns = [peg_dev_column(a) for a in data.asset_names]
    clash = [c for c in columns if c in data.feature_names]
    if clash:
        raise ValueError(f"data already has the peg deviation columns {clash}")
    return dataclasses.replace(
        data,
        features=np.hstack([data.features, compute_peg_deviation(data.prices, peg_arr)]),
        feature_names=(*data.feature_names, *columns),
    )


@dataclass(frozen=True)
class YieldDrivers:
    """Parameters of the exogenous drivers of :func:`make_yield_market` (``drivers=YieldDrivers(...)``).

    With ``dt = 1 / periods_per_year`` and all rates annualised fractions:

    * ``eth_price``, ``btc_price`` (USD): correlated GBMs,
      ``log S[t+1] = log S[t] + (mu - sigma^2 / 2) dt + sigma sqrt(dt) eps[t+1]``, the two ``eps`` correlated by
      ``eth_btc_correlation``; ``S[0]`` the start prices.
    * ``btc_dominance`` in ``(0, 1)``: ``logistic(u)`` with ``u`` an OU around ``logit(dominance_mean)`` (exact
      discretisation, reversion ``dominance_reversion``, vol ``dominance_vol``) that also moves one for one with
      BTC's log return over ETH's (``u[t+1] += r_btc[t+1] - r_eth[t+1]``): BTC outperforming raises its share.
    * ``policy_rate``: a step process. A latent OU ``x`` (mean ``policy_rate_mean``, reversion
      ``policy_rate_reversion``, vol ``policy_rate_vol``, ``x[0]`` = the mean) is read at a meeting every
      ``meeting_interval`` bars (bar 0 first) and rounded to a multiple of ``policy_rate_step`` (``0``: no
      rounding), floored at 0; the rate holds until the next meeting.
    * ``lending_apy``: the market lending rate, ``max(policy_rate + spread, 0)`` with ``spread`` an OU around
      ``lending_spread`` (reversion ``lending_spread_reversion``, vol ``lending_spread_vol``).
    * ``gas`` (gwei, ``> 0``): ``exp(y)``, ``y`` an OU around ``log(gas_median)`` (reversion ``gas_reversion``,
      vol ``gas_vol``): a lognormal OU.

    The pegged assets' APYs respond to the lending rate: ``apy_i = max(x_i + rate_beta * (lending_apy -
    (policy_rate_mean + lending_spread)), 0)`` (``x_i`` their own OU, see :func:`make_yield_market`).

    :param eth_start: ETH price at bar 0, USD, ``> 0``; ``btc_start`` BTC's.
    :param eth_drift: ETH's drift ``mu``, per year; ``btc_drift`` BTC's.
    :param eth_vol: ETH's volatility ``sigma``, per sqrt(year), ``>= 0``; ``btc_vol`` BTC's.
    :param eth_btc_correlation: correlation of the ETH and BTC log returns, in ``[-1, 1]``.
    :param dominance_mean: long-run BTC dominance, in ``(0, 1)``.
    :param dominance_vol: volatility of ``logit(dominance)``, per sqrt(year), ``>= 0``.
    :param dominance_reversion: its mean-reversion speed, per year, ``> 0``.
    :param policy_rate_mean: long-run policy rate, annual fraction.
    :param policy_rate_vol: volatility of the latent policy rate, per sqrt(year), ``>= 0``.
    :param policy_rate_reversion: its mean-reversion speed, per year, ``> 0``.
    :param policy_rate_step: rate increment of a decision, annual fraction, ``>= 0`` (0.0025: 25 bp).
    :param meeting_interval: bars between rate decisions, ``>= 1``.
    :param lending_spread: long-run spread of the lending APY over the policy rate, annual fraction.
    :param lending_spread_vol: its volatility, per sqrt(year), ``>= 0``.
    :param lending_spread_reversion: its mean-reversion speed, per year, ``> 0``.
    :param gas_median: long-run median gas price, gwei, ``> 0``.
    :param gas_vol: volatility of ``log(gas)``, per sqrt(year), ``>= 0``.
    :param gas_reversion: its mean-reversion speed, per year, ``> 0``.
    :param rate_beta: pass-through of the lending APY's deviation from its long-run level to the pegged assets'
        APYs (0: none, 1: one for one).
    """

    eth_start: float = 2000.0
    btc_start: float = 30000.0
    eth_drift: float = 0.0
    btc_drift: float = 0.0
    eth_vol: float = 0.75
    btc_vol: float = 0.60
    eth_btc_correlation: float = 0.8
    dominance_mean: float = 0.5
    dominance_vol: float = 0.5
    dominance_reversion: float = 1.0
    policy_rate_mean: float = 0.03
    policy_rate_vol: float = 0.01
    policy_rate_reversion: float = 0.3
    policy_rate_step: float = 0.0025
    meeting_interval: int = 30
    lending_spread: float = 0.02
    lending_spread_vol: float = 0.02
    lending_spread_reversion: float = 4.0
    gas_median: float = 30.0
    gas_vol: float = 3.0
    gas_reversion: float = 50.0
    rate_beta: float = 1.0

    def __post_init__(self) -> None:
        for name in ("eth_start", "btc_start", "gas_median"):
            _check_real(name, getattr(self, name), 0.0, open_low=True)
        for name in (
            "eth_vol",
            "btc_vol",
            "dominance_vol",
            "policy_rate_vol",
            "policy_rate_step",
            "lending_spread_vol",
            "gas_vol",
        ):
            _check_real(name, getattr(self, name), 0.0)
        for name in ("dominance_reversion", "policy_rate_reversion", "lending_spread_reversion", "gas_reversion"):
            _check_real(name, getattr(self, name), 0.0, open_low=True)
        for name in ("eth_drift", "btc_drift", "policy_rate_mean", "lending_spread", "rate_beta"):
            _check_real(name, getattr(self, name), -10.0, 10.0)
        _check_real("eth_btc_correlation", self.eth_btc_correlation, -1.0, 1.0)
        if not 0.0 < _check_real("dominance_mean", self.dominance_mean) < 1.0:
            raise ValueError(f"dominance_mean must be in (0, 1) (a market share), got {self.dominance_mean!r}")
        _check_int("meeting_interval", self.meeting_interval, 1)

    @property
    def lending_level(self) -> float:
        """Long-run level of the lending APY, ``policy_rate_mean + lending_spread``, annual fraction."""
        return self.policy_rate_mean + self.lending_spread


def _ou_paths(
    rng: np.random.Generator,
    n_steps: int,
    start: np.ndarray,
    mean: np.ndarray,
    reversion: np.ndarray,
    vol: np.ndarray,
    dt: float,
) -> np.ndarray:
    """``(T, M)`` independent OU paths, exact discretisation: ``x[t+1] = m + (x[t] - m) e^{-k dt} + s_dt eps[t+1]``.

    ``s_dt = vol sqrt((1 - e^{-2 k dt}) / (2 k))``; ``x[0] = start``; ``eps`` standard normals drawn from ``rng``,
    ``(T - 1, M)`` at once. All parameters ``(M,)``, ``reversion > 0``.
    """
    phi = np.exp(-reversion * dt)
    innovation = vol * np.sqrt(-np.expm1(-2.0 * reversion * dt) / (2.0 * reversion))
    eps = rng.standard_normal((n_steps - 1, mean.shape[0]))
    x = np.empty((n_steps, mean.shape[0]))
    x[0] = start
    for t in range(n_steps - 1):  # AR(1) recursion over time, vectorised over paths
        x[t + 1] = mean + (x[t] - mean) * phi + innovation * eps[t]
    return x


def _drivers(rng: np.random.Generator, n_steps: int, dt: float, spec: YieldDrivers) -> np.ndarray:
    """``(T, 6)`` driver columns in :data:`DRIVER_COLUMNS` order (see :class:`YieldDrivers`)."""
    n_moves = n_steps - 1
    vols = np.array([spec.eth_vol, spec.btc_vol])
    drifts = np.array([spec.eth_drift, spec.btc_drift])
    eps = _correlated_normals(rng, n_moves, 2, spec.eth_btc_correlation)
    log_returns = (drifts - 0.5 * vols**2) * dt + vols * math.sqrt(dt) * eps  # (T - 1, 2): ETH, BTC
    log_path = np.vstack([np.zeros((1, 2)), np.cumsum(log_returns, axis=0)])
    crypto = np.array([spec.eth_start, spec.btc_start]) * np.exp(log_path)
    # dominance: OU of logit(dominance) plus BTC's log return over ETH's; one AR(1) with an input
    u0 = math.log(spec.dominance_mean / (1.0 - spec.dominance_mean))
    phi = math.exp(-spec.dominance_reversion * dt)
    innovation = spec.dominance_vol * math.sqrt(
        -math.expm1(-2.0 * spec.dominance_reversion * dt) / (2.0 * spec.dominance_reversion)
    )
    pushes = innovation * rng.standard_normal(n_moves) + (log_returns[:, 1] - log_returns[:, 0])
    u = np.empty(n_steps)
    u[0] = u0
    for t in range(n_moves):
        u[t + 1] = u0 + (u[t] - u0) * phi + pushes[t]
    dominance = 1.0 / (1.0 + np.exp(-u))
    # policy rate latent, lending spread, log gas: three independent OUs
    means = np.array([spec.policy_rate_mean, spec.lending_spread, math.log(spec.gas_median)])
    states = _ou_paths(
        rng,
        n_steps,
        means,
        means,
        np.array([spec.policy_rate_reversion, spec.lending_spread_reversion, spec.gas_reversion]),
        np.array([spec.policy_rate_vol, spec.lending_spread_vol, spec.gas_vol]),
        dt,
    )
    meetings = (np.arange(n_steps) // spec.meeting_interval) * spec.meeting_interval  # last decision bar <= t
    decided = states[meetings, 0]
    if spec.policy_rate_step > 0.0:
        decided = np.round(decided / spec.policy_rate_step) * spec.policy_rate_step
    policy = np.maximum(decided, 0.0)
    lending = np.maximum(policy + states[:, 1], 0.0)
    gas = np.exp(states[:, 2])
    return np.column_stack([crypto, dominance, policy, lending, gas])


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
    *,
    drivers: bool | YieldDrivers = False,
    staked_assets: int = 0,
    staked_beta: float | Sequence[float] = 1.0,
    staked_apy: float | Sequence[float] = 0.035,
    staked_vol: float = 0.02,
    staked_depeg_prob: float = 0.0,
    peg_deviation: bool | None = None,
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

    Optional parts (all off by default; they draw after the parts above, so the pegged assets' prices stay those
    of the same seed without them):

    * **Drivers** (``drivers=True`` or a :class:`YieldDrivers`): the columns :data:`DRIVER_COLUMNS` --
      ``eth_price``, ``btc_price`` (USD levels), ``btc_dominance`` (fraction in ``(0, 1)``), ``policy_rate``,
      ``lending_apy`` (annual fractions), ``gas`` (gwei) -- each at ``t`` from draws up to ``t`` (causal). The
      pegged assets' APYs then follow the lending rate (``YieldDrivers.rate_beta``):
      ``apy_i[t] = max(x_i[t] + rate_beta * (lending_apy[t] - policy_rate_mean - lending_spread), 0)``.
    * **Staked assets** (``staked_assets=S``, needs the drivers): volatile stETH-like assets ``staked_<j>``
      appended after the pegged ones, priced relative to their value at bar 0 (``p[0] = 1``). Asset ``j``'s
      *fair value* is ``f_j[t] = exp(beta_j * log(eth_price[t] / eth_price[0]))`` (``beta_j = staked_beta``);
      its price ``p_j[t] = f_j[t] exp(z_j[t]) (1 - d_j[t])`` with ``z_j`` the peg noise above at volatility
      ``staked_vol`` (pulled back by ``peg_reversion``) and ``d_j`` de-peg shocks of probability
      ``staked_depeg_prob`` (depths and recovery as above). So its log return is ``beta_j`` times ETH's plus
      small mean-reverting noise. Its APY is a staking yield: its own OU (mean ``staked_apy``, ``apy_vol``,
      ``apy_reversion``, shocks independent of the others), not tied to the lending rate. Its *peg* is its fair
      value: its de-peg flag is ``p_j[t] < f_j[t] (1 - peg_tolerance)`` and its peg deviation ``p_j / f_j - 1``.
    * **Peg deviation** (``peg_deviation=True``; the default ``None`` turns it on exactly when there are staked
      assets, whose moving peg the env reads from it): ``peg_dev[<asset>] = p / peg - 1`` (:func:`compute_peg_deviation`,
      :func:`peg_dev_column`) for every asset, ``peg = PEG`` for the pegged ones, ``f_j`` for the staked ones.

    ``features`` holds ``apy[<asset>]`` for every asset, then ``depeg[<asset>]`` for every asset
    (see :func:`apy_column`, :func:`depeg_column`), then ``peg_dev[<asset>]`` for every asset (if on), then the
    drivers (if on). Assets are ``asset_<i>`` (pegged), then ``staked_<j>``. Opens/highs/lows/volumes decorate the
    close path as in :mod:`sb3_trading.data.synthetic` (scaled by ``price_vol``; for the staked assets by the
    per-bar volatility ``sqrt(max(beta)^2 eth_vol^2 + staked_vol^2) sqrt(dt)``).

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
    :param drivers: ``False`` (default): none; ``True``: the drivers with :class:`YieldDrivers`' defaults; a
        :class:`YieldDrivers`: with those parameters.
    :param staked_assets: number of staked assets ``S >= 0`` (default 0), appended to the ``n_assets`` pegged
        ones; ``S > 0`` needs ``drivers``.
    :param staked_beta: beta of each staked asset's log price to ETH's, a number or ``(S,)``, in ``[-10, 10]``.
    :param staked_apy: long-run staking APY, annualised fraction, a number or ``(S,)``.
    :param staked_vol: annualised volatility of the staked assets' noise around their fair value, ``>= 0``.
    :param staked_depeg_prob: per-bar probability of a de-peg shock of a staked asset, in ``[0, 1]``.
    :param peg_deviation: add the ``peg_dev[<asset>]`` columns; ``None`` (default): when ``staked_assets > 0``.
    :return: ``MarketData`` with prices/open/high/low/volume ``(T, K)`` (``K = n_assets + staked_assets``) and
        features ``(T, 2K)``, plus ``K`` peg deviation and 6 driver columns when on.
    :raises ValueError: for an argument out of range, or staked assets without drivers.
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
    if isinstance(drivers, bool):
        spec = YieldDrivers() if drivers else None
    elif isinstance(drivers, YieldDrivers):
        spec = drivers
    else:
        raise TypeError(f"drivers must be True, False or a YieldDrivers, got {type(drivers).__name__}")
    n_staked = _check_int("staked_assets", staked_assets, 0)
    if n_staked and spec is None:
        raise ValueError(
            f"staked_assets={n_staked} needs the ETH price their fair value follows: pass drivers=True (or a YieldDrivers)"
        )
    beta_arr = _per_asset("staked_beta", staked_beta, n_staked, -10.0, 10.0)
    staked_apy_arr = _per_asset("staked_apy", staked_apy, n_staked, -1.0, 10.0)
    staked_vol = _check_real("staked_vol", staked_vol, 0.0)
    staked_depeg_prob = _check_real("staked_depeg_prob", staked_depeg_prob, 0.0, 1.0)
    if peg_deviation is None:
        peg_deviation = n_staked > 0
    elif not isinstance(peg_deviation, bool):
        raise TypeError(f"peg_deviation must be True, False or None, got {peg_deviation!r}")

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
    close = PEG * np.exp(noise) * (1.0 - gap)
    flags = (close < PEG * (1.0 - peg_tolerance)).astype(np.float64)
    ohlcv = _ohlcv(close, price_vol * math.sqrt(dt), rng)  # the last draw of the default market
    fair = np.full_like(close, PEG)
    names = _asset_names(n_assets)
    extra: list[np.ndarray] = []
    if spec is not None:  # everything below draws after the default market
        driven = _drivers(rng, n_steps, dt, spec)
        apy_state = apy_state + spec.rate_beta * (driven[:, [4]] - spec.lending_level)
        extra.append(driven)
    apy = np.maximum(apy_state, 0.0)
    if n_staked:
        eth_log = np.log(driven[:, 0] / driven[0, 0])  # (T,) ETH's log price path, 0 at bar 0
        staked_fair = np.exp(np.outer(eth_log, beta_arr))  # (T, S) beta-implied fair value
        staked_apy_state = _ou_paths(
            rng, n_steps, staked_apy_arr, staked_apy_arr, np.full(n_staked, apy_reversion), np.full(n_staked, apy_vol), dt
        )
        z_shocks = staked_vol * math.sqrt(dt) * rng.standard_normal((n_moves, n_staked))
        staked_hits = rng.random((n_moves, n_staked)) < staked_depeg_prob
        staked_depths = np.where(staked_hits, rng.uniform(depth_lo, depth_hi, size=(n_moves, n_staked)), 0.0)
        z = np.empty((n_steps, n_staked))
        staked_gap = np.empty((n_steps, n_staked))
        z[0] = 0.0
        staked_gap[0] = 0.0
        for t in range(n_moves):  # the pegged assets' recursions, around the fair value
            z[t + 1] = z[t] * peg_decay + z_shocks[t]
            staked_gap[t + 1] = 1.0 - (1.0 - recovery * staked_gap[t]) * (1.0 - staked_depths[t])
        staked_close = staked_fair * np.exp(z) * (1.0 - staked_gap)
        bar_sigma = math.sqrt(float(np.max(beta_arr**2)) * spec.eth_vol**2 + staked_vol**2) * math.sqrt(dt)
        staked_ohlcv = _ohlcv(staked_close, bar_sigma, rng)
        ohlcv = {key: np.hstack([ohlcv[key], staked_ohlcv[key]]) for key in ohlcv}
        close = np.hstack([close, staked_close])
        fair = np.hstack([fair, staked_fair])
        apy = np.hstack([apy, np.maximum(staked_apy_state, 0.0)])
        flags = np.hstack([flags, (staked_close < staked_fair * (1.0 - peg_tolerance)).astype(np.float64)])
        names = names + staked_names(n_staked)
    columns = [apy, flags]
    feature_names = [apy_column(name) for name in names] + [depeg_column(name) for name in names]
    if peg_deviation:
        columns.append(compute_peg_deviation(close, fair))
        feature_names += [peg_dev_column(name) for name in names]
    if spec is not None:
        columns += extra
        feature_names += list(DRIVER_COLUMNS)
    return MarketData(
        prices=close,
        features=np.hstack(columns),
        timestamps=_timestamps(n_steps),
        asset_names=names,
        feature_names=feature_names,
        periods_per_year=periods_per_year,
        calendar=f"synthetic: {periods_per_year} bars a year (timestamps are business days)",
        **ohlcv,
    )
