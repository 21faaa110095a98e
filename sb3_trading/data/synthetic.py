"""Seeded synthetic markets returning :class:`~sb3_trading.data.market_data.MarketData`.

All generators draw from one ``np.random.default_rng(seed)`` (never the global RNG),
so the same arguments give the same data bit for bit. Every market has close prices
``(T, N)``, plausible ``open``/``high``/``low`` (``low <= min(open, close)``,
``high >= max(open, close)``, all ``> 0``), lognormal ``volume`` and business-day
timestamps ``(T,)`` starting on 2010-01-01 (:func:`pandas.bdate_range`, no holidays).

``close[0]`` is the start price; row ``t`` holds the bar that closes at ``t``. The close
path follows the stated model exactly; opens are the previous close times a small
independent gap, so close-to-close statistics are unaffected by the OHLC decoration.

* :func:`make_gbm_market` -- geometric Brownian motion, equicorrelated shocks: no edge.
* :func:`make_ou_market` -- mean-reverting log prices (Ornstein-Uhlenbeck).
* :func:`make_regime_market` -- hidden persistent regimes plus a noisy causal signal:
  the predictable market with a known best achievable return (see its docstring).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sb3_trading.common.validation import check_int, check_real
from sb3_trading.data.market_data import MarketData

START_DATE = "2010-01-01"
GAP_FRACTION = 0.25  # std of the open gap, as a fraction of the per-bar log-return std
WICK_FRACTION = 0.5  # scale of the high/low wicks, as a fraction of the per-bar log-return std
MEDIAN_VOLUME = 1e6
VOLUME_LOG_SIGMA = 0.5


def signal_column(asset: str) -> str:
    """Name of the causal signal feature of ``asset`` in the regime markets: ``"signal[<asset>]"``."""
    return f"signal[{asset}]"


# ----------------------------------------------------------------------------- validation
def _check_int(name: str, value: object, minimum: int) -> int:
    return check_int(name, value, minimum)  # type: ignore[return-value]


def _check_real(
    name: str, value: object, low: float | None = None, high: float | None = None, *, open_low: bool = False
) -> float:
    return check_real(name, value, low, high, strict_minimum=open_low)  # type: ignore[return-value]


def _check_correlation(correlation: object, n_assets: int) -> float:
    correlation = _check_real("correlation", correlation, -1.0, 1.0)
    if n_assets > 1 and correlation < -1.0 / (n_assets - 1):
        raise ValueError(
            f"correlation={correlation} is impossible for {n_assets} equicorrelated assets: it must be "
            f">= -1/(n_assets - 1) = {-1.0 / (n_assets - 1):.4f}"
        )
    return correlation


# ----------------------------------------------------------------------------- building blocks
def _timestamps(n_steps: int) -> np.ndarray:
    """Business days from :data:`START_DATE`, shape ``(n_steps,)``, ``datetime64[ns]``."""
    try:
        # as_unit("ns") raises where a plain cast from pandas' default "us" would wrap around silently
        return pd.bdate_range(START_DATE, periods=n_steps).as_unit("ns").to_numpy()
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        raise ValueError(f"n_steps={n_steps} business days from {START_DATE} run past the year 2262 ({exc})") from exc


def _asset_names(n_assets: int) -> list[str]:
    return [f"asset_{i}" for i in range(n_assets)]


def _correlated_normals(rng: np.random.Generator, n_rows: int, n_assets: int, correlation: float) -> np.ndarray:
    """Standard normals ``(n_rows, n_assets)`` with pairwise correlation ``correlation``."""
    shocks = rng.standard_normal((n_rows, n_assets))
    if correlation == 0.0 or n_assets == 1:
        return shocks
    corr = np.full((n_assets, n_assets), correlation)
    np.fill_diagonal(corr, 1.0)
    eigenvalues, eigenvectors = np.linalg.eigh(corr)  # PSD square root also covers correlation = 1
    root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    return shocks @ root.T


def _path_from_log_returns(start_price: float, log_returns: np.ndarray) -> np.ndarray:
    """Close prices ``(T, N)`` from log returns ``(T - 1, N)``; ``close[0] = start_price``."""
    log_path = np.vstack([np.zeros((1, log_returns.shape[1])), np.cumsum(log_returns, axis=0)])
    return start_price * np.exp(log_path)


def _ohlcv(close: np.ndarray, bar_sigma: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Open/high/low/volume ``(T, N)`` around a close path, scaled by the per-bar log-return std."""
    previous = np.vstack([close[:1], close[:-1]])
    open_ = previous * np.exp(GAP_FRACTION * bar_sigma * rng.standard_normal(close.shape))
    upper = np.abs(rng.standard_normal(close.shape)) * WICK_FRACTION * bar_sigma
    lower = np.abs(rng.standard_normal(close.shape)) * WICK_FRACTION * bar_sigma
    return {
        "open": open_,
        "high": np.maximum(open_, close) * np.exp(upper),
        "low": np.minimum(open_, close) * np.exp(-lower),
        "volume": rng.lognormal(mean=math.log(MEDIAN_VOLUME), sigma=VOLUME_LOG_SIGMA, size=close.shape),
    }


