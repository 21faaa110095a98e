"""``sb3_trading/MaskedTrading-v0``: discrete trading of a bull/bear leveraged ETF pair with action masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_trading.common.jit import kernel_array, njit
from sb3_trading.common.validation import check_bool, check_int, check_real
from sb3_trading.data import MarketData, make_leveraged_pair_market
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    FeatureFits,
    KernelTradingEnv,
    NormalizerArg,
    clip_bound,
)
from sb3_trading.envs.kernel import MARGIN_CALL
from sb3_trading.envs.mask_rules import (
    CASH,
    CONCENTRATION,
    DAILY_LOSS,
    DRAWDOWN,
    HOLD,
    LIMIT_TOL,
    MASKED_MARKET_RULES,
    NO_EQUITY,
    NOTHING_TO_FLATTEN,
    POSITION_LIMIT,
    SESSION,
    BarRules,
    MaskedActions,
    MaskedKernel,
    check_fraction,
    check_sizes,
    warn_unreachable_sizes,
)
from sb3_trading.sim.frictions import (
    BRACKETED,
    Brackets,
    CostModel,
    Financing,
    Margin,
    resolve_market_rules,
)
from sb3_trading.sim.kernels import GAPS_FILL_AT_OPEN, enter_brackets_row, order_cost, record_row, settle_row, trade_row

#: indicators computed on the index by default (ATR and the volume z-score need ``high``/``low``/``volume``)
MASKED_INDICATORS: tuple[str, ...] = ("log_return", "rsi", "macd", "bollinger", "atr", "volume_zscore")
#: names of the ``portfolio`` observation entries, in order
PORTFOLIO_FIELDS: tuple[str, ...] = ("bull_weight", "bear_weight", "cash_weight", "drawdown", "growth")
_PORTFOLIO_SIZE = len(PORTFOLIO_FIELDS)
#: the columns of the two legs, as NumPy ints: a Python constant passed from one kernel to another compiles the
#: callee once more (for ``Literal[int](0)``), so the kernels index the legs with these
BULL, BEAR = np.int64(0), np.int64(1)
#: the market rules this env models (shared by the discrete masked envs, see mask_rules)
SUPPORTED_RULES: tuple[str, ...] = MASKED_MARKET_RULES


@njit(internal=True)
def masked_codes_row(
    holdings: np.ndarray,
    b: int,
    prices: np.ndarray,
    peak: float,
    day_open: float,
    session_ok: bool,
    buy_block: np.ndarray,
    sizes: np.ndarray,
    switch_sides: bool,
    caps: np.ndarray,
    max_concentration: float,
    drawdown_floor: float,
    loss_floor: float,
    bars: np.ndarray,
    rules: np.ndarray,
    codes: np.ndarray,
) -> float:
    """Why each action of account ``b`` is masked at the closes ``prices`` ``(2,)`` of its bar: ``codes``
    ``(2k + 2,)`` int8 written with the :data:`MASK_RULES` code of the first rule that masks it (0: legal).

    Actions: ``0`` hold, ``1 .. k`` buy bull ``sizes[i - 1]``, ``k + 1 .. 2k`` buy bear ``sizes[i - k - 1]``,
    ``2k + 1`` flatten. With ``V = (V_bull, V_bear)`` and cash ``C`` marked at ``prices``,
    ``E = V_bull + V_bear + C``, ``cost(q)`` the frictions of an order of ``q`` shares
    (:func:`~sb3_trading.sim.kernels.order_cost`, exactly what the fill pays: half-spread, slippage and impact,
    the commission with its minimum, the fixed fee) and slack ``tol = LIMIT_TOL * E``, in this order:

    * hold is always legal; outside the session (``session_ok`` False) nothing else is (``session``);
    * flatten is legal when some position value is non-zero (``nothing_to_flatten``) and the sales leave cash
      ``C + sum_X (V_X - cost(-h_X)) >= -tol`` (``cash``: binds only when fees per order exceed what is left);
    * every buy needs ``E > 0`` (``no_equity``), ``E >= drawdown_floor * peak`` (``drawdown``) and
      ``E >= loss_floor * day_open`` (``daily_loss``); then a buy of ETF ``X`` is masked by the bar's rule
      ``buy_block[X]`` (``volatility``, ``regime_*``; 0: none);
    * then a buy of ``f E`` in ``X`` needs cash ``C + (V_Y - cost(-h_Y)) - f E - cost(f E / S_X) >= -tol`` (the
      other side ``Y`` is sold only when ``switch_sides``; ``cash``), gross exposure ``V_X + V_other_kept + f E <=
      caps[X] E + tol`` (``position_limit``) and ``V_X + f E <= max_concentration E + tol`` (``concentration``).

    :param holdings: ``(B, 3)`` the books (bull and bear shares, then cash).
    :param peak: the account's peak equity since its reset; ``day_open`` its equity at the last close of the
        previous trading day (at the reset within the reset's day).
    :param buy_block: ``(2,)`` int8 the bar's rule code blocking buys of ``(bull, bear)`` (0: open).
    :param sizes: ``(k,)`` buy sizes as fractions of equity.
    :param switch_sides: a buy first sells the whole position in the other ETF.
    :param caps: ``(2,)`` gross exposure limit of a buy of ``(bull, bear)`` at this bar, fraction of equity.
    :param max_concentration: single-ETF exposure limit, fraction of equity.
    :param drawdown_floor: ``1 - max_drawdown`` (``0.0`` without the rule); ``loss_floor``: ``1 -
        daily_loss_limit`` (``0.0`` without the rule).
    :param bars: ``(N_BAR_FIELDS, 2)`` the bar's frictions of ``(bull, bear)``; ``rules`` ``(N_RULES,)``
        (:mod:`sb3_trading.sim.frictions`).
    :return: the equity ``E``.
    """
    n_sizes = sizes.shape[0]
    flatten = 2 * n_sizes + 1
    v_bull, v_bear, cash = holdings[b, 0] * prices[0], holdings[b, 1] * prices[1], holdings[b, 2]
    e = v_bull + v_bear + cash
    codes[:] = 0
    if not session_ok:
        codes[1:] = SESSION  # outside the session only hold is legal
        return e
    if v_bull == 0.0 and v_bear == 0.0:
        codes[flatten] = NOTHING_TO_FLATTEN
    account = 0
    if not e > 0.0:
        account = NO_EQUITY
    elif e < drawdown_floor * peak:
        account = DRAWDOWN
    elif e < loss_floor * day_open:
        account = DAILY_LOSS
    slack = LIMIT_TOL * e
    # what selling each whole position brings in, net of its order's frictions (the fill's own order_cost)
    net_bull = v_bull - order_cost(-holdings[b, 0], prices[0], bars, BULL, rules)
    net_bear = v_bear - order_cost(-holdings[b, 1], prices[1], bars, BEAR, rules)
    if codes[flatten] == 0 and cash + net_bull + net_bear < -slack:
        codes[flatten] = CASH  # fees per order larger than what is left: flattening would leave negative cash
    for side in range(2):
        block = account if account != 0 else buy_block[side]
        held, other = (v_bull, v_bear) if side == 0 else (v_bear, v_bull)
        proceeds = (net_bear if side == 0 else net_bull) if switch_sides else 0.0
        kept = 0.0 if switch_sides else other
        for j in range(n_sizes):
            action = 1 + side * n_sizes + j
            if block != 0:
                codes[action] = block
                continue
            bought = sizes[j] * e
            spend = bought + order_cost(bought / prices[side], prices[side], bars, side, rules)
            if cash + proceeds - spend < -slack:
                codes[action] = CASH
            elif held + kept + bought > caps[side] * e + slack:
                codes[action] = POSITION_LIMIT
            elif held + bought > max_concentration * e + slack:
                codes[action] = CONCENTRATION
    return e


@njit
def masked_codes_kernel(
    holdings: np.ndarray,
    closes: np.ndarray,
    peak: np.ndarray,
    day_open: np.ndarray,
    t: np.ndarray,
    session_ok: np.ndarray,
    buy_block: np.ndarray,
    sizes: np.ndarray,
    switch_sides: bool,
    caps: np.ndarray,
    max_concentration: float,
    drawdown_floor: float,
    loss_floor: float,
    day: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
) -> np.ndarray:
    """:func:`masked_codes_row` of every account at its bar ``t`` ``(B,)``: ``(B, 2k + 2)`` int8 rule codes.

    :param closes: ``(T, 2)`` closes; ``session_ok`` ``(T,)`` bool, ``buy_block`` ``(T, 2)`` int8 and ``caps``
        ``(T, 2)`` per bar; ``day`` ``(T,)`` int64 trading-day number (read by :func:`masked_step`); ``bars``
        ``(T, N_BAR_FIELDS, 2)`` per-bar frictions (row ``t`` prices the fill at the close of ``t``); the rest as
        the row's.
    """
    codes = np.empty((holdings.shape[0], 2 * sizes.shape[0] + 2), dtype=np.int8)
    for b in range(holdings.shape[0]):
        row = t[b]
        masked_codes_row(
            holdings,
            b,
            closes[row],
            peak[b],
            day_open[b],
            session_ok[row],
            buy_block[row],
            sizes,
            switch_sides,
            caps[row],
            max_concentration,
            drawdown_floor,
            loss_floor,
            bars[row],
            rules,
            codes[b],
        )
    return codes


@njit(internal=True)
def masked_target_row(
    positions: np.ndarray,
    prices: np.ndarray,
    equity: float,
    action: int,
    sizes: np.ndarray,
    switch_sides: bool,
    out: np.ndarray,
) -> None:
    """Share targets ``(2,)`` of executing ``action`` from ``positions`` ``(2,)`` at ``prices`` ``(2,)``, into ``out``.

    Hold keeps every share; a buy of size ``f`` adds ``f E / S_X`` shares of ETF ``X`` (and sells all of the other
    ETF with ``switch_sides``); flatten targets zero shares.
    """
    n_sizes = sizes.shape[0]
    out[0], out[1] = positions[0], positions[1]
    if action == 2 * n_sizes + 1:  # flatten
        out[0], out[1] = 0.0, 0.0
    elif action != HOLD:
        side = (action - 1) // n_sizes
        if switch_sides:
            out[1 - side] = 0.0
        out[side] = positions[side] + sizes[(action - 1) % n_sizes] * equity / prices[side]


@njit
def masked_step(
    holdings: np.ndarray,
    peak: np.ndarray,
    day_open: np.ndarray,
    initial_equity: np.ndarray,
    t: np.ndarray,
    actions: np.ndarray,
    closes: np.ndarray,
    session_ok: np.ndarray,
    buy_block: np.ndarray,
    sizes: np.ndarray,
    switch_sides: bool,
    caps: np.ndarray,
    max_concentration: float,
    drawdown_floor: float,
    loss_floor: float,
    day: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    n_invalid: np.ndarray,
    levels: np.ndarray,
    ohlc: np.ndarray,
    out: tuple[np.ndarray, ...],
    more: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    invalid: np.ndarray,
    n_invalid_out: np.ndarray,
    reasons: np.ndarray,
) -> None:
    """One MaskedTrading step of every account, in place: a masked action is not executed (it holds).

    The mask is :func:`masked_codes_row` at the closes of ``t`` (its codes go to ``reasons`` ``(B, 2k + 2)``),
    the targets :func:`masked_target_row` on the mask's equity, the fill :func:`~sb3_trading.sim.kernels.trade_row`
    there (a holding account trades nothing and pays nothing); when ``t + 1`` starts a new trading day
    (``day``) the equity after that fill becomes the account's ``day_open`` (written); the market rules until
    the next close (:func:`~sb3_trading.sim.kernels.settle_row`: financing, bracket orders, margin call); then
    the mark at the closes of ``t + 1`` and the clipped ``portfolio`` block
    ``[w_bull, w_bear, w_cash, drawdown, E / E_0 - 1]``.

    :param initial_equity: ``(B,)`` equity ``E_0`` at each account's reset; ``n_invalid`` ``(B,)`` the masked
        actions counted so far.
    :param actions: ``(B,)`` int64 actions in range; the rule arguments are :func:`masked_codes_kernel`'s.
    :param levels: ``(B, 3, 2)`` bracket levels (written); ``ohlc``: ``(T, 3, 2)`` open, high and low for them.
    :param out: the transition's arrays (:attr:`~sb3_trading.envs.kernel.Transition.outputs`), written.
    :param more: ``(financing, unfilled, bracket_exits, ended)`` ``(B,)`` each, written
        (:meth:`~sb3_trading.envs.kernel.TradingKernel.rule_outputs`).
    :param invalid: ``(B,)`` bool out: the action was masked; ``n_invalid_out`` ``(B,)`` out: the new counts.
    """
    t_next, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    financing, unfilled, exits, ended = more
    target = np.empty(2)
    before = np.empty(2)
    bracketed = rules[BRACKETED] > 0.0
    for b in range(t.shape[0]):
        row = t[b]
        prices = closes[row]
        bar = bars[row]
        codes = reasons[b]
        e = masked_codes_row(
            holdings,
            b,
            prices,
            peak[b],
            day_open[b],
            session_ok[row],
            buy_block[row],
            sizes,
            switch_sides,
            caps[row],
            max_concentration,
            drawdown_floor,
            loss_floor,
            bar,
            rules,
            codes,
        )
        invalid[b] = codes[actions[b]] != 0
        n_invalid_out[b] = n_invalid[b] + invalid[b]
        masked_target_row(holdings[b, :2], prices, e, HOLD if invalid[b] else actions[b], sizes, switch_sides, target)
        before[0], before[1] = holdings[b, 0], holdings[b, 1]
        notional[b], costs[b] = trade_row(holdings, b, target, prices, bar, rules)
        if day[row + 1] != day[row]:
            day_open[b] = holdings[b, 0] * prices[0] + holdings[b, 1] * prices[1] + holdings[b, 2]
        if bracketed:
            enter_brackets_row(levels, b, before, holdings, prices, bar, rules)
        financed, closed, exit_notional, exit_costs, called = settle_row(
            holdings, levels, b, prices, row, closes, bars, rules, ohlc, GAPS_FILL_AT_OPEN
        )
        financing[b], unfilled[b], exits[b], ended[b] = financed, 0.0, closed, MARGIN_CALL if called else 0
        notional[b] += exit_notional
        costs[b] += exit_costs
        t_next[b] = row + 1
        e = record_row(holdings, peak, b, closes[row + 1], equity, cash, positions, weights, drawdown)
        portfolio[b, 0] = clip_bound(weights[b, 0])
        portfolio[b, 1] = clip_bound(weights[b, 1])
        portfolio[b, 2] = clip_bound(cash[b] / e if e > 0.0 else 0.0)
        portfolio[b, 3] = clip_bound(drawdown[b])
        portfolio[b, 4] = clip_bound(e / initial_equity[b] - 1.0)


class MaskedTradingEnv(MaskedActions, KernelTradingEnv):
    """Discrete trading of a bull/bear leveraged ETF pair (TQQQ/SQQQ-like) with legal-action masks.

    ## Description
    The agent watches an index (causal indicators over a look-back window) and trades two
    ETFs on it, a bull (``+L`` daily) and a bear (``-L`` daily) one, long only, in a few
    discrete sizes. :meth:`action_masks` says which actions are legal at the current bar;
    sb3-contrib's ``MaskablePPO`` finds it through any wrapper or ``VecEnv`` (the method
    name ``action_masks`` is the contract) and never samples an illegal action.

    All orders fill at the close of bar ``t`` (fractional shares), through the accounting
    core, paying the frictions of ``costs`` (default: 10 bps commission; see *Market rules*)
    of traded notional. With equity
    ``E_t``, positions' values ``V = (V_bull, V_bear)`` and cash ``C``, all marked at the close
    of ``t`` (``E_t = C + V_bull + V_bear``):

    * **buy X, size f** adds ``f * E_t`` of notional (at the mid price) to ETF ``X``:
      ``q = f E_t / S_X,t`` more shares. With ``switch_sides=True`` (default) the same trade
      first sells the whole position in the *other* ETF, so the book holds one side at a
      time (buying bull while holding bear is a switch); with ``switch_sides=False`` both
      can be held.
    * **flatten** sells both ETFs; **hold** trades nothing.

    **Legal actions** (each rule has its own argument; hold is always legal, so a mask is
    never all ``False``). With ``b = (1 + s)(1 + c)`` (buy price factor incl. the adverse move ``s``
    of the bought ETF at bar ``t``, half-spread plus slippage, and commission ``c``; the sale factor
    ``(1 - s)(1 - c)`` uses the sold ETF's ``s``) and ``V'`` the values right after the buy at mid
    prices:

    ==================  =========================================================================
    rule (``mask_reasons``) a buy is masked when
    ==================  =========================================================================
    ``cash``            ``C + (1 - s)(1 - c) * V_other_sold - b f E_t < 0`` (no margin; the sale of
                        the other side counts when ``switch_sides``)
    ``position_limit``  ``(V'_bull + V'_bear) / E_t > cap`` (gross exposure); ``cap = max_position``, or with
                        ``position_vol_target`` ``max_position * min(1, target / sigma_X,t)``, ``sigma_X,t`` the
                        bought ETF's annualised rolling volatility (``volatility_window`` log returns, causal;
                        ``max_position`` during its warm-up)
    ``concentration``   ``V'_X / E_t > max_concentration`` (the bought ETF)
    ``drawdown``        ``1 - E_t / peak_equity > max_drawdown``, peak since reset (no new risk; hold and
                        flatten stay legal; a flat book past the limit stays flat for the episode)
    ``daily_loss``      ``daily_loss_limit`` set and ``E_t < (1 - daily_loss_limit) E_day``, ``E_day`` the
                        equity at the previous trading day's last close after its trade (at the reset in the
                        reset's day); trading days are calendar dates in ``exchange_tz`` (timestamps), else
                        blocks of ``session_bars`` rows
    ``session``         outside the session *all* trading is masked, flatten included: only hold is legal.
                        ``session_hours=("09:30", "16:00")``: the bar's timestamp in ``exchange_tz`` lies in
                        ``[open, close)``; or ``session_bars`` set and the row within its path ``% session_bars``
                        not in ``[session_open, session_close)``
    ``volatility``      ``max_volatility`` set and the index's rolling volatility at ``t`` (per-bar std
                        of the last ``volatility_window`` log returns, the ``index_volatility``
                        attribute) is ``> max_volatility`` or not defined yet
    ``regime_crisis``   ``regime_rules``: high volatility and the index more than ``crisis_drawdown`` below its
                        running peak: every buy (only reducing is allowed: hold, flatten)
    ``regime_bear``     ``regime_rules``: high volatility in a down trend: bull buys
    ``regime_bull``     ``regime_rules``: high volatility in an up trend: bear buys
    ==================  =========================================================================

    The regimes (seed 002's direction-aware rules, off by default) are causal regime features of the index
    (:func:`~sb3_trading.features.regime_label_table`): high volatility is the top label of ``regime_volatility``
    (``"vol_regime:60"``: the top tercile of the 60-bar volatility in its own history; ``"regime_prob:3,250"``:
    the most volatile filtered HMM state), the trend the sign of ``regime_trend`` (``"trend_regime:20"``); no
    regime rule applies while a label is undefined. ``env.regimes`` holds the ``(T,)`` codes.

    ``info["mask_reasons"]`` is the ``(n_actions,)`` int8 code (an index into :data:`MASK_RULES`, 0 legal) of the
    mask that applied to the step's decision: the first rule, in the order of :data:`MASK_RULES`, that masks
    each action; ``env.mask_reasons()`` names them at the current bar, and the backtest reports the share of
    decisions at which each rule masked something (``BacktestResult.mask_rule_rates``).

    Flatten is legal when some position is non-zero (and inside the session); it is
    masked when flat, where it would do nothing.

    ## Market rules
    ``costs`` may add to the commission a slippage and a half-spread in bps, or a half-spread read bar by bar from the
    data's ``spread`` column (``half_spread_bps="data"``), fees per order (``fixed_fee``, ``min_fee``) and square-root
    impact (``impact_k``): the cash rule above prices each order with the fill's own cost, so it stays exact (an
    action the mask allows never leaves negative cash). ``participation`` and ``lot_size`` are refused with a
    ``ValueError`` naming them: they would fill other sizes than the action table's (so are the venue presets that
    carry them). ``financing`` accrues interest on the cash (the book is long only and never borrows, so loan rates
    and borrow fees never apply), ``margin`` is accepted and never binds for the same reason, and ``brackets`` close
    an ETF position at its stop-loss or take-profit over the bar after the decision (the account stays in cash until
    the next decision). ``info`` adds ``financing`` and ``bracket_exits`` when their rule is on.

    A masked action chosen anyway (e.g. by plain ``PPO``) is **not executed**: it is a no-op,
    treated exactly as hold, and ``info["invalid_action"]`` is ``True`` for that step while
    ``info["n_invalid_actions"]`` counts them over the episode. ``invalid_action_penalty`` (default 0) is
    taken off the reward of such a step, so plain PPO learns to avoid them.

    ## Action Space
    ``Discrete(2 * len(sizes) + 2)``; with ``k = len(sizes)`` (default ``sizes=(0.1, 0.25, 0.5)``):

    ==================  =========================================  =================
    index               action                                     default
    ==================  =========================================  =================
    ``0``               hold                                       0
    ``1 .. k``          buy bull, ``sizes[i - 1]`` of equity       1, 2, 3
    ``k + 1 .. 2k``     buy bear, ``sizes[i - k - 1]`` of equity   4, 5, 6
    ``2k + 1``          flatten (sell both ETFs)                   7
    ==================  =========================================  =================

    ``action_labels`` names them (``"hold"``, ``"buy_bull_0.1"``, ..., ``"flatten"``).
    An integer (Python or NumPy, or a one-element integer array) is expected; anything else
    raises ``TypeError``, an out-of-range index ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  ==============  ==============================================================
    key            shape           content
    =============  ==============  ==============================================================
    ``market``     ``(window, F)``  normalised causal features, rows ``t-window+1..t``: the
                                    indicators on ``feature_assets`` (default: the index) then the
                                    data's own features (``signal[index]`` for the synthetic market)
    ``portfolio``  ``(5,)``         ``[V_bull / E, V_bear / E, C / E, drawdown, E / E_0 - 1]`` at the
                                    close of ``t`` (``E_0``: equity at reset), clipped to +-10
    =============  ==============  ==============================================================

    ## Rewards
    The portfolio return from ``t`` to ``t + 1`` net of costs: ``E_{t+1} / E_t - 1``, minus
    ``invalid_action_penalty`` on a step whose action was masked.

    ## Starting State
    All cash (``initial_cash``), no positions, at the first bar whose window is past the
    indicators' warm-up, or at a uniformly drawn bar with ``random_start=True`` (default; with
    ``episode_length=None`` the episode then runs from that bar to the end of the data, so pass
    ``random_start=False`` to backtest a whole slice).

    ## Episode End
    Terminated when equity falls to zero or below (ruin; the book is long only without margin,
    so only prices that collapse to zero can ruin it). Truncated after ``episode_length``
    decisions (default 256) or at the last bar of the data. The drawdown rule does not end the
    episode: it only masks buys.
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Info
    The standard keys (``positions`` and ``weights`` are ``(2,)``: ``[bull, bear]``) plus
    ``invalid_action`` (``bool``, this step's action was masked and not executed),
    ``n_invalid_actions`` (``int``, count since reset) and ``mask_reasons`` (``(n_actions,)`` int8 rule codes).

    ## Arguments
    :param data: the market, holding at least the index, bull and bear assets; ``None`` builds
        ``make_leveraged_pair_market(seed=synthetic_seed)`` (a predictable regime index with a
        causal ``signal[index]`` feature, and its 3x bull/bear ETFs).
    :param index_asset: name of the index in ``data.asset_names`` (observed, never traded).
    :param bull_asset: name of the bull ETF.
    :param bear_asset: name of the bear ETF.
    :param sizes: buy sizes as fractions of equity, each in ``(0, 1]``, distinct.
    :param switch_sides: buying one ETF first sells all of the other one.
    :param max_position: maximum gross exposure ``(V_bull + V_bear) / E`` a buy may reach, ``> 0``.
    :param max_concentration: maximum ``V_X / E`` a buy of ETF ``X`` may reach, ``> 0``.
    :param max_drawdown: drawdown (from the episode's peak equity) past which buys are masked,
        in ``[0, 1]``; ``None`` disables the rule.
    :param session_bars: bars per session for the row-clock session rule; ``None`` disables it.
    :param session_open: first bar of the session (``t % session_bars``) where trading is allowed.
    :param session_close: trading allowed while ``t % session_bars < session_close``; ``None``:
        ``session_bars``.
    :param max_volatility: per-bar index volatility above which buys are masked; ``None`` disables it.
    :param volatility_window: number of log returns in the volatility of the volatility rule and of
        ``position_vol_target``.
    :param session_hours: ``(open, close)`` as ``"HH:MM"`` in ``exchange_tz``: trading allowed when the bar's
        timestamp is in ``[open, close)`` (needs timestamps; not with ``session_bars``); ``None``: no such rule.
    :param exchange_tz: the exchange's time zone (IANA name) of ``session_hours`` and of the trading days.
    :param daily_loss_limit: loss in ``(0, 1]`` since the previous day's last close past which buys are masked
        for the rest of the day; ``None`` disables it (needs timestamps or ``session_bars``).
    :param regime_rules: seed 002's direction-aware regime rules (crisis: only reduce; high-volatility bear: no
        bull buys; high-volatility bull: no bear buys); off by default.
    :param regime_volatility: the volatility regime spec of the rules (``vol_regime`` or ``regime_prob``).
    :param regime_trend: the trend regime spec of the rules (``trend_regime``).
    :param crisis_drawdown: index drawdown from its running peak, in ``(0, 1]``, that makes high volatility a crisis.
    :param position_vol_target: annualised volatility (fraction, ``> 0``) the gross-exposure cap is scaled to:
        ``max_position * min(1, target / sigma)``; ``None``: the cap is ``max_position``.
    :param invalid_action_penalty: taken off the reward of a step whose action was masked, ``>= 0``.
    :param initial_cash: starting cash, account currency, in ``(0, 1e15]`` (:data:`~sb3_trading.envs.base.MAX_INITIAL_CASH`).
    :param commission_bps: commission in bps of filled notional, in ``[0, 10000)``; a shortcut for
        ``costs={"commission_bps": ...}`` (changed from 10 together with a ``CostModel`` or preset: ``ValueError``).
    :param slippage_bps: adverse fill price move in bps, in ``[0, 10000)`` (the same shortcut).
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param indicators: indicator names (default :data:`MASKED_INDICATORS`, which need OHLCV data).
    :param feature_assets: assets the indicators are computed on (default: ``[index_asset]``).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param feature_fits: fitted indicator state from the training data (``regime_prob``'s HMM), e.g. the training
        env's ``feature_fits``; ``None`` fits it on this env's data (see :class:`~sb3_trading.envs.TradingEnv`).
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    :param costs: a :class:`~sb3_trading.sim.CostModel` or a dict of its fields (``None``:
        ``CostModel(commission_bps, slippage_bps)``); every friction but lots and a participation cap
        (:data:`SUPPORTED_RULES`, see *Market rules*). ``env.costs`` is the resolved model.
    :param financing: a :class:`~sb3_trading.sim.Financing` or a dict of its fields (``None``: none).
    :param margin: a :class:`~sb3_trading.sim.Margin` or a dict of its fields (``None``: none; never binds: a leverage
        cap below 1 is refused).
    :param brackets: a :class:`~sb3_trading.sim.Brackets` or a dict of its fields (``None``: none); needs the
        data's open, high and low of the pair.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        index_asset: str = "index",
        bull_asset: str = "bull",
        bear_asset: str = "bear",
        sizes: Sequence[float] = (0.1, 0.25, 0.5),
        switch_sides: bool = True,
        max_position: float = 1.0,
        max_concentration: float = 0.75,
        max_drawdown: float | None = 0.2,
        session_bars: int | None = None,
        session_open: int = 0,
        session_close: int | None = None,
        max_volatility: float | None = None,
        volatility_window: int = 20,
        session_hours: tuple[str, str] | None = None,
        exchange_tz: str = "America/New_York",
        daily_loss_limit: float | None = None,
        regime_rules: bool = False,
        regime_volatility: str = "vol_regime:60",
        regime_trend: str = "trend_regime:20",
        crisis_drawdown: float = 0.2,
        position_vol_target: float | None = None,
        invalid_action_penalty: float = 0.0,
        initial_cash: float = 1_000_000.0,
        commission_bps: float = 10.0,
        slippage_bps: float = 0.0,
        window: int = 120,
        episode_length: int | None = 256,
        random_start: bool = True,
        indicators: Sequence[str] | None = None,
        feature_assets: Sequence[str] | None = None,
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
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0))
        if not isinstance(data, MarketData):
            raise TypeError(f"data must be a sb3_trading.data.MarketData, got {type(data).__name__}")
        roles = {"index_asset": index_asset, "bull_asset": bull_asset, "bear_asset": bear_asset}
        for name, asset in roles.items():
            if asset not in data.asset_names:
                raise ValueError(f"{name}={asset!r} is not in the data's assets {list(data.asset_names)}")
        if len(set(roles.values())) != 3:
            raise ValueError(f"index_asset, bull_asset and bear_asset must be three different assets, got {roles}")
        if indicators is None:
            missing = [field for field in ("high", "low", "volume") if getattr(data, field) is None]
            if missing:
                raise ValueError(
                    f"the default indicators {MASKED_INDICATORS} need MarketData.{missing[0]}, which this data lacks; "
                    "pass indicators=... without 'atr'/'volume_zscore' (e.g. ['log_return', 'rsi', 'macd', 'bollinger'])"
                )
            indicators = MASKED_INDICATORS
        if feature_assets is None:
            feature_assets = [index_asset]
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
            feature_assets=feature_assets,
        )
        self.index_asset, self.bull_asset, self.bear_asset = index_asset, bull_asset, bear_asset
        self.n_assets = 2  # the traded pair; info positions/weights are (bull, bear)
        self.traded_assets = (bull_asset, bear_asset)
        columns = [data.asset_names.index(bull_asset), data.asset_names.index(bear_asset)]
        if rules.margin is not None and rules.margin.leverage_cap < 1.0:
            raise ValueError(
                f"MaskedTradingEnv does not model a leverage cap below 1 (margin={rules.margin}): its action sizes are "
                "fractions of equity up to the whole of it; use smaller sizes=... or max_position=... instead"
            )
        self.market_rules = rules
        self.costs = rules.costs
        #: the compiled rules of the pair (``bars`` ``(T, F, 2)``, columns ``(bull, bear)``) the kernels read
        self.frictions = self._market_rules(rules, SUPPORTED_RULES, traded=columns)

        # ---------------------------------------------------------- action table
        self.sizes = check_sizes(sizes)
        self.switch_sides = check_bool("switch_sides", switch_sides)
        k = len(self.sizes)
        self.n_actions = 2 * k + 2
        self.flatten_action = 2 * k + 1
        self.action_labels = (
            "hold",
            *(f"buy_bull_{f:g}" for f in self.sizes),
            *(f"buy_bear_{f:g}" for f in self.sizes),
            "flatten",
        )
        # ---------------------------------------------------------- mask rules
        self.max_position = check_fraction("max_position", max_position)
        self.max_concentration = check_fraction("max_concentration", max_concentration)
        self.max_drawdown = (
            None if max_drawdown is None else check_fraction("max_drawdown", max_drawdown, upper=1.0, allow_zero=True)
        )
        warn_unreachable_sizes(
            self.sizes, self.frictions, {"max_position": self.max_position, "max_concentration": self.max_concentration}
        )

        BarRules(
            data,
            risk_asset=index_asset,
            cap_assets=(bull_asset, bear_asset),
            max_position=self.max_position,
            session_bars=session_bars,
            session_open=session_open,
            session_close=session_close,
            session_hours=session_hours,
            exchange_tz=exchange_tz,
            daily_loss_limit=daily_loss_limit,
            max_volatility=max_volatility,
            volatility_window=volatility_window,
            regime_rules=regime_rules,
            regime_volatility=regime_volatility,
            regime_trend=regime_trend,
            crisis_drawdown=crisis_drawdown,
            position_vol_target=position_vol_target,
            fits=self.feature_fits,
        ).attach(self)
        self.invalid_action_penalty = check_real("invalid_action_penalty", invalid_action_penalty, 0.0)

        # ---------------------------------------------------------- book and spaces
        self._prices = kernel_array(data.prices[:, columns])  # (T, 2) closes of [bull, bear]
        self.action_space = spaces.Discrete(self.n_actions)
        self.observation_space = self._observation_space(len(PORTFOLIO_FIELDS))
        self._kernel = self.make_kernel(1)  # a valid flat book, so action_masks() works before reset()

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_leveraged_pair_market(seed=seed)``: the market built when ``data`` is ``None``."""
        return make_leveraged_pair_market(seed=seed)

    def make_kernel(self, n_envs: int) -> MaskedTradingKernel:
        """The batched dynamics of this env for ``n_envs`` accounts (the env itself runs ``n_envs=1``)."""
        return MaskedTradingKernel(self, n_envs)


class MaskedTradingKernel(MaskedKernel):
    """Batched MaskedTrading-v0 dynamics: ``B`` accounts trading the bull/bear pair with discrete actions
    and legal-action masks (see :class:`MaskedTradingEnv`); compiled in :func:`masked_codes_kernel` and
    :func:`masked_step`."""

    codes_kernel = staticmethod(masked_codes_kernel)
    step_kernel = staticmethod(masked_step)
    portfolio_size = _PORTFOLIO_SIZE
    cash_field = 2

    def __init__(self, env: MaskedTradingEnv, n_envs: int) -> None:
        super().__init__(env, n_envs)
        self.switch_sides = env.switch_sides
        self.max_position, self.max_concentration, self.max_drawdown = (
            env.max_position,
            env.max_concentration,
            env.max_drawdown,
        )

    def rule_arguments(self) -> tuple[Any, ...]:
        return (
            self._session_ok,
            self._buy_block,
            self.sizes,
            self.switch_sides,
            self._caps,
            self.max_concentration,
            self._drawdown_floor,
            self._loss_floor,
            self._day,
            self._friction_bars,
            self._friction_rules,
        )
