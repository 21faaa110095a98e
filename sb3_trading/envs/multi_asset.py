"""``sb3_trading/MultiAsset-v0``: continuous long/short trading of ``N`` assets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from sb3_trading.common.jit import njit
from sb3_trading.common.validation import check_choice, check_int, check_real
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_regime_market
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    EXECUTIONS,
    FeatureFits,
    KernelTradingEnv,
    NormalizerArg,
    TradingKernel,
    Transition,
)
from sb3_trading.envs.kernel import MARGIN_CALL, clip_bound, dead_zone_action
from sb3_trading.sim.frictions import (
    RULE_FEATURES,
    Brackets,
    CostModel,
    Financing,
    Margin,
    resolve_market_rules,
)
from sb3_trading.sim.kernels import order_row, record_row, settle_row


@njit(internal=True)
def multi_asset_targets_row(
    equity: float, actions: np.ndarray, prices: np.ndarray, out: np.ndarray, dead_zone: float = 0.0
) -> None:
    """One account's MultiAsset targets into ``out`` ``(N,)``: ``(E_t / N) * a'_i / S_i,t`` shares (the one rule),
    ``a'_i`` the action past the dead zone (:func:`dead_zone_action`)."""
    n_assets = actions.shape[0]
    scale = equity / n_assets
    for i in range(n_assets):
        out[i] = scale * dead_zone_action(actions[i], dead_zone) / prices[i]


@njit(internal=True)
def keep_within_band(holdings: np.ndarray, b: int, equity: float, prices: np.ndarray, band: float, target: np.ndarray) -> None:
    """Threshold rebalancing: when every target exposure is within ``band`` of the exposure account ``b`` holds, in
    action units (``|target_i - q_i| S_i N / E_t < band`` for all ``i``; ``a_i = 1`` is ``E_t / N`` long), set
    ``target`` ``(N,)`` to the shares held (no trade)."""
    n_assets = target.shape[0]
    for i in range(n_assets):
        if abs(target[i] - holdings[b, i]) * prices[i] * n_assets >= band * equity:
            return
    for i in range(n_assets):
        target[i] = holdings[b, i]