# ----------------------------------------------------------------------------- markets
def make_gbm_market(
    n_steps: int = 2520,
    n_assets: int = 5,
    mu: float = 0.05,
    sigma: float = 0.2,
    correlation: float = 0.0,
    start_price: float = 100.0,
    periods_per_year: int = 252,
    seed: int | None = 0,
) -> MarketData:
    """Geometric Brownian motion: a market with no exploitable edge beyond the drift.

    With ``dt = 1 / periods_per_year`` the per-bar log returns are i.i.d.
    ``(mu - sigma**2 / 2) * dt + sigma * sqrt(dt) * eps``, where ``eps`` is standard normal
    with the same pairwise ``correlation`` between every two assets.

    :param n_steps: number of bars ``T`` (``>= 2``).
    :param n_assets: number of assets ``N``.
    :param mu: annualised drift of the price (arithmetic, per year).
    :param sigma: annualised volatility of log returns (per sqrt(year)), ``>= 0``.
    :param correlation: pairwise correlation of the shocks, in ``[-1/(N-1), 1]``.
    :param start_price: ``close[0]`` of every asset, ``> 0``.
    :param periods_per_year: bars per year (252 for daily bars).
    :param seed: seed for ``np.random.default_rng``.
    :return: ``MarketData`` with prices/open/high/low/volume ``(T, N)``, no features.
    """
    n_steps = _check_int("n_steps", n_steps, 2)
    n_assets = _check_int("n_assets", n_assets, 1)
    mu = _check_real("mu", mu)
    sigma = _check_real("sigma", sigma, 0.0)
    correlation = _check_correlation(correlation, n_assets)
    start_price = _check_real("start_price", start_price, 0.0, open_low=True)
    periods_per_year = _check_int("periods_per_year", periods_per_year, 1)

    rng = np.random.default_rng(seed)
    dt = 1.0 / periods_per_year
    shocks = _correlated_normals(rng, n_steps - 1, n_assets, correlation)
    log_returns = (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * shocks
    close = _path_from_log_returns(start_price, log_returns)
    return MarketData(
        prices=close,
        timestamps=_timestamps(n_steps),
        asset_names=_asset_names(n_assets),
        **_ohlcv(close, sigma * math.sqrt(dt), rng),
    )


def make_ou_market(
    n_steps: int = 2520,
    n_assets: int = 5,
    theta: float = 5.0,
    sigma: float = 0.2,
    mean_price: float = 100.0,
    start_price: float | None = None,
    correlation: float = 0.0,
    periods_per_year: int = 252,
    seed: int | None = 0,
) -> MarketData:
    """Mean-reverting market: log prices follow an Ornstein-Uhlenbeck process.

    ``d x = theta * (log(mean_price) - x) dt + sigma dW`` with ``x = log(price)``, simulated
    with the exact discretisation (``dt = 1 / periods_per_year``, ``m = log(mean_price)``)::

        x[t+1] = m + (x[t] - m) * exp(-theta dt) + sigma * sqrt((1 - exp(-2 theta dt)) / (2 theta)) * eps[t+1]

    The half-life of a deviation is ``ln 2 / theta`` years (about 35 daily bars for the
    default ``theta=5``); the stationary std of ``x`` is ``sigma / sqrt(2 theta)``.

    :param n_steps: number of bars ``T`` (``>= 2``).
    :param n_assets: number of assets ``N``.
    :param theta: mean-reversion speed, per year, ``> 0``.
    :param sigma: annualised volatility of the log price, ``>= 0``.
    :param mean_price: long-run level the price reverts to (geometric mean), ``> 0``.
    :param start_price: ``close[0]``; ``None`` means ``mean_price``.
    :param correlation: pairwise correlation of the shocks, in ``[-1/(N-1), 1]``.
    :param periods_per_year: bars per year.
    :param seed: seed for ``np.random.default_rng``.
    :return: ``MarketData`` with prices/open/high/low/volume ``(T, N)``, no features.
    """
    n_steps = _check_int("n_steps", n_steps, 2)
    n_assets = _check_int("n_assets", n_assets, 1)
    theta = _check_real("theta", theta, 0.0, open_low=True)
    sigma = _check_real("sigma", sigma, 0.0)
    mean_price = _check_real("mean_price", mean_price, 0.0, open_low=True)
    start_price = mean_price if start_price is None else _check_real("start_price", start_price, 0.0, open_low=True)
    correlation = _check_correlation(correlation, n_assets)
    periods_per_year = _check_int("periods_per_year", periods_per_year, 1)

    rng = np.random.default_rng(seed)
    dt = 1.0 / periods_per_year
    phi = math.exp(-theta * dt)
    innovation_std = sigma * math.sqrt(-math.expm1(-2.0 * theta * dt) / (2.0 * theta))
    innovations = innovation_std * _correlated_normals(rng, n_steps - 1, n_assets, correlation)
    deviation = np.empty((n_steps, n_assets))
    deviation[0] = math.log(start_price / mean_price)
    for t in range(n_steps - 1):  # AR(1) recursion; a closed form in phi**-t is numerically unstable
        deviation[t + 1] = phi * deviation[t] + innovations[t]
    close = mean_price * np.exp(deviation)
    return MarketData(
        prices=close,
        timestamps=_timestamps(n_steps),
        asset_names=_asset_names(n_assets),
        **_ohlcv(close, sigma * math.sqrt(dt), rng),
    )


def regime_signal_accuracy(signal_noise: float) -> float:
    """Probability ``Phi(1 / signal_noise)`` that ``sign(signal_t)`` equals the regime ``r_t``.

    :param signal_noise: std of the signal noise, ``>= 0`` (0 gives 1.0).
    :return: accuracy in ``[0.5, 1]``; about 0.8413 for ``signal_noise=1``.
    """
    signal_noise = _check_real("signal_noise", signal_noise, 0.0)
    if signal_noise == 0.0:
        return 1.0
    return 0.5 * (1.0 + math.erf(1.0 / (signal_noise * math.sqrt(2.0))))


def regime_expected_returns(drift: float = 0.002, signal_noise: float = 1.0) -> dict[str, float]:
    """Expected per-bar, per-asset log return of reference policies in :func:`make_regime_market`.

    Before transaction costs; each policy holds one unit long or short per asset.

    :param drift: the market's per-bar drift.
    :param signal_noise: the market's signal noise.
    :return: ``{"oracle": drift, "signal": drift * (2 * Phi(1/signal_noise) - 1), "random": 0.0}``.
    """
    drift = _check_real("drift", drift, 0.0)
    return {
        "oracle": drift,
        "signal": drift * (2.0 * regime_signal_accuracy(signal_noise) - 1.0),
        "random": 0.0,
    }


def make_regime_market(
    n_steps: int = 2520,
    n_assets: int = 5,
    drift: float = 0.002,
    sigma: float = 0.01,
    switch_prob: float = 0.05,
    signal_noise: float = 1.0,
    start_price: float = 100.0,
    seed: int | None = 0,
    return_regimes: bool = False,
) -> MarketData | tuple[MarketData, np.ndarray]:
    """The predictable market: hidden persistent regimes and a noisy, causal leading signal.

    Each asset has a hidden regime ``r_t in {-1, +1}``, a Markov chain that flips with
    probability ``switch_prob`` per bar (independently across assets; ``r_0`` uniform;
    mean regime length ``1 / switch_prob`` bars). The log return from bar ``t`` to ``t+1``
    is ``drift * r_t + sigma * eps_{t+1}``. ``features`` holds one column per asset, named
    ``signal[<asset>]``, whose row ``t`` is ``s_t = r_t + signal_noise * z_t`` (``z`` i.i.d.
    standard normal): known at the close of bar ``t``, it predicts the drift of the *next*
    bar and says nothing about ``eps``. Past returns also predict the regime (momentum),
    because regimes persist, but weakly: one bar's return has signal-to-noise ``drift / sigma``.

    **Oracle** (per asset, per bar, expected log return before costs, holding one unit):

    * regime oracle, holding ``sign(r_t)``: ``drift`` -- 0.002 by default (0.504 per 252 bars,
      per-bar Sharpe ``drift / sigma = 0.2``); no policy can expect more.
    * signal follower, holding ``sign(s_t)``: right with probability ``p = Phi(1 / signal_noise)``
      (0.8413 for the default noise 1.0), so it earns ``drift * (2p - 1)`` = 0.6827 * 0.002
      = 0.001365 by default (0.344 per 252 bars). It changes sign on about 29% of bars by
      default (``(1 - q) * 2p(1 - p) + q * (p**2 + (1 - p)**2)`` with ``q = switch_prob``),
      so a proportional cost ``c`` per unit traded costs about ``0.58 c`` per bar: break-even
      near ``c = 23`` basis points.
    * a random or flat policy: 0.

    :func:`regime_expected_returns` computes these numbers for other arguments.

    :param n_steps: number of bars ``T`` (``>= 2``).
    :param n_assets: number of assets ``N``.
    :param drift: per-bar log drift magnitude, ``>= 0``.
    :param sigma: per-bar std of the log-return noise, ``>= 0``.
    :param switch_prob: per-bar regime flip probability, in ``[0, 1]``.
    :param signal_noise: std of the noise added to the regime in the signal, ``>= 0``.
    :param start_price: ``close[0]`` of every asset, ``> 0``.
    :param seed: seed for ``np.random.default_rng``.
    :param return_regimes: also return the hidden regimes.
    :return: ``MarketData`` (prices/open/high/low/volume ``(T, N)``, features ``(T, N)``), or
        ``(data, regimes)`` with ``regimes`` an ``int8`` array ``(T, N)`` of ``+-1`` if ``return_regimes``.
    """
    n_steps = _check_int("n_steps", n_steps, 2)
    n_assets = _check_int("n_assets", n_assets, 1)
    drift = _check_real("drift", drift, 0.0)
    sigma = _check_real("sigma", sigma, 0.0)
    switch_prob = _check_real("switch_prob", switch_prob, 0.0, 1.0)
    signal_noise = _check_real("signal_noise", signal_noise, 0.0)
    start_price = _check_real("start_price", start_price, 0.0, open_low=True)

    rng = np.random.default_rng(seed)
    initial = np.where(rng.random(n_assets) < 0.5, -1, 1)
    flips = np.cumsum(rng.random((n_steps - 1, n_assets)) < switch_prob, axis=0) % 2
    flips = np.vstack([np.zeros((1, n_assets), dtype=flips.dtype), flips])
    regimes = (initial * (1 - 2 * flips)).astype(np.int8)
    log_returns = drift * regimes[:-1] + sigma * rng.standard_normal((n_steps - 1, n_assets))
    close = _path_from_log_returns(start_price, log_returns)
    signal = regimes + signal_noise * rng.standard_normal((n_steps, n_assets))
    names = _asset_names(n_assets)
    data = MarketData(
        prices=close,
        features=signal,
        timestamps=_timestamps(n_steps),
        asset_names=names,
        feature_names=[signal_column(name) for name in names],
        **_ohlcv(close, sigma, rng),
    )
    if return_regimes:
        return data, regimes
    return data


def derive_leveraged_pair(
    index: MarketData,
    asset: str | None = None,
    leverage: float = 3.0,
    expense_ratio: float = 0.0095,
    periods_per_year: int = 252,
    names: tuple[str, str] = ("bull", "bear"),
) -> MarketData:
    """A daily-rebalanced ``+leverage`` ETF and its ``-leverage`` inverse, derived from an index path.

    Each bar the bull ETF returns ``leverage * r_t - fee`` and the bear ETF
    ``-leverage * r_t - fee``, where ``r_t`` is the index's simple close-to-close
    return and ``fee = expense_ratio / periods_per_year``. Compounding these daily
    returns gives the volatility decay of real leveraged ETFs (both lose in a
    choppy, flat market). A bar factor is floored at 1 % so prices stay positive
    after an index move beyond ``1 / leverage``. ETF opens, highs and lows are the
    index's intrabar moves from the previous close, levered the same way (the bear's
    high comes from the index low). Volumes are the index's.

    :param index: market holding the index (its other assets are ignored).
    :param asset: name of the index asset in ``index``; default its first asset.
    :param leverage: ETF leverage ``L > 0`` (3 for TQQQ/SQQQ-like products).
    :param expense_ratio: annual fee as a fraction (0.0095 = 0.95 %).
    :param periods_per_year: bars per year, to spread the fee.
    :param names: the bull and bear asset names.
    :return: ``MarketData`` with assets ``[index, bull, bear]`` (close, OHLC, volume), the index's
        timestamps and its ``features``.
    """
    leverage = _check_real("leverage", leverage, 0.0, open_low=True)
    expense_ratio = _check_real("expense_ratio", expense_ratio, 0.0, 1.0)
    periods_per_year = _check_int("periods_per_year", periods_per_year, 1)
    if len(names) != 2 or len(set(names)) != 2:
        raise ValueError(f"names must be two distinct ETF names, got {names!r}")
    if asset is not None and asset not in index.asset_names:
        raise ValueError(f"asset {asset!r} not in the index data's assets {list(index.asset_names)}")
    column = 0 if asset is None else list(index.asset_names).index(asset)
    index_name = index.asset_names[column]
    if index_name in names:
        raise ValueError(f"ETF names {names!r} must differ from the index asset name {index_name!r}")
    close = index.prices[:, column]
    previous = close[:-1]
    fee = expense_ratio / periods_per_year

    def levered(index_level: np.ndarray, sign: float) -> np.ndarray:
        """ETF growth factor from the previous close to ``index_level`` (an index price within the bar)."""
        return np.maximum(1.0 + sign * leverage * (index_level / previous - 1.0) - fee, 0.01)

    bull_factor = levered(close[1:], 1.0)
    bear_factor = levered(close[1:], -1.0)
    bull_close = close[0] * np.concatenate([[1.0], np.cumprod(bull_factor)])
    bear_close = close[0] * np.concatenate([[1.0], np.cumprod(bear_factor)])
    fields: dict[str, np.ndarray] = {}
    if index.open is not None and index.high is not None and index.low is not None:
        idx_open, idx_high, idx_low = (getattr(index, f)[:, column] for f in ("open", "high", "low"))

        def intrabar(level: np.ndarray, sign: float, etf_close: np.ndarray) -> np.ndarray:
            out = np.empty_like(etf_close)
            out[0] = etf_close[0] * level[0] / close[0]
            out[1:] = etf_close[:-1] * levered(level[1:], sign)
            return out

        bull = {
            "open": intrabar(idx_open, 1.0, bull_close),
            "high": intrabar(idx_high, 1.0, bull_close),
            "low": intrabar(idx_low, 1.0, bull_close),
        }
        bear = {
            "open": intrabar(idx_open, -1.0, bear_close),
            "high": intrabar(idx_low, -1.0, bear_close),
            "low": intrabar(idx_high, -1.0, bear_close),
        }
        for field, idx_values in (("open", idx_open), ("high", idx_high), ("low", idx_low)):
            fields[field] = np.column_stack([idx_values, bull[field], bear[field]])
        # the closes must lie inside the ETF bars as well
        closes = np.column_stack([close, bull_close, bear_close])
        fields["high"] = np.maximum.reduce([fields["high"], fields["open"], closes])
        fields["low"] = np.minimum.reduce([fields["low"], fields["open"], closes])
    if index.volume is not None:
        fields["volume"] = np.repeat(index.volume[:, column : column + 1], 3, axis=1)
    return MarketData(
        prices=np.column_stack([close, bull_close, bear_close]),
        features=index.features,
        timestamps=index.timestamps,
        asset_names=[index_name, *names],
        feature_names=index.feature_names,
        **fields,
    )


def make_leveraged_pair_market(
    n_steps: int = 2520,
    leverage: float = 3.0,
    expense_ratio: float = 0.0095,
    seed: int | None = 0,
    **regime_kwargs: float,
) -> MarketData:
    """A predictable index (a one-asset :func:`make_regime_market`) and its bull/bear ETF pair.

    :param n_steps: number of bars.
    :param leverage: ETF leverage.
    :param expense_ratio: annual ETF fee.
    :param seed: seed of the index path.
    :param regime_kwargs: further :func:`make_regime_market` arguments (``drift``, ``sigma``...).
    :return: ``MarketData`` with assets ``["index", "bull", "bear"]`` and the ``signal[index]`` feature.
    """
    index = make_regime_market(n_steps=n_steps, n_assets=1, seed=seed, **regime_kwargs)
    index = MarketData(
        prices=index.prices,
        features=index.features,
        timestamps=index.timestamps,
        asset_names=["index"],
        feature_names=[signal_column("index")],
        open=index.open,
        high=index.high,
        low=index.low,
        volume=index.volume,
    )
    return derive_leveraged_pair(index, leverage=leverage, expense_ratio=expense_ratio)


def make_echo_market(
    n_steps: int = 2520,
    n_assets: int = 1,
    lag: int = 4,
    strength: float = 0.004,
    sigma: float = 0.01,
    start_price: float = 100.0,
    seed: int | None = 0,
) -> MarketData:
    """A market whose signal is spread across a window: each return echoes the sign of one ``lag`` bars earlier.

    The log return into bar ``s`` is ``strength * sign(r_{s - lag}) + sigma * eps_s`` (``eps`` i.i.d.
    standard normal; the first ``lag`` returns are pure noise). At the close of bar ``t`` the drift of
    the next return is ``strength * sign(r_{t + 1 - lag})``: it is known, but only to a policy that sees
    the return ``lag - 1`` bars back. A policy that sees the last bar only (its return, or any
    function of it) cannot predict it, since the echo is independent of ``r_t`` for ``lag >= 2``.

    **Oracle**: holding ``sign(r_{t + 1 - lag})`` earns ``strength`` per bar per asset before costs
    (0.004 by default: 1.0 per 252 bars); a last-bar policy earns 0 in expectation.

    :param n_steps: number of bars ``T``.
    :param n_assets: independent assets ``N``.
    :param lag: echo distance in bars, ``>= 2``.
    :param strength: per-bar drift magnitude of the echo, ``>= 0``.
    :param sigma: per-bar std of the noise, ``> 0``.
    :param start_price: ``close[0]``.
    :param seed: seed for ``np.random.default_rng``.
    :return: ``MarketData`` with prices/OHLCV ``(T, N)``, no extra features.
    """
    n_steps = _check_int("n_steps", n_steps, 2)
    n_assets = _check_int("n_assets", n_assets, 1)
    lag = _check_int("lag", lag, 2)
    strength = _check_real("strength", strength, 0.0)
    sigma = _check_real("sigma", sigma, 0.0, open_low=True)
    start_price = _check_real("start_price", start_price, 0.0, open_low=True)
    rng = np.random.default_rng(seed)
    noise = sigma * rng.standard_normal((n_steps - 1, n_assets))
    log_returns = noise.copy()
    for s in range(lag, n_steps - 1):  # sequential by nature: each return depends on an earlier one
        log_returns[s] += strength * np.sign(log_returns[s - lag])
    close = _path_from_log_returns(start_price, log_returns)
    return MarketData(
        prices=close, timestamps=_timestamps(n_steps), asset_names=_asset_names(n_assets), **_ohlcv(close, sigma, rng)
    )
