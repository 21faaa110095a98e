"""``sb3_trading/YieldAllocation-v0``: allocate capital among ``K`` yield-bearing, pegged assets."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_trading.common.validation import ArgumentTypeError, check_float_array, check_int, check_real, is_real
from sb3_trading.data import MarketData
from sb3_trading.data.yield_market import PEG, apy_column, make_yield_market
from sb3_trading.envs.base import DEFAULT_NORMALIZER, MARKET_KEY, PORTFOLIO_KEY, NormalizerArg, TradingEnv
from sb3_trading.sim import CostModel, Portfolio
from sb3_trading.sim.accrual import friction_rates, rebalance_accrue_row, self_financing_row
from sb3_trading.sim.core import MAX_BPS

#: indicators computed per asset by default (prices barely move: returns and their volatility suffice;
#: the data's own ``apy[...]`` and ``depeg[...]`` columns are appended)
DEFAULT_YIELD_INDICATORS: tuple[str, ...] = ("log_return", "volatility")
#: absolute slack allowed on ``sum(lower) <= 1 <= sum(upper)`` for float bounds such as ``10 * 0.1``
BOUNDS_SLACK = 1e-12


#: a row already within the bounds is returned as is when its sum is 1 within this tolerance
FEASIBLE_SUM_TOL = 1e-12


class CappedSimplexProjection:
    """Exact Euclidean projection onto ``{w : lower <= w <= upper, sum(w) = 1}``, batched, with the bounds' constants
    computed once (:func:`project_capped_simplex` builds one per call; the env keeps one).

    The projection is ``w_i = clip(x_i - tau, lower_i, upper_i)`` with the scalar ``tau`` that makes the row sum 1.
    ``g(tau) = sum_i clip(x_i - tau, lower_i, upper_i)`` is piecewise linear and non-increasing with ``2K``
    breakpoints: coming down from ``tau = +inf`` (every asset at its lower bound, ``g = sum(lower)``), asset ``i``
    leaves its lower bound at ``x_i - lower_i`` and reaches its upper bound at ``x_i - upper_i``. With the
    breakpoints sorted in decreasing order ``c_0 >= c_1 >= ...``, the number of assets strictly between their
    bounds on ``(c_{j+1}, c_j)`` is a running sum ``n_j`` of ``+1`` / ``-1``, and ``g(c_{j+1}) - sum(lower)`` is
    the running sum ``G_j`` of ``n_m (c_m - c_{m+1}) >= 0``, ``m <= j``: non-decreasing also in floating point, and
    well conditioned (its terms add up to at most ``1 - sum(lower)`` before the crossing). ``tau`` lies on the first
    piece with ``G_j >= 1 - sum(lower)`` and is ``c_j - (1 - sum(lower) - G_{j-1}) / n_j`` there (``G_{-1} = 0``;
    ``n_j >= 1`` where ``g`` changes). A dozen NumPy calls on ``(B, 2K)`` arrays: no iteration, no loop over assets or rows.

    A row that already lies within the bounds and sums to 1 (within ``FEASIBLE_SUM_TOL``) is returned unchanged.
    Unlike clip-and-renormalise, the result always lies within the bounds (exactly: it is a clip) and sums to 1
    (up to float rounding).

    :param lower: ``(K,)`` lower bounds with ``sum(lower) <= 1``.
    :param upper: ``(K,)`` upper bounds with ``lower <= upper`` and ``sum(upper) >= 1``.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        k = self.lower.shape[0]
        #: ``(2, K)``: minus the breakpoints of a row ``x`` are ``bounds - x``: ``lower - x``, then ``upper - x``
        self._bounds = np.stack([self.lower, self.upper])
        #: ``(2K,)`` change of the number of free assets at each breakpoint, going down in ``tau``:
        #: ``+1`` leaving ``lower``, ``-1`` reaching ``upper``
        self._steps = np.concatenate([np.ones(k), -np.ones(k)])
        #: ``1 - sum(lower)``: what ``g`` must rise by above ``sum(lower)`` (0-d: cheaper in array arithmetic)
        self._slack = np.array(1.0 - np.add.reduce(self.lower))
        self._slack_value = self._slack.item()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Project each row of ``x`` (a batch of one runs :meth:`project_row`).

        :param x: ``(B, K)`` points, e.g. softmax weights.
        :return: ``(B, K)`` projected weights (a new array).
        """
        n_rows, k = x.shape
        if n_rows == 1:
            return self.project_row(x[0])[None]
        neg_breaks = (self._bounds - x[:, None, :]).reshape(n_rows, 2 * k)  # (B, 2K) minus the breakpoints
        # stable: at a tie, leaving lower comes first, so the running count never goes negative
        steps = self._steps[neg_breaks.argsort(axis=1, kind="stable")]
        neg_breaks.sort(axis=1)  # breakpoints in decreasing order, negated
        free = np.add.accumulate(steps, axis=1)  # (B, 2K) assets strictly between their bounds below each breakpoint
        # within the bounds iff the K breakpoints x - lower come first and 0 lies between them and the K x - upper
        inside = (free[:, k - 1] == k) & (neg_breaks[:, k - 1] <= 0.0) & (neg_breaks[:, k] >= 0.0)
        if inside.any():
            inside &= np.abs(np.add.reduce(x, axis=1) - 1.0) <= FEASIBLE_SUM_TOL
            if inside.all():
                return x.copy()  # already feasible: the projection is the identity
        # (B, 2K - 1) G_j = g(c_{j+1}) - sum(lower), a running sum of non-negative terms
        rise = np.add.accumulate(free[:, :-1] * (neg_breaks[:, 1:] - neg_breaks[:, :-1]), axis=1)
        crossed = rise >= self._slack
        # g(c_{2K-1}) = sum(upper) >= 1 (up to rounding when sum(upper) = 1: the last piece then gives w = upper)
        crossed[:, -1] = True
        piece = crossed.argmax(axis=1)  # first piece (c_{j+1}, c_j) whose lower end has g >= 1
        rows = np.arange(n_rows)
        # tau = c_j - (1 - g(c_j)) / n_j: from the upper end, where 0 <= g - sum(lower) = G_{j-1} < 1 - sum(lower)
        below = np.where(piece > 0, rise[rows, piece - 1], 0.0)
        tau = (below - self._slack) / free[rows, piece] - neg_breaks[rows, piece]
        weights = x - tau[:, None]
        np.minimum(np.maximum(weights, self.lower, out=weights), self.upper, out=weights)
        weights[inside] = x[inside]  # feasible rows exactly as they are
        return weights

    def project_row(self, x: np.ndarray) -> np.ndarray:
        """Project one point: the same arithmetic as :meth:`__call__`, with Python scalars (a single env's hot path).

        :param x: ``(K,)`` point.
        :return: ``(K,)`` projected weights (a new array).
        """
        k = x.shape[0]
        neg_breaks = (self._bounds - x).ravel()
        order = neg_breaks.argsort(kind="stable")
        steps = self._steps[order]
        neg_breaks = neg_breaks[order]
        free = np.add.accumulate(steps)
        if free.item(k - 1) == k and neg_breaks.item(k - 1) <= 0.0 <= neg_breaks.item(k):
            if abs(np.add.reduce(x) - 1.0) <= FEASIBLE_SUM_TOL:
                return x.copy()
        rise = np.add.accumulate(free[:-1] * (neg_breaks[1:] - neg_breaks[:-1]))
        slack = self._slack_value
        j = min(int(rise.searchsorted(slack)), 2 * k - 2)  # the first j with G_j >= slack, else the last piece
        below = rise.item(j - 1) if j else 0.0
        weights = x - ((below - slack) / free.item(j) - neg_breaks.item(j))
        return np.minimum(np.maximum(weights, self.lower, out=weights), self.upper, out=weights)


def project_capped_simplex(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``x`` onto ``{w : lower <= w <= upper, sum(w) = 1}``, batched.

    The projection is ``w_i = clip(x_i - tau, lower_i, upper_i)`` with the scalar ``tau`` that makes
    the row sum 1, found exactly from the ``2K`` sorted breakpoints ``x_i - lower_i`` and ``x_i - upper_i``
    of the piecewise-linear ``g(tau) = sum_i clip(x_i - tau, lower_i, upper_i)`` (see
    :class:`CappedSimplexProjection`; no iteration, no loop over assets). Unlike clip-and-renormalise, the
    result always lies within the bounds (exactly: it is a clip) and sums to 1 (up to float rounding).

    :param x: ``(B, K)`` points, e.g. softmax weights.
    :param lower: ``(K,)`` lower bounds with ``sum(lower) <= 1``.
    :param upper: ``(K,)`` upper bounds with ``lower <= upper`` and ``sum(upper) >= 1``.
    :return: ``(B, K)`` projected weights.
    """
    return CappedSimplexProjection(lower, upper)(x)


def softmax(actions: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(actions / temperature)``, ``(B, K) -> (B, K)`` (max-shifted: no overflow)."""
    z = actions / temperature if temperature != 1.0 else actions  # dividing by 1 is exact: skip it
    z = np.exp(z - np.maximum.reduce(z, axis=1, keepdims=True))
    z /= np.add.reduce(z, axis=1, keepdims=True)
    return z


def softmax_row(action: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """:func:`softmax` of one ``(K,)`` action: the same arithmetic, without the reductions' axis handling."""
    z = action / temperature if temperature != 1.0 else action
    z = np.exp(z - z[z.argmax()])
    return z / np.add.reduce(z)  # not in place: NumPy divides in place by a scalar about twice as slowly


def yield_weights(actions: np.ndarray, lower: np.ndarray, upper: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """YieldAllocation action -> target weights, batched: softmax, then projection onto the bounds.

    ``s = softmax(a / temperature)``, then ``w = project_capped_simplex(s, lower, upper)``.

    :param actions: ``(B, K)`` actions in ``[-1, 1]``.
    :param lower: ``(K,)`` per-asset lower bounds, ``sum(lower) <= 1``.
    :param upper: ``(K,)`` per-asset upper bounds, ``sum(upper) >= 1``.
    :param temperature: softmax temperature, ``> 0`` (lower is sharper).
    :return: ``(B, K)`` weights with ``lower <= w <= upper`` and ``sum(w) = 1``.
    """
    return project_capped_simplex(softmax(actions, temperature), lower, upper)


def _bounds(name: str, value: float | Sequence[float], n_assets: int) -> np.ndarray:
    array = check_float_array(name, value)
    if array.ndim == 0:
        array = np.full(n_assets, float(array))
    if array.shape != (n_assets,):
        raise ValueError(f"{name} must be a number or have one value per asset, shape ({n_assets},), got {array.shape}")
    if not (np.isfinite(array).all() and (array >= 0).all() and (array <= 1).all()):
        raise ValueError(f"{name} must be weights in [0, 1], got {array.tolist()}")
    return array


class YieldAllocationEnv(TradingEnv):
    """Long-only allocation among ``K`` yield-bearing, pegged assets (stablecoin pools, T-bill funds).

    ## Description
    At each bar ``t`` the agent chooses target weights. With equity ``E_t`` the book is
    rebalanced at the prices ``p_t`` through the accounting core so that the trade pays its own
    cost: the invested value ``V_t`` solves ``V_t + c * sum_i |V_t w_i - v_i| = E_t``
    (``v_i`` the current holding's value, ``c = rebalance_cost_bps * 1e-4``; see
    :func:`sb3_trading.sim.accrual.self_financing_value`), target shares ``V_t w_i / p_i,t``,
    leaving no cash. Over ``t -> t+1`` each asset then pays its yield *in shares*
    (``shares_i *= 1 + APY_i,t / periods_per_year``, :func:`sb3_trading.sim.accrual.accrue_yield`;
    ``APY_t`` is the rate quoted at ``t``, column ``apy[<asset>]`` of ``data.features``) and the
    book is marked at ``p_{t+1}``. So with ``r_i = p_i,t+1 / p_i,t``::

        E_{t+1} = V_t * sum_i w_i (1 + APY_i,t / periods_per_year) r_i

    An asset is *de-pegged* at bar ``s`` when ``p_i,s < peg_i (1 - depeg_tolerance)``; its
    de-peg depth is then ``1 - p_i,s / peg_i`` (0 otherwise).

    ## Action Space
    ``Box(-1, 1, (K,), float32)``, mapped to weights by ``softmax(a / temperature)`` and the
    Euclidean projection onto ``{w : lower_bound <= w <= upper_bound, sum(w) = 1}``
    (:func:`yield_weights`): the weights always sum to 1 and lie within the bounds. Actions
    outside ``[-1, 1]`` are clipped; a wrong shape or a non-finite value raises ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  ===============  ================================================================
    key            shape            content
    =============  ===============  ================================================================
    ``market``     ``(window, F)``  normalised causal features, rows ``t-window+1..t``: the
                                    ``indicators`` per asset, then the data's ``features``
                                    (``apy[...]``, ``depeg[...]`` flags for the synthetic market)
    ``portfolio``  ``(K + 2,)``     position value / equity per asset, cash / equity, drawdown
                                    (clipped to +-10)
    =============  ===============  ================================================================

    ## Rewards
    The portfolio return net of costs minus the de-peg penalty::

        reward = (E_{t+1} / E_t - 1) - depeg_penalty * sum_i w_i,t * depth_i,t+1

    where ``w_t`` are the target weights held over the step and ``depth_{t+1}`` the de-peg depths
    at ``t + 1``. ``info["portfolio_return"]`` is the raw return, ``info["depeg_penalty"]`` the
    subtracted term; ``info["target_weights"]`` holds ``w_t`` and ``info["yield_income"]`` the
    value of the interest paid (currency, at ``p_{t+1}``).

    ## Starting State
    All cash (``initial_cash``), no positions, at the first bar whose window is past the
    indicators' warm-up, or at a uniformly drawn bar with ``random_start=True``.

    ## Episode End
    Truncated when the drawdown ``1 - E_{t+1} / max E`` exceeds ``max_drawdown``, after
    ``episode_length`` decisions, or at the last bar of the data. Terminated only on ruin
    (equity ``<= 0``, impossible with positive prices and long-only weights).
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Arguments
    :param data: the market, with feature columns ``apy[<asset>]`` (annualised fractions) for every
        asset; ``None`` builds ``make_yield_market(seed=synthetic_seed, periods_per_year=periods_per_year)``.
    :param initial_cash: starting cash, account currency, in ``(0, 1e15]`` (:data:`~sb3_trading.envs.base.MAX_INITIAL_CASH`).
    :param rebalance_cost_bps: cost in bps of traded notional (the ``CostModel`` commission), in ``[0, 10000)``.
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param lower_bound: per-asset minimum weight, a number or ``(K,)``; needs ``sum(lower) <= 1``
        (``K * lower_bound <= 1``).
    :param upper_bound: per-asset maximum weight, a number or ``(K,)``; needs ``sum(upper) >= 1``
        (``K * upper_bound >= 1``).
    :param temperature: softmax temperature, ``> 0``.
    :param periods_per_year: bars per year over which an APY is spread, ``> 0``; ``None`` (default) takes
        the data's calendar, ``data.periods_per_year`` (252 for business-day bars such as the synthetic
        market's, 365 for daily 7-day data, ...); a number overrides it (and, without ``data``, is passed
        to ``make_yield_market``).
    :param depeg_penalty: weight of the de-peg penalty, ``>= 0``.
    :param peg: the peg price, a number or ``(K,)`` (the synthetic market pegs at 1.0); a warning is
        issued when the data's first prices are more than 50 % away from it.
    :param depeg_tolerance: relative distance below the peg that counts as de-pegged, in ``[0, 1)``.
    :param max_drawdown: drawdown in ``(0, 1]`` past which the episode is truncated; ``None`` disables it.
    :param indicators: indicator names (default :data:`DEFAULT_YIELD_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        initial_cash: float = 1_000_000.0,
        rebalance_cost_bps: float = 5.0,
        window: int = 1,
        episode_length: int | None = None,
        random_start: bool = False,
        lower_bound: float | Sequence[float] = 0.05,
        upper_bound: float | Sequence[float] = 0.60,
        temperature: float = 1.0,
        periods_per_year: float | None = None,
        depeg_penalty: float = 1.0,
        peg: float | Sequence[float] = PEG,
        depeg_tolerance: float = 0.005,
        max_drawdown: float | None = 0.15,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if periods_per_year is not None and not (is_real(periods_per_year) and 0 < periods_per_year < math.inf):
            raise (ValueError if is_real(periods_per_year) else ArgumentTypeError)(
                f"periods_per_year must be a finite number > 0 (bars per year), or None for data.periods_per_year, "
                f"got {periods_per_year!r}"
            )
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0), periods_per_year)
        if not isinstance(data, MarketData):
            raise TypeError(f"data must be a sb3_trading.data.MarketData, got {type(data).__name__}")
        periods_per_year = float(data.periods_per_year if periods_per_year is None else periods_per_year)
        indicators = DEFAULT_YIELD_INDICATORS if indicators is None else indicators
        super().__init__(
            data=data,
            initial_cash=initial_cash,
            window=window,
            episode_length=episode_length,
            random_start=random_start,
            indicators=indicators,
            normalizer=normalizer,
            render_mode=render_mode,
        )
        n_assets = data.n_assets
        rebalance_cost_bps = check_real("rebalance_cost_bps", rebalance_cost_bps, 0.0, MAX_BPS, strict_maximum=True)
        lower = _bounds("lower_bound", lower_bound, n_assets)
        upper = _bounds("upper_bound", upper_bound, n_assets)
        if (lower > upper).any():
            raise ValueError(f"lower_bound must be <= upper_bound per asset, got {lower.tolist()} > {upper.tolist()}")
        if lower.sum() > 1.0 + BOUNDS_SLACK or upper.sum() < 1.0 - BOUNDS_SLACK:
            raise ValueError(
                f"weight bounds admit no allocation of {n_assets} assets: need sum(lower_bound) <= 1 <= sum(upper_bound) "
                f"(K * lower <= 1 <= K * upper), got sum(lower_bound)={lower.sum():.6g}, sum(upper_bound)={upper.sum():.6g}"
            )
        temperature = check_real("temperature", temperature, 0.0, strict_minimum=True)
        depeg_penalty = check_real("depeg_penalty", depeg_penalty, 0.0)
        depeg_tolerance = check_real("depeg_tolerance", depeg_tolerance, 0.0, 1.0, strict_maximum=True)
        max_drawdown = check_real("max_drawdown", max_drawdown, 0.0, 1.0, strict_minimum=True, allow_none=True)
        peg_arr = check_float_array("peg", peg)
        peg_arr = np.full(n_assets, float(peg_arr)) if peg_arr.ndim == 0 else peg_arr
        if peg_arr.shape != (n_assets,) or not (np.isfinite(peg_arr).all() and (peg_arr > 0).all()):
            raise ValueError(f"peg must be a price > 0 or one per asset, shape ({n_assets},), got {peg!r}")

        start_gap = np.abs(data.prices[0] / peg_arr - 1.0)
        if (start_gap > 0.5).any():
            warnings.warn(
                f"the first prices {data.prices[0].tolist()} are far from peg={peg_arr.tolist()}: de-peg penalties will be "
                "wrong; pass peg=<the assets' peg prices>",
                stacklevel=2,
            )
        missing = [apy_column(a) for a in data.asset_names if apy_column(a) not in data.feature_names]
        if missing:
            raise ValueError(
                f"data lacks the APY feature columns {missing}: YieldAllocation needs one column 'apy[<asset>]' per asset "
                "(annualised yield as a fraction, e.g. 0.04), see sb3_trading.data.yield_market.make_yield_market"
            )
        columns = [data.feature_names.index(apy_column(a)) for a in data.asset_names]
        apy = data.features[:, columns]
        if (apy / periods_per_year <= -1.0).any():
            raise ValueError(f"APY / periods_per_year must be > -1 (a period cannot lose all), got min APY {apy.min()!r}")

        self.n_assets = n_assets
        self.lower_bound = lower
        self.upper_bound = upper
        self._projection = CappedSimplexProjection(lower, upper)
        self.temperature = float(temperature)
        #: bars per year of the APY accrual (``data.periods_per_year`` unless overridden)
        self.periods_per_year = periods_per_year
        self.depeg_penalty = float(depeg_penalty)
        self.peg = peg_arr
        self.depeg_tolerance = float(depeg_tolerance)
        self.max_drawdown = None if max_drawdown is None else float(max_drawdown)
        self._prices = data.prices  # (T, K)
        self._rates = np.ascontiguousarray(apy / periods_per_year)  # (T, K) yield of t -> t+1
        # per bar: the growth 1 + rate of a share held over t -> t+1 and the value at t + 1 of its interest
        self._growth = 1.0 + self._rates
        self._yield_value = self._rates * np.concatenate([data.prices[1:], data.prices[-1:]])
        # softmax without the max shift when the clipped action |a| <= 1 keeps exp(a / temperature) finite
        # (T, K) de-peg depth of each bar: only read at t + 1 for the reward, never in the observation
        depth = 1.0 - data.prices / peg_arr
        self._depeg_depth = np.where(data.prices < peg_arr * (1.0 - depeg_tolerance), depth, 0.0)
        self._depegged = (self._depeg_depth > 0.0).any(axis=1).tolist()  # (T,) any asset de-pegged: else no penalty
        self.costs = CostModel(commission_bps=rebalance_cost_bps, slippage_bps=0.0)
        self._rebalance_rates = friction_rates(self.costs)  # (buy, sell): both the commission, as slippage is 0

        self._book = Portfolio(1, n_assets, self.costs)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_assets,), dtype=np.float32)
        self.observation_space = self._observation_space(n_assets + 2)
        self._equity = self.initial_cash

    @classmethod
    def default_market(cls, seed: int = 0, periods_per_year: float | None = None) -> MarketData:
        """``make_yield_market(seed=seed)`` (with ``periods_per_year`` bars per year when given): the market built
        when ``data`` is ``None``.

        :param seed: seed of the synthetic market.
        :param periods_per_year: the env's ``periods_per_year`` argument; the synthetic market needs a whole number.
        """
        if periods_per_year is None:
            return make_yield_market(seed=seed)
        if not (is_real(periods_per_year) and float(periods_per_year).is_integer() and periods_per_year > 0):
            raise ValueError(
                f"periods_per_year={periods_per_year!r} must be a whole number to build the synthetic market "
                "(make_yield_market); pass data=... for another calendar"
            )
        return make_yield_market(seed=seed, periods_per_year=int(periods_per_year))

    def yield_rates(self) -> np.ndarray:
        """``(T, K)`` yield per bar of each asset, ``apy[<asset>] / periods_per_year``: what the env accrues (a copy)."""
        return self._rates.copy()

    def _observation(self, weights: np.ndarray, cash: float, equity: float, drawdown: float) -> dict[str, np.ndarray]:
        """The observation at ``self._t``: ``portfolio = [weights (K), cash / equity, drawdown]``.

        No clip to ``+-PORTFOLIO_BOUND`` is needed: long-only weights lie in ``[0, 1]`` (0 on a ruined book), the
        cash left by a self-financing rebalance is a rounding residual (all cash at reset) and the drawdown lies
        in ``[0, 1]``.
        """
        n = self.n_assets
        portfolio = np.empty(n + 2, dtype=np.float32)
        portfolio[:n] = weights
        portfolio[n] = cash / equity if equity > 0.0 else 0.0
        portfolio[n + 1] = drawdown
        return {MARKET_KEY: self._market_window(self._t), PORTFOLIO_KEY: portfolio}

    def _yield_info(self, info: dict[str, Any], target: np.ndarray, penalty: float, income: float) -> dict[str, Any]:
        info["target_weights"] = target
        info["depeg_penalty"] = penalty
        info["yield_income"] = income
        return info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._needs_reset = False
        self._t = self._start_t = self._sample_start(options)
        self._book.reset(self.initial_cash)
        self._equity = self.initial_cash
        zeros = np.zeros(self.n_assets)
        info = self._info(self._equity, self.initial_cash, zeros.copy(), zeros.copy(), 0.0, 0.0, 0.0, 0.0)
        observation = self._observation(zeros, self.initial_cash, self._equity, 0.0)
        return observation, self._yield_info(info, zeros.copy(), 0.0, 0.0)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise self._reset_needed()
        a = self._box_action(action)
        t = self._t
        equity_t = self._equity
        book, n = self._book, self.n_assets
        positions = book.positions[0]  # (K,) view of the book's row
        prices_t, prices_next = self._prices[t], self._prices[t + 1]
        z = softmax_row(a, self.temperature)
        target = self._projection.project_row(z)  # (K,), as yield_weights
        invest, traded, notional = self_financing_row(equity_t, target, positions * prices_t, *self._rebalance_rates)

        # the rebalance, the yield over t -> t+1 (paid in shares) and the mark at p_{t+1}, in the accounting core
        row = rebalance_accrue_row(
            book, target * invest / prices_t, traded, notional, self._growth[t], self._yield_value[t], prices_next
        )
        cash, costs, equity, dd = row.cash, row.costs, row.equity, row.drawdown
        weights = row.values / equity if equity > 0.0 else np.zeros(n)

        self._t = t = t + 1
        self._equity = equity
        portfolio_return = equity / equity_t - 1.0
        penalty = self.depeg_penalty * float(target.dot(self._depeg_depth[t])) if self._depegged[t] else 0.0
        terminated = equity <= 0.0
        over = t >= self.path_last_t[self._start_t] or (
            self.episode_length is not None and t - self._start_t >= self.episode_length
        )
        truncated = not terminated and ((self.max_drawdown is not None and dd > self.max_drawdown) or over)
        info = self._info(equity, cash, positions.copy(), weights, portfolio_return, notional / equity_t, costs, dd, t)
        info["target_weights"] = target
        info["depeg_penalty"] = penalty
        info["yield_income"] = row.income

        observation = self._observation(weights, cash, equity, dd)
        self._needs_reset = terminated or truncated
        return observation, portfolio_return - penalty, terminated, truncated, info
