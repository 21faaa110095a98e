"""``sb3_trading/LeveragedPair-v0``: split capital between a leveraged ETF and its inverse, in whole shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_trading.common.jit import kernel_array, njit
from sb3_trading.common.validation import check_choice, check_int, check_real, is_real
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_leveraged_pair_market
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    FeatureFits,
    KernelTradingEnv,
    NormalizerArg,
    TradingKernel,
    Transition,
    clip_bound,
)
from sb3_trading.envs.kernel import DRAWDOWN_ACTIONS, END_REASONS, MARGIN_CALL, dead_zone_action
from sb3_trading.sim.frictions import (
    BRACKETED,
    LIMITED,
    LOT,
    RULE_FEATURES,
    Brackets,
    CostModel,
    Financing,
    Margin,
    batch_bars,
    resolve_market_rules,
)
from sb3_trading.sim.kernels import (
    GAPS_FILL_AT_OPEN,
    affordable_kernel,
    affordable_row,
    enter_brackets_row,
    limit_row,
    record_row,
    settle_row,
    trade_row,
)

#: indicators computed on the index by default: 1 + 1 + 1 + 3 = 6 columns for one asset
LEVERAGED_PAIR_INDICATORS: tuple[str, ...] = ("log_return", "volatility", "rsi", "macd")
#: accepted ``reward`` values
REWARDS: tuple[str, ...] = ("step_return", "cumulative_pnl")
#: accepted ``initial_split`` strings (a number in the action space's range is accepted as well)
INITIAL_SPLITS: tuple[str, ...] = ("even", "random")
#: accepted ``action_mode`` values: ``"split"`` (the bull fraction, the rest in the bear ETF: always invested) or
#: ``"net"`` (a signed position in ``[-1, 1]``: bull when positive, bear when negative, the rest cash)
ACTION_MODES: tuple[str, ...] = ("split", "net")
#: size of the ``portfolio`` observation vector
PORTFOLIO_SIZE = 5
#: the market rules (:data:`~sb3_trading.sim.frictions.RULE_FEATURES`) LeveragedPair-v0 models: all of them
SUPPORTED_RULES: tuple[str, ...] = RULE_FEATURES


@njit(internal=True)
def whole_share_row(
    action: float, equity: float, prices: np.ndarray, target: np.ndarray, net: bool = False, dead_zone: float = 0.0
) -> None:
    """One account's whole-share targets before affordability, into ``target`` ``(2,)``.

    ``action_mode="split"`` (``net`` false): the bull fraction ``f = action``, ``trunc(E f / S_bull)`` and
    ``trunc((E - E f) / S_bear)``. ``"net"``: the signed position ``n = dead_zone_action(action, dead_zone)``
    (:func:`~sb3_trading.envs.kernel.dead_zone_action`), ``trunc(E max(n, 0) / S_bull)`` and
    ``trunc(E max(-n, 0) / S_bear)``. Rounding toward zero never buys more than the target value; the remainder
    stays cash."""
    if net:
        position = dead_zone_action(action, dead_zone)
        bull = equity * max(position, 0.0)
        bear = equity * max(-position, 0.0)
    else:
        bull = equity * action
        bear = equity - bull
    target[0] = np.trunc(bull / prices[0])
    target[1] = np.trunc(bear / prices[1])


@njit
def whole_share_targets(
    actions: np.ndarray, equity: np.ndarray, prices: np.ndarray, net: bool = False, dead_zone: float = 0.0
) -> np.ndarray:
    """:func:`whole_share_row` of every account.

    :param actions: ``(B,)`` the actions: bull fractions in ``[0, 1]`` (``net`` false) or signed positions in
        ``[-1, 1]`` (``net``, with ``dead_zone``).
    :param equity: ``(B,)`` equity ``E_t``, currency.
    :param prices: ``(B, 2)`` prices ``(bull, bear)`` per share.
    :return: ``(B, 2)`` whole share counts ``(bull, bear)``.
    """
    target = np.empty((actions.shape[0], 2))
    for b in range(actions.shape[0]):
        whole_share_row(actions[b], equity[b], prices[b], target[b], net, dead_zone)
    return target


@njit(internal=True)
def pair_trade_row(
    holdings: np.ndarray,
    b: int,
    action: float,
    equity: float,
    prices: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    net: bool = False,
    dead_zone: float = 0.0,
) -> tuple[float, float, float]:
    """One LeveragedPair trade of row ``b``, in place: whole-share targets (:func:`whole_share_row`), the order limits
    (:func:`~sb3_trading.sim.kernels.limit_row`: lots, participation; the leverage cap never binds, the book does
    not borrow), their buys cut in whole shares (lots) until cash can pay (the core's
    :func:`~sb3_trading.sim.kernels.affordable_row`), filled at ``prices`` ``(2,)``
    (:func:`~sb3_trading.sim.kernels.trade_row`).

    :param bars: ``(N_BAR_FIELDS, 2)`` the fill bar's frictions of ``(bull, bear)``; ``rules`` ``(N_RULES,)``
        (:mod:`sb3_trading.sim.frictions`); ``action``, ``net`` and ``dead_zone`` as in :func:`whole_share_row`.
    :return: ``(notional, costs, unfilled)``: traded notional at mid prices, frictions paid, and the mid notional
        the participation cap left unfilled, currency.
    """
    target = np.empty(2)
    whole_share_row(action, equity, prices, target, net, dead_zone)
    unfilled = limit_row(holdings, b, target, prices, bars, rules) if rules[LIMITED] > 0.0 else 0.0
    affordable_row(holdings, b, target, prices, bars, rules, max(rules[LOT], 1.0))
    notional, costs = trade_row(holdings, b, target, prices, bars, rules)
    return notional, costs, unfilled


@njit
def pair_step(
    holdings: np.ndarray,
    peak: np.ndarray,
    equity_t: np.ndarray,
    t: np.ndarray,
    actions: np.ndarray,
    closes: np.ndarray,
    start: np.ndarray,
    horizon: np.ndarray,
    initial_cash: float,
    bars: np.ndarray,
    rules: np.ndarray,
    levels: np.ndarray,
    ohlc: np.ndarray,
    out: tuple[np.ndarray, ...],
    more: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    net: bool = False,
    dead_zone: float = 0.0,
) -> None:
    """One LeveragedPair step of every account, in place: the trade at the closes of ``t`` (:func:`pair_trade_row`),
    the market rules until the next close (:func:`~sb3_trading.sim.kernels.settle_row`: financing, bracket orders),
    the mark at the closes of ``t + 1`` and the ``portfolio`` block (:func:`pair_portfolio_row`).

    :param holdings: ``(B, 3)`` the books (bull and bear shares, then cash; written); ``peak`` ``(B,)`` (written).
    :param equity_t: ``(B,)`` equity at the close of ``t`` (the targets are sized on it).
    :param t: ``(B,)`` int64 decision bars; ``start`` ``(B,)`` the episodes' first bars; ``horizon`` ``(B,)`` their
        lengths in decisions.
    :param actions: ``(B,)`` bull fractions in ``[0, 1]`` or, with ``net``, signed positions in ``[-1, 1]`` (past
        ``dead_zone``; :func:`whole_share_row`).
    :param closes: ``(T, 2)`` closes ``(bull, bear)``.
    :param bars: ``(T, N_BAR_FIELDS, 2)`` per-bar frictions of ``(bull, bear)``; row ``t`` prices the fill at the
        close of ``t``; ``rules`` ``(N_RULES,)`` (:mod:`sb3_trading.sim.frictions`).
    :param levels: ``(B, 3, 2)`` bracket levels (written); ``ohlc``: ``(T, 3, 2)`` open, high and low for them.
    :param out: the transition's arrays (:attr:`~sb3_trading.envs.kernel.Transition.outputs`), written.
    :param more: ``(financing, unfilled, bracket_exits, ended)`` ``(B,)`` each, written
        (:meth:`~sb3_trading.envs.kernel.TradingKernel.rule_outputs`).
    """
    t_next, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    financing, unfilled, exits, ended = more
    before = np.empty(2)
    bracketed = rules[BRACKETED] > 0.0
    for b in range(t.shape[0]):
        row = t[b]
        before[0], before[1] = holdings[b, 0], holdings[b, 1]
        notional[b], costs[b], unfilled[b] = pair_trade_row(
            holdings, b, actions[b], equity_t[b], closes[row], bars[row], rules, net, dead_zone
        )
        if bracketed:
            enter_brackets_row(levels, b, before, holdings, closes[row], bars[row], rules)
        financed, closed, exit_notional, exit_costs, called = settle_row(
            holdings, levels, b, closes[row], row, closes, bars, rules, ohlc, GAPS_FILL_AT_OPEN
        )
        financing[b], exits[b], ended[b] = financed, closed, MARGIN_CALL if called else 0
        notional[b] += exit_notional
        costs[b] += exit_costs
        t_next[b] = row + 1
        e = record_row(holdings, peak, b, closes[row + 1], equity, cash, positions, weights, drawdown)
        pair_portfolio_row(weights[b], cash[b], e, initial_cash, row + 1 - start[b], horizon[b], portfolio[b])


@njit(internal=True)
def pair_portfolio_row(
    weights: np.ndarray, cash: float, equity: float, initial_cash: float, decisions: int, horizon: int, out: np.ndarray
) -> None:
    """One account's ``portfolio`` observation into ``out`` ``(5,)``, clipped:
    ``[w_bull, w_bear, w_cash, E / E_0 - 1, decisions / horizon]`` (weights 0 when ``E <= 0``)."""
    out[0] = clip_bound(weights[0])
    out[1] = clip_bound(weights[1])
    out[2] = clip_bound(cash / equity if equity > 0.0 else 0.0)
    out[3] = clip_bound(equity / initial_cash - 1.0)
    out[4] = clip_bound(decisions / horizon)


@njit
def pair_open(
    holdings: np.ndarray,
    peak: np.ndarray,
    split: np.ndarray,
    closes: np.ndarray,
    start: np.ndarray,
    horizon: np.ndarray,
    initial_cash: float,
    bars: np.ndarray,
    rules: np.ndarray,
    levels: np.ndarray,
    out: tuple[np.ndarray, ...],
    net: bool = False,
    dead_zone: float = 0.0,
) -> None:
    """Fresh all-cash accounts buy their initial split at the close of their start bar with the step's rule
    (:func:`pair_trade_row`) and are marked there; no decision is made yet (the clock is 0).

    :param holdings: ``(k, 3)`` written: the new books; ``peak`` ``(k,)`` written: their peaks ``max(E_0, E)``.
    :param split: ``(k,)`` initial actions: bull fractions in ``[0, 1]``, or signed positions with ``net``
        (:func:`whole_share_row`).
    :param closes: ``(T, 2)`` closes ``(bull, bear)``; ``start`` ``(k,)`` the start bars; ``horizon`` ``(k,)``.
    :param initial_cash: the starting capital ``E_0`` of every account.
    :param bars: ``(T, N_BAR_FIELDS, 2)`` per-bar frictions (row ``start`` prices the purchase); ``rules``
        ``(N_RULES,)``.
    :param levels: ``(k, 3, 2)`` written: the bracket levels of the purchase (NaN without brackets).
    :param out: the reset transition's arrays (:attr:`~sb3_trading.envs.kernel.Transition.outputs`), written.
    """
    t_out, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    flat = np.zeros(2)
    bracketed = rules[BRACKETED] > 0.0
    for b in range(start.shape[0]):
        holdings[b, 0] = 0.0
        holdings[b, 1] = 0.0
        holdings[b, 2] = initial_cash
        peak[b] = initial_cash
        row = start[b]
        notional[b], costs[b], _ = pair_trade_row(
            holdings, b, split[b], initial_cash, closes[row], bars[row], rules, net, dead_zone
        )
        levels[b, :, :] = np.nan
        if bracketed:
            enter_brackets_row(levels, b, flat, holdings, closes[row], bars[row], rules)
        t_out[b] = row
        e = record_row(holdings, peak, b, closes[row], equity, cash, positions, weights, drawdown)
        pair_portfolio_row(weights[b], cash[b], e, initial_cash, row - start[b], horizon[b], portfolio[b])  # 0 decisions


def leveraged_pair_targets(
    fractions: np.ndarray,
    equity: np.ndarray,
    cash: np.ndarray,
    positions: np.ndarray,
    prices: np.ndarray,
    costs: CostModel,
    action_mode: str = "split",
    dead_zone: float = 0.0,
) -> np.ndarray:
    """LeveragedPair action -> affordable whole-share targets ``(bull, bear)``, batched. Pure function.

    1. Target values ``V = E_t * (f, 1 - f)`` (``action_mode="split"``; ``"net"``: ``E_t * (max(n, 0), max(-n, 0))``
       with ``n`` the action past the ``dead_zone``, :func:`whole_share_row`); target shares ``floor(V / S_t)`` (whole shares,
       rounded toward zero: :func:`whole_share_targets`); the rounding remainder stays cash.
    2. Affordability, the core's rule (:meth:`~sb3_trading.sim.Portfolio.affordable` with ``lot_size=1``,
       :func:`~sb3_trading.sim.kernels.affordable_kernel`): if the trade from ``positions`` to those targets
       would leave negative cash ``C' = C - q . S - costs < 0`` (frictions on top of whole shares that use
       almost all the equity), the *buys* are cut by whole shares in proportion to the shares bought:
       ``k_i = ceil(D * b_i / sum_j b_j u_j)`` with shortfall ``D = -C'``, shares bought ``b_i`` and cash
       per bought share ``u_i = S_i (1 + a) (1 + commission)`` (``a``: half-spread plus slippage). The cut
       frees ``sum_i k_i u_i >= D``, so cash stays ``>= 0``, and ``k_i <= b_i`` (a buy never turns into a
       sell). With a fixed or minimum fee per order the cut is repeated on the new shortfall (a row still
       short keeps only its sells). Sells are never changed.

    :param fractions: ``(B,)`` the actions: fraction of equity in the bull ETF, in ``[0, 1]`` (``"split"``), or
        signed positions in ``[-1, 1]`` (``"net"``).
    :param equity: ``(B,)`` equity ``E_t`` marked at ``prices``.
    :param cash: ``(B,)`` cash before the trade, ``>= 0``.
    :param positions: ``(B, 2)`` current whole-share holdings ``(bull, bear)``, ``>= 0``.
    :param prices: ``(B, 2)`` prices ``S_t`` ``(bull, bear)`` at which the trade fills.
    :param costs: the friction model of the book that will execute the trade; its frictions must not need the
        data (:attr:`~sb3_trading.sim.CostModel.is_constant`: no impact, spread column or participation cap),
        since no bar is given here.
    :param action_mode: one of :data:`ACTION_MODES`; ``dead_zone`` in ``[0, 1)`` (``"net"`` only).
    :return: ``(B, 2)`` whole-share targets, ``>= 0``.
    :raises ValueError: for a ``costs`` that needs the market data, or a bad ``action_mode``/``dead_zone``.
    """
    net, dead_zone = _action_rule(action_mode, dead_zone)
    if not costs.is_constant:
        raise ValueError(
            f"leveraged_pair_targets prices every row with the same frictions, but {costs} needs the market data "
            "(impact, a spread column or a participation cap); trade through LeveragedPairEnv, which prices each bar"
        )
    prices = np.asarray(prices, dtype=np.float64)
    holdings = np.column_stack((np.asarray(positions, dtype=np.float64), np.asarray(cash, dtype=np.float64)))
    target = whole_share_targets(
        np.asarray(fractions, dtype=np.float64), np.asarray(equity, dtype=np.float64), prices, net, dead_zone
    )
    bars = batch_bars(costs.constant_bars(2), target.shape[0])
    return affordable_kernel(holdings, target, prices, bars, kernel_array(costs.rules()), 1.0)


def _action_rule(action_mode: str, dead_zone: float) -> tuple[bool, float]:
    """``(net, dead_zone)`` of an ``action_mode`` and ``dead_zone`` (checked: a dead zone needs ``"net"``)."""
    check_choice("action_mode", action_mode, ACTION_MODES)
    dead_zone = check_real("dead_zone", dead_zone, 0.0, 1.0, strict_maximum=True)
    if dead_zone > 0.0 and action_mode != "net":
        raise ValueError(
            f"dead_zone={dead_zone} needs action_mode='net' (a split is always fully invested, so it has no flat "
            "action for a dead zone to keep); pass action_mode='net' or dead_zone=0"
        )
    return action_mode == "net", float(dead_zone)


def check_whole_lots(costs: CostModel) -> None:
    """Refuse a ``lot_size`` that is not a whole number of shares (the pair envs trade whole shares).

    :raises ValueError: naming ``lot_size``.
    """
    lot = costs.lot_size
    if lot is not None and (lot < 1.0 or lot != float(int(lot))):
        raise ValueError(f"lot_size={lot} must be a whole number of shares >= 1: this env trades whole shares")


class LeveragedPairEnv(KernelTradingEnv):
    """Split capital between a leveraged ETF (bull) and its inverse ETF (bear), in whole shares.

    ## Description
    The market holds an index and two ETFs derived from it (see
    :func:`sb3_trading.data.derive_leveraged_pair`): a daily-rebalanced ``+L`` ETF
    (``bull``) and its ``-L`` inverse (``bear``). The agent sees the index only and
    decides, at the close of each bar ``t``, which fraction of its equity ``E_t`` to hold
    in the bull ETF; the rest goes to the bear ETF (``action_mode="net"``: which signed fraction to hold in
    one of them, the rest in cash; see Action Space). Targets are whole shares
    ``floor(a E_t / S^bull_t)`` and ``floor((1 - a) E_t / S^bear_t)``; the remainder stays
    cash (no interest). The trade fills at the close of ``t`` through the accounting core,
    paying the frictions of ``costs`` (default: 10 bps commission). If the frictions would
    make cash negative, the buys are reduced by whole shares (see
    :func:`leveraged_pair_targets`), so cash never goes below zero and there is no leverage
    beyond the ETFs' own.

    ## Market rules
    Every rule of :mod:`sb3_trading.sim.frictions` applies, each priced with the frictions of its
    decision bar: ``costs`` (fees per order, a minimum fee, a half-spread in bps or from the data's
    ``spread``, square-root impact, a participation cap, round lots of ``lot_size`` whole shares),
    ``financing`` (interest on the cash; the book never borrows or shorts, so loan rates and borrow
    fees never apply), ``margin`` (never binds for the same reason: gross exposure stays below
    equity) and ``brackets`` (stop-loss and take-profit per ETF, checked over the next bar; an exit
    leaves cash until the next decision). The venue presets (``costs="us_equities"``...) apply as
    they are. ``info`` adds ``financing``, ``unfilled`` and ``bracket_exits`` when their rule is on.

    ## Action Space
    ``action_mode="split"`` (default, seed 001): ``Box(0, 1, (1,), float32)``, the fraction ``a`` of equity in the
    bull ETF, ``1 - a`` in the bear ETF (always invested). ``action_mode="net"``: ``Box(-1, 1, (1,), float32)``, a
    signed position: ``a > 0`` holds ``a`` of equity in the bull ETF, ``a < 0`` holds ``|a|`` in the bear ETF, the
    rest stays cash; with a ``dead_zone`` ``d``, ``|a| <= d`` holds nothing and a larger action
    ``sign(a) (|a| - d) / (1 - d)`` (``+-1`` stay all in), so the near-zero actions of an untrained policy hold
    cash -- the flat start the main job's validation gate needs (README "Why raw advantages looked flat, and the
    validation gate"). Actions outside the box are clipped; a wrong shape or a non-finite value raises
    ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  ===============  ==============================================================
    key            shape            content
    =============  ===============  ==============================================================
    ``market``     ``(window, F)``  rows ``t-window+1..t`` of the index's causal indicators
                                    (default :data:`LEVERAGED_PAIR_INDICATORS`: log return,
                                    volatility, RSI, MACD line/signal/histogram = 6 columns) followed
                                    by the data's own ``features`` (``signal[index]`` on the synthetic
                                    market), so ``F = 6 + data.n_features``; z-scored by the normaliser
    ``portfolio``  ``(5,)``         ``[w_bull, w_bear, w_cash, E_t / E_0 - 1, d / D]``: position values
                                    and cash as fractions of equity, the episode's P&L against the
                                    starting capital ``E_0 = initial_cash``, and the decisions made
                                    ``d`` over the horizon ``D`` (``max_days``, or the bars left to the
                                    end of the data from the episode start when ``max_days`` is None);
                                    clipped to +-10
    =============  ===============  ==============================================================

    Only the index drives the ``market`` block (``feature_assets=[index_asset]``); the ETF
    prices enter the observation through the portfolio weights.

    ## Rewards
    ``reward="step_return"`` (default): the portfolio return from ``t`` to ``t + 1`` net of
    costs, ``E_{t+1} / E_t - 1``. ``reward="cumulative_pnl"``: the cumulative P&L reward of
    the source notebook, ``E_{t+1} / E_0 - 1`` with ``E_0 = initial_cash`` (it rewards the
    level reached at every step, not the change). ``info["portfolio_return"]`` is always the
    step return.

    ## Starting State
    At bar ``t_0`` (uniformly drawn with ``random_start=True``, else the first bar past the
    indicators' warm-up) the account holds ``initial_cash`` and buys the initial split
    ``a_0`` (``"even"``: 0.5, or 0 -- all cash -- with ``action_mode="net"``; ``"random"``: uniform over the
    action space from ``self.np_random``; or a given number) with the same whole-share and affordability rule,
    at the close of ``t_0``, paying the frictions of ``costs``. The reset ``info`` reports that purchase: ``costs``,
    ``turnover`` (notional / ``initial_cash``) and ``portfolio_return = E_{t_0} / E_0 - 1``
    (minus the costs). The first ``step`` decides at the same close ``t_0`` and trades from
    these holdings.

    ## Episode End
    On the step where equity reaches the stop-loss, ``E_{t+1} <= (1 + stop_loss) E_0`` (default
    ``stop_loss=-0.05``: 5 % below the starting capital, a drawdown from ``E_0``): terminated
    (``drawdown_action="terminate"``, default; ``info["terminated_by"] = "stop_loss"``) or truncated
    (``"truncate"``: SB3 bootstraps the value of the last observation). Truncated after ``max_days``
    decisions or at the last bar of the data. Terminated on a margin call and on ruin (``E <= 0``).
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Arguments
    All are fixed at construction (the attributes of the same names are for reading).

    :param data: ``MarketData`` with the index and both ETFs; ``None`` builds
        ``make_leveraged_pair_market(seed=synthetic_seed)``.
    :param initial_cash: starting capital ``E_0``, account currency, in ``(0, 1e15]``
        (:data:`~sb3_trading.envs.trading_env.MAX_INITIAL_CASH`: whole share counts stay exact).
    :param commission_bps: commission in bps of filled notional, in ``[0, 10000)``; a shortcut for
        ``costs={"commission_bps": ...}`` (changed from 10 together with a ``CostModel`` or preset: ``ValueError``).
    :param slippage_bps: adverse fill price move in bps, in ``[0, 10000)`` (the same shortcut).
    :param window: bars in the ``market`` observation.
    :param max_days: decisions per episode (``None``: to the end of the data).
    :param stop_loss: episode P&L in ``(-1, 0)`` at or below which the episode ends
        (``None`` disables the stop-loss).
    :param drawdown_action: ``"terminate"`` or ``"truncate"``: what reaching ``stop_loss`` does (Episode End);
        the same argument as YieldAllocation-v0's.
    :param reward: ``"step_return"`` or ``"cumulative_pnl"``.
    :param initial_split: the action bought at reset: ``"even"`` (0.5; ``"net"``: 0, all cash), ``"random"`` or a
        number in the action space's range (``[0, 1]``; ``"net"``: ``[-1, 1]``).
    :param action_mode: ``"split"`` (default) or ``"net"`` (see Action Space).
    :param dead_zone: the ``"net"`` action's dead zone, in ``[0, 1)`` (see Action Space); ``0`` (default): none.
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param index_asset: name of the index column in ``data``.
    :param bull_asset: name of the leveraged ETF column.
    :param bear_asset: name of the inverse ETF column.
    :param indicators: indicator names computed on the index (default :data:`LEVERAGED_PAIR_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param feature_fits: fitted indicator state from the training data (``regime_prob``'s HMM), e.g. the training
        env's ``feature_fits``; ``None`` fits it on this env's data (see :class:`~sb3_trading.envs.TradingEnv`).
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    :param costs: a :class:`~sb3_trading.sim.CostModel`, a dict of its fields or a venue preset name (``None``:
        ``CostModel(commission_bps, slippage_bps)``; see *Market rules*). ``env.costs`` is the resolved model.
    :param financing: a :class:`~sb3_trading.sim.Financing` or a dict of its fields (``None``: none).
    :param margin: a :class:`~sb3_trading.sim.Margin` or a dict of its fields (``None``: none).
    :param brackets: a :class:`~sb3_trading.sim.Brackets` or a dict of its fields (``None``: none); needs the
        data's open, high and low of the pair.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        initial_cash: float = 100_000.0,
        commission_bps: float = 10.0,
        slippage_bps: float = 0.0,
        window: int = 10,
        max_days: int | None = 30,
        stop_loss: float | None = -0.05,
        drawdown_action: str = "terminate",
        reward: str = "step_return",
        initial_split: str | float = "even",
        action_mode: str = "split",
        dead_zone: float = 0.0,
        random_start: bool = True,
        index_asset: str = "index",
        bull_asset: str = "bull",
        bear_asset: str = "bear",
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        feature_fits: FeatureFits | None = None,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
        costs: CostModel | str | dict | None = None,
        financing: Financing | dict | None = None,
        margin: Margin | dict | None = None,
        brackets: Brackets | dict | None = None,
    ) -> None:
        rules = resolve_market_rules(costs, commission_bps, slippage_bps, financing, margin, brackets)
        check_whole_lots(rules.costs)
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0))
        names = {"index_asset": index_asset, "bull_asset": bull_asset, "bear_asset": bear_asset}
        if len(set(names.values())) != 3:
            raise ValueError(f"index_asset, bull_asset and bear_asset must be three different assets, got {names}")
        if isinstance(data, MarketData):
            for arg, name in names.items():
                if name not in data.asset_names:
                    raise ValueError(f"{arg}={name!r} is not an asset of the data; its assets are {list(data.asset_names)}")
        max_days = check_int("max_days", max_days, 1, allow_none=True)
        stop_loss = check_real("stop_loss", stop_loss, -1.0, 0.0, strict_minimum=True, strict_maximum=True, allow_none=True)
        check_choice("reward", reward, REWARDS)
        net, dead_zone = _action_rule(action_mode, dead_zone)
        low = -1.0 if net else 0.0
        if isinstance(initial_split, str):
            ok = initial_split in INITIAL_SPLITS
        else:
            ok = is_real(initial_split) and low <= initial_split <= 1.0  # type: ignore[operator]
        if not ok:
            raise ValueError(
                f"initial_split must be one of {INITIAL_SPLITS} or a number in [{low:g}, 1] "
                f"(action_mode={action_mode!r}), got {initial_split!r}"
            )
        indicators = LEVERAGED_PAIR_INDICATORS if indicators is None else indicators
        super().__init__(
            data=data,
            initial_cash=initial_cash,
            window=window,
            episode_length=None,
            random_start=random_start,
            indicators=indicators,
            normalizer=normalizer,
            feature_fits=feature_fits,
            render_mode=render_mode,
            feature_assets=[index_asset],
        )
        self.episode_length = self._check_episode_length("max_days", max_days)
        self.max_days = self.episode_length
        self.stop_loss = stop_loss
        self.drawdown_action = check_choice("drawdown_action", drawdown_action, DRAWDOWN_ACTIONS)
        self.reward_mode = reward
        self.initial_split = initial_split if isinstance(initial_split, str) else float(initial_split)
        self.action_mode, self.dead_zone = action_mode, dead_zone
        self.index_asset, self.bull_asset, self.bear_asset = index_asset, bull_asset, bear_asset
        self.n_assets = 2  # the traded pair; info positions/weights are (bull, bear)
        self.traded_assets = (bull_asset, bear_asset)
        columns = [data.asset_names.index(bull_asset), data.asset_names.index(bear_asset)]
        self.market_rules = rules
        self.costs = rules.costs
        #: the compiled rules of the pair (``bars`` ``(T, F, 2)``, columns ``(bull, bear)``) the kernels read
        self.frictions = self._market_rules(rules, SUPPORTED_RULES, traded=columns)
        self._prices = kernel_array(data.prices[:, columns])  # (T, 2) closes of (bull, bear)
        # equity at or below this level terminates the episode
        self._stop_level = -np.inf if self.stop_loss is None else (1.0 + self.stop_loss) * self.initial_cash

        self.action_space = spaces.Box(low, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = self._observation_space(PORTFOLIO_SIZE)
        self._kernel = self.make_kernel(1)

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_leveraged_pair_market(seed=seed)``: the market built when ``data`` is ``None``."""
        return make_leveraged_pair_market(seed=seed)

    def make_kernel(self, n_envs: int) -> LeveragedPairKernel:
        """The batched dynamics of this env for ``n_envs`` accounts (the env itself runs ``n_envs=1``)."""
        return LeveragedPairKernel(self, n_envs)


class LeveragedPairKernel(TradingKernel):
    """Batched LeveragedPair-v0 dynamics: ``B`` accounts splitting equity between the bull and bear ETF
    (see :class:`LeveragedPairEnv`). ``step`` takes ``(B, 1)`` actions already clipped to the action space: bull
    fractions (``action_mode="split"``) or signed positions (``"net"``).

    The per-step work is compiled: :func:`pair_step` (targets, affordability, fills, mark, observation) and
    :func:`pair_open` (the reset's initial split).

    Extra state: :attr:`horizon` ``(B,)``, the decisions an episode may last (the observation's clock).
    """

    def __init__(self, env: LeveragedPairEnv, n_envs: int) -> None:
        super().__init__(env, n_envs, env._prices, env.costs, env.initial_cash)
        self.costs = env.costs
        self.use_market_rules(env.frictions)
        self.initial_split = env.initial_split
        self._net, self._dead_zone = env.action_mode == "net", env.dead_zone
        #: the ``info`` key of the action: the bull fraction of a split, the signed target of a net position
        self._action_key = "net_target" if self._net else "bull_fraction"
        self.reward_mode = env.reward_mode
        self._stop_level = env._stop_level
        self._terminate_on_stop = env.drawdown_action == "terminate"
        self._horizons(self.start_t)

    def _fixed_split(self) -> float:
        if self.initial_split == "even":
            return 0.0 if self._net else 0.5
        return float(self.initial_split)

    def _horizons(self, start: np.ndarray) -> None:
        if self.episode_length is not None:
            self.horizon = np.full_like(start, self.episode_length)
        else:
            self.horizon = self.path_last_t[start] - start

    def set_clock(self, rows: np.ndarray, t: np.ndarray | int | None = None, start: np.ndarray | int | None = None) -> None:
        super().set_clock(rows, t, start)
        if start is not None:
            self._horizons(self.start_t)

    def draw(self, rngs: Sequence[np.random.Generator]) -> dict[str, np.ndarray]:
        """Per reset: the start bar, then the initial action (uniform over the action space with
        ``initial_split="random"``)."""
        starts = self.draw_starts(rngs)  # each generator draws its start before its split
        if self.initial_split == "random":
            low = -1.0 if self._net else 0.0
            splits = np.array([rng.uniform(low, 1.0) for rng in rngs])
        else:
            splits = np.full(len(rngs), self._fixed_split())
        return {"start": starts, "split": splits}

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        """Fresh accounts buy the drawn split at the close of the start bar, in whole shares, paying costs
        (the same rule as every step, from all cash: :func:`pair_open`)."""
        start, split = draws["start"], draws["split"]
        self.set_clock(rows, t=start, start=start)
        k = start.shape[0]
        holdings, peak, levels = np.empty((k, 3)), np.empty(k), np.empty((k, 3, 2))
        tr = self.blank(PORTFOLIO_SIZE, {self._action_key: split}, n_rows=k)._replace(equity_t=np.full(k, self.initial_cash))
        pair_open(
            holdings,
            peak,
            split,
            self._prices,
            start,
            self.horizon[rows],
            self.initial_cash,
            self._friction_bars,
            self._friction_rules,
            levels,
            tr.outputs,
            self._net,
            self._dead_zone,
        )
        return self.commit_opening(rows, holdings, peak, levels, tr)

    def step(self, actions: np.ndarray) -> Transition:
        fraction = actions[:, 0]
        more, extras, ended = self.rule_outputs()
        tr = self.blank(PORTFOLIO_SIZE, {self._action_key: fraction, **extras}, ended=ended)
        pair_step(
            self.book.holdings,
            self.book.peak_equity,
            self.equity,
            self.t,
            fraction,
            self._prices,
            self.start_t,
            self.horizon,
            self.initial_cash,
            self._friction_bars,
            self._friction_rules,
            self.levels,
            self._ohlc,
            tr.outputs,
            more,
            self._net,
            self._dead_zone,
        )
        return self.advance(tr)

    def end_reason(self, ended: int, equity: float) -> str:
        """LeveragedPair episodes end at the stop-loss level (``"stop_loss"``), or on a margin call."""
        return END_REASONS[ended] if ended > 0 else "stop_loss"

    def outcome(
        self, equity: Any, equity_t: Any, notional: Any, t: Any, end_t: Any, reward: Any = None, ended: Any = None
    ) -> tuple[Any, Any, Any, Any, Any]:
        """The step return (or ``E / E_0 - 1`` with ``reward="cumulative_pnl"``); the stop-loss level terminates or
        truncates (``drawdown_action``)."""
        portfolio_return = equity / equity_t - 1.0
        reward = portfolio_return if self.reward_mode == "step_return" else equity / self.initial_cash - 1.0
        stopped = equity <= self._stop_level
        terminated = (stopped if self._terminate_on_stop else False) | (equity <= 0.0)
        if ended is not None:
            terminated = terminated | (ended > 0)
        return reward, portfolio_return, terminated, ((t >= end_t) | stopped) > terminated, notional / equity_t