@njit
def multi_asset_targets(equity: np.ndarray, actions: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """MultiAsset action -> target share counts, batched.

    Each asset gets the base scale ``E_t / N``: target value ``V_i = (E_t / N) * a_i``,
    target shares ``V_i / S_i,t``.

    :param equity: ``(B,)`` equity ``E_t`` marked at ``prices``.
    :param actions: ``(B, N)`` actions in ``[-1, 1]``.
    :param prices: ``(B, N)`` prices ``S_t`` known at decision time.
    :return: ``(B, N)`` target shares (fractional; negative = short).
    """
    target = np.empty(actions.shape)
    for b in range(actions.shape[0]):
        multi_asset_targets_row(equity[b], actions[b], prices[b], target[b])
    return target


@njit
def multi_asset_step(
    holdings: np.ndarray,
    peak: np.ndarray,
    levels: np.ndarray,
    equity_t: np.ndarray,
    t: np.ndarray,
    actions: np.ndarray,
    prices: np.ndarray,
    fill_prices: np.ndarray,
    fill_shift: int,
    bars: np.ndarray,
    rules: np.ndarray,
    ohlc: np.ndarray,
    out: tuple[np.ndarray, ...],
    more: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    band: float,
    dead_zone: float,
) -> None:
    """One MultiAsset step of every account, in place: targets at the closes of ``t``, the order limits, the trade
    at the fill prices of row ``t + fill_shift``, a bar of financing, the bracket orders over bar ``t + 1``, the
    mark at the closes of ``t + 1``, the margin call there, and the ``portfolio`` block.

    :param holdings: ``(B, N + 1)`` the books (written); ``peak`` ``(B,)`` their peaks (written).
    :param levels: ``(B, 3, N)`` bracket entry, stop and take-profit prices (written; NaN: none).
    :param equity_t: ``(B,)`` equity at the close of ``t`` (the trade is sized on it).
    :param t: ``(B,)`` int64 decision bars.
    :param actions: ``(B, N)`` float64 actions in ``[-1, 1]``.
    :param prices: ``(T, N)`` closes; ``fill_prices`` ``(T, N)``: the prices orders fill at, row ``t + fill_shift``.
    :param bars: ``(T, N_BAR_FIELDS, N)`` per-bar frictions; ``rules`` ``(N_RULES,)`` (:mod:`sb3_trading.sim.frictions`).
    :param ohlc: ``(T, 3, N)`` open, high and low of each bar, read by the brackets (any ``(1, 3, N)`` array without them).
    :param out: the transition's arrays, written: ``t, equity, cash, positions, weights, notional, costs, drawdown,
        portfolio`` (see :meth:`~sb3_trading.envs.kernel.TradingKernel.blank`); ``portfolio`` ``(B, N + 1)`` float32
        holds the weights then the cash weight, clipped to ``[-PORTFOLIO_BOUND, PORTFOLIO_BOUND]``.
    :param more: ``(financing, unfilled, bracket_exits, ended)`` ``(B,)`` each, written: the net financing
        (currency), the mid notional left unfilled, the positions the brackets closed, and the
        :attr:`~sb3_trading.envs.kernel.Transition.ended` code (int8, :data:`~sb3_trading.envs.kernel.MARGIN_CALL`).
    :param band: the rebalance band (:func:`keep_within_band`), ``0``: trade to the target every bar.
    :param dead_zone: the actions' dead zone (:func:`dead_zone_action`), ``0``: none.
    """
    t_next, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    financing, unfilled, exits, ended = more
    n_rows, n_assets = actions.shape
    target = np.empty(n_assets)
    for b in range(n_rows):
        row = t[b]
        t_next[b] = row + 1
        multi_asset_targets_row(equity_t[b], actions[b], prices[row], target, dead_zone)
        if band > 0.0:
            keep_within_band(holdings, b, equity_t[b], prices[row], band, target)
        fill = fill_prices[row + fill_shift]
        unfilled[b], notional[b], costs[b] = order_row(holdings, levels, b, target, fill, bars[row], rules)
        financed, closed, more_notional, more_costs, called = settle_row(
            holdings, levels, b, fill, row, prices, bars, rules, ohlc, fill_shift == 0
        )
        financing[b], exits[b] = financed, closed
        notional[b] += more_notional
        costs[b] += more_costs
        ended[b] = MARGIN_CALL if called else 0
        e = record_row(holdings, peak, b, prices[row + 1], equity, cash, positions, weights, drawdown)
        for i in range(n_assets):
            portfolio[b, i] = clip_bound(weights[b, i])
        portfolio[b, n_assets] = clip_bound(cash[b] / e if e > 0.0 else 0.0)


class MultiAssetEnv(KernelTradingEnv):
    """Continuous multi-asset trading with long and short positions.

    ## Description
    At each bar ``t`` the agent sets a target exposure per asset. With equity
    ``E_t`` each asset gets the base scale ``E_t / N``: target value
    ``V_i = (E_t / N) * a_i``, target shares ``V_i / S_i,t``; the difference to the
    current holding is traded (fractional shares, long and short) through the
    accounting core, paying the frictions of ``costs`` (default: 10 bps commission).
    Orders fill at the close of ``t`` (``execution="close"``) or at the
    open of ``t + 1`` (``execution="next_open"``, needs ``data.open``).

    ## Market rules
    Every rule of :mod:`sb3_trading.sim.frictions` applies, each off by default: fees per order and a
    minimum fee, a half-spread (bps or the data's ``spread``), square-root impact, a participation cap and
    lots (``costs``); interest on cash, margin loans and short borrow fees (``financing``); a leverage cap
    and a margin call (``margin``); stop-loss and take-profit orders (``brackets``). A step runs: targets
    -> lots, participation and leverage cap -> fill -> one bar of financing -> brackets over bar ``t + 1``
    -> mark at its close -> margin call. ``info`` then also holds ``financing`` (net, currency),
    ``unfilled`` (mid notional the caps left unfilled) and ``bracket_exits`` (positions closed), each
    only when its rule is on.
    ``rebalance_band`` is threshold rebalancing: no trade while every action is within the band of the
    exposure held.
    ``dead_zone`` is a minimum position: an action within it of 0 holds none of that asset.

    ## Action Space
    ``Box(-1, 1, (N,), float32)``: ``a_i = 1`` holds ``E_t / N`` long in asset ``i``,
    ``-1`` the same short, ``0`` nothing; with a ``dead_zone`` ``d``, ``|a_i| <= d`` holds nothing and a larger
    action holds ``sign(a_i) (|a_i| - d) / (1 - d)`` of ``E_t / N``. Actions outside ``[-1, 1]`` are clipped;
    a wrong shape or a non-finite value raises ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  ==============  ==============================================
    key            shape           content
    =============  ==============  ==============================================
    ``market``     ``(window, F)``  normalised causal features, rows ``t-window+1..t``
    ``portfolio``  ``(N + 1,)``     position value / equity per asset, cash / equity (clipped to +-10)
    =============  ==============  ==============================================

    With ``window=1`` the flattened observation is ``[features_t, position_value_pct, cash_pct]``.

    ## Rewards
    The portfolio return from ``t`` to ``t + 1`` net of costs: ``E_{t+1} / E_t - 1``,
    with ``E_{t+1}`` marked at the close of ``t + 1``.

    ## Starting State
    All cash (``initial_cash``), no positions, at the first bar whose window is past
    the indicators' warm-up, or at a uniformly drawn bar with ``random_start=True``.

    ## Episode End
    Terminated when equity falls to zero or below (ruin) or on a margin call (the book is liquidated at the
    close where equity fell below the maintenance margin); ``info["terminated_by"]`` says which
    (``"ruin"``, ``"margin_call"``). Truncated after
    ``episode_length`` decisions or at the last bar of the data.
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Arguments
    :param data: the market; ``None`` builds ``make_regime_market(seed=synthetic_seed)``.
    :param initial_cash: starting cash, account currency, in ``(0, 1e15]`` (:data:`~sb3_trading.envs.base.MAX_INITIAL_CASH`).
    :param commission_bps: commission in bps of filled notional, in ``[0, 10000)``; a shortcut for
        ``costs={"commission_bps": ...}`` (changed from 10 together with a ``CostModel`` or preset: ``ValueError``).
    :param slippage_bps: adverse fill price move in bps, in ``[0, 10000)`` (the same shortcut).
    :param costs: a :class:`~sb3_trading.sim.CostModel`, a dict of its fields, or a venue preset
        (``"us_equities"``, ``"crypto_perp"``, ``"fx"``: :data:`~sb3_trading.sim.VENUES`, which also set
        ``financing`` and ``margin`` unless given).
    :param financing: a :class:`~sb3_trading.sim.Financing` or a dict of its fields (``None``: none).
    :param margin: a :class:`~sb3_trading.sim.Margin` or a dict of its fields (``None``: none).
    :param brackets: a :class:`~sb3_trading.sim.Brackets` or a dict of its fields (``None``: none); needs the
        data's open, high and low.
    :param rebalance_band: threshold rebalancing, in action units, in ``[0, 2)``: when every action ``a_i`` is within
        ``rebalance_band`` of the exposure held (``|a_i - N q_i S_i,t / E_t| < band`` for all ``i``, ``a_i`` past the
        ``dead_zone``) the account does not trade that bar and its book drifts with prices; a move past the band
        trades all the way to the target.
        ``0`` (default): trade to the target every bar. A policy whose targets jitter around its book then pays no
        cost for the jitter.
    :param dead_zone: the actions' dead zone, in ``[0, 1)``: an action ``|a_i| <= dead_zone`` holds none of asset
        ``i``, a larger one ``sign(a_i) (|a_i| - d) / (1 - d)`` of the full size ``E_t / N`` (continuous, ``+-1`` still
        the full size). ``0`` (default): none. A policy whose actions on a market with nothing to learn shrink
        towards 0 (README "Learning what is learnable") then holds exactly nothing instead of small positions
        whose costs and noise still make a Sharpe ratio.
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param execution: ``"close"`` (fill at ``S_t``) or ``"next_open"`` (fill at ``O_{t+1}``).
    :param indicators: indicator names (default :data:`sb3_trading.features.DEFAULT_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param feature_fits: fitted indicator state from the training data (``regime_prob``'s HMM), e.g. the training
        env's ``feature_fits``; ``None`` fits it on this env's data (see :class:`~sb3_trading.envs.TradingEnv`).
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        initial_cash: float = 1_000_000.0,
        commission_bps: float = 10.0,
        slippage_bps: float = 0.0,
        window: int = 1,
        episode_length: int | None = None,
        random_start: bool = False,
        execution: str = "close",
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        feature_fits: FeatureFits | None = None,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
        costs: CostModel | str | dict | None = None,
        financing: Financing | dict | None = None,
        margin: Margin | dict | None = None,
        brackets: Brackets | dict | None = None,
        rebalance_band: float = 0.0,
        dead_zone: float = 0.0,
    ) -> None:
        self.rebalance_band = check_real("rebalance_band", rebalance_band, 0.0, 2.0, strict_maximum=True)
        self.dead_zone = check_real("dead_zone", dead_zone, 0.0, 1.0, strict_maximum=True)
        rules = resolve_market_rules(costs, commission_bps, slippage_bps, financing, margin, brackets)
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0))
        super().__init__(
            data=data,
            initial_cash=initial_cash,
            window=window,
            episode_length=episode_length,
            random_start=random_start,
            indicators=indicators,
            normalizer=normalizer,
            feature_fits=feature_fits,
            render_mode=render_mode,
        )
        check_choice("execution", execution, EXECUTIONS)
        if execution == "next_open" and data.open is None:
            raise ValueError('execution="next_open" needs open prices, but data.open is None')
        self.execution = execution
        self.n_assets = data.n_assets
        self._prices = data.prices  # (T, N) closes
        self._fill_prices = data.prices if execution == "close" else data.open  # row t + shift
        self._fill_shift = 0 if execution == "close" else 1
        self.market_rules = rules
        self.costs = rules.costs
        #: the compiled rules (per-bar frictions and scalars) the step kernel reads
        self.frictions = self._market_rules(rules, RULE_FEATURES, fill_shift=self._fill_shift)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.n_assets,), dtype=np.float32)
        self.observation_space = self._observation_space(self.n_assets + 1)
        self._kernel = self.make_kernel(1)

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_regime_market(seed=seed)``: the market built when ``data`` is ``None``."""
        return make_regime_market(seed=seed)

    def make_kernel(self, n_envs: int) -> MultiAssetKernel:
        """The batched dynamics of this env for ``n_envs`` accounts (the env itself runs ``n_envs=1``)."""
        return MultiAssetKernel(self, n_envs)


class MultiAssetKernel(TradingKernel):
    """Batched MultiAsset-v0 dynamics: ``B`` accounts trading the env's ``N`` assets (see :class:`MultiAssetEnv`).

    ``step`` takes ``(B, N)`` actions already clipped to ``[-1, 1]``.
    """

    def __init__(self, env: MultiAssetEnv, n_envs: int) -> None:
        super().__init__(env, n_envs, env._prices, env.costs, env.initial_cash)
        self._fill_prices = env._fill_prices  # (T, N), row t + fill_shift fills the order of t
        self._fill_shift = env._fill_shift
        self._rebalance_band = env.rebalance_band
        self._dead_zone = env.dead_zone
        self.use_market_rules(env.frictions)

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        start = draws["start"]
        self.set_clock(rows, t=start, start=start)
        self.book.reset(self.initial_cash, index=rows)
        self._set_equity(rows, self.initial_cash)
        portfolio = np.zeros((start.shape[0], self.n_assets + 1), dtype=np.float32)
        portfolio[:, -1] = 1.0  # all cash
        return self.reset_rules(rows, self._flat(start, portfolio))

    def step(self, actions: np.ndarray) -> Transition:
        more, extras, ended = self.rule_outputs()
        tr = self.blank(self.n_assets + 1, extras, ended=ended)  # portfolio: the weights, then the cash weight
        multi_asset_step(
            self.book.holdings,
            self.book.peak_equity,
            self.levels,
            self.equity,
            self.t,
            actions,
            self._prices,
            self._fill_prices,
            self._fill_shift,
            self._friction_bars,
            self._friction_rules,
            self._ohlc,
            tr.outputs,
            more,
            self._rebalance_band,
            self._dead_zone,
        )
        return self.advance(tr)
