"""The market's rules for an account: trading frictions, financing, margin and bracket orders.

Four frozen, validated models, each with defaults that change nothing (commission only, so results reproduce):

* :class:`CostModel` -- what a fill costs: commission in bps of the filled notional, a fixed fee per order and a
  minimum commission, a half-spread (bps, or half the data's ``spread`` column), slippage, square-root market
  impact ``k sigma sqrt(|q| / ADV)`` from causal rolling volatility and volume, a participation cap (at most a
  fraction of the bar's volume fills; the rest is reported as ``unfilled``) and a lot size.
* :class:`Financing` -- interest on positive cash, interest on borrowed (negative) cash and a borrow fee on the
  market value of shorts, annual rates accrued every bar with the data's ``periods_per_year`` into the cash, so
  they compound.
* :class:`Margin` -- a gross leverage cap and an initial margin (orders are scaled down so that new exposure stays
  within both), and a maintenance margin below which the book is liquidated and the episode ends
  (``info["terminated_by"] == "margin_call"``).
* :class:`Brackets` -- stop-loss and take-profit levels per position, as a fraction of the entry price or in ATR
  multiples, checked against the next bar's high and low.

:func:`venue` returns a realistic preset of the first three (``"us_equities"``, ``"crypto_perp"``, ``"fx"``;
:data:`VENUES` documents their numbers and sources), and :func:`resolve_market_rules` turns an env's arguments
into the models. :func:`build_frictions` compiles them with the data into the two arrays the kernels of
:mod:`sb3_trading.sim.kernels` read: ``bars`` ``(T, N_BAR_FIELDS, N)`` (per decision bar and asset) and ``rules``
``(N_RULES,)`` (scalars); see :class:`Frictions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from sb3_trading.common.jit import kernel_array
from sb3_trading.common.validation import check_choice, check_int, check_real, is_real, suggest

BPS = 1e-4  # one basis point as a fraction
#: every cost rate in bps lies in ``[0, MAX_BPS)``: a fill never costs 100 % of its notional, and a sell's
#: fill price ``p (1 - slippage)`` stays positive
MAX_BPS = 1e4
#: the commission of a :class:`CostModel` and of every env by default, bps
DEFAULT_COMMISSION_BPS = 10.0
#: largest adverse move of a fill, a fraction of the mid (square-root impact of a huge order is capped here, so a
#: sell always fills at a positive price)
MAX_ADVERSE = 0.99
#: the value of ``CostModel.half_spread_bps`` that reads the half-spread from the data's ``spread`` column
SPREAD_FROM_DATA = "data"

# rows of Frictions.bars (per decision bar t and asset i)
ADVERSE = 0  #: half-spread + slippage, fraction of the mid price (the linear part of a fill's adverse move)
IMPACT = 1  #: square-root impact coefficient ``k sigma_t / sqrt(ADV_t)``, fraction of the mid per sqrt(share)
MAX_TRADE = 2  #: most shares that fill in the bar (``participation * volume``; ``inf``: no cap)
BORROW = 3  #: borrow fee per bar on short market value, fraction
STOP = 4  #: stop-loss distance: a fraction of the entry price, or price units (``ATR_t`` multiples), 0: none
TAKE = 5  #: take-profit distance, as ``STOP``
N_BAR_FIELDS = 6

# entries of Frictions.rules
COMMISSION = 0  #: commission, fraction of the filled notional
FIXED_FEE = 1  #: fixed fee per order (per asset traded), currency
MIN_FEE = 2  #: minimum commission per order, currency
LOT = 3  #: lot size in shares (0: fractional)
LEVERAGE = 4  #: most gross exposure / equity a fill may leave (``inf``: no cap)
MAINTENANCE = 5  #: maintenance margin fraction of gross exposure (0: none)
CASH_RATE = 6  #: interest per bar on positive cash
LOAN_RATE = 7  #: interest per bar on negative cash
BRACKET_ATR = 8  #: 1.0 when the bracket distances are in price units (ATR multiples), 0.0 for fractions of entry
FINANCED = 9  #: 1.0 when any financing rate is non-zero
LIMITED = 10  #: 1.0 when a lot size, a participation cap or a leverage cap applies to orders
BRACKETED = 11  #: 1.0 when stop-loss or take-profit levels are set
N_RULES = 12


def _positive_or_none(name: str, value: Any, maximum: float | None = None, strict_maximum: bool = False) -> float | None:
    return check_real(name, value, 0.0, maximum, strict_minimum=True, strict_maximum=strict_maximum, allow_none=True)


@dataclass(frozen=True)
class CostModel:
    """What a fill costs. Defaults: 10 bps commission, nothing else.

    A trade of ``q`` shares of an asset at mid price ``p`` moves against the trader by the fraction
    ``a = half_spread + slippage + impact_k * sigma * sqrt(|q| / ADV)``: it fills at ``p (1 + a sign(q))``.
    Its commission is ``max(c |q| p (1 + a sign(q)), min_fee) + fixed_fee`` (only for ``q != 0``). The
    friction reported in ``costs`` is everything measured against the mid: ``|q| p a + commission``, so
    equity marked at the mid falls by exactly the friction.

    :param commission_bps: commission in bps of the filled notional, in ``[0, 10000)``.
    :param slippage_bps: adverse price move of every fill, bps of the mid, in ``[0, 10000)``.
    :param fixed_fee: fee per order (each asset traded in a step is one order), currency, ``>= 0``.
    :param min_fee: minimum commission per order, currency, ``>= 0``.
    :param half_spread_bps: half the bid-ask spread, bps of the mid, in ``[0, 10000)``; or ``"data"``: half the
        data's ``spread`` column (``MarketData.spread``, quoted spread in price units) over the mid, bar by bar.
    :param impact_k: coefficient ``k`` of the square-root impact ``k sigma sqrt(|q| / ADV)``, ``>= 0`` (0: none).
        ``sigma`` is the standard deviation of the bar log returns and ``ADV`` the mean bar volume over the
        ``impact_window`` bars up to the decision bar (causal); it needs the data's volume. A bar whose ``ADV``
        is zero has no liquidity: nothing fills there.
    :param impact_window: bars of the rolling ``sigma`` and ``ADV`` (an integer ``>= 2``).
    :param participation: most of the fill bar's volume an order may take, in ``(0, 1]`` (``None``: no cap);
        the rest is not filled and is reported in ``info["unfilled"]`` (mid notional). Needs the data's volume.
    :param lot_size: shares come in whole multiples of this (``None``: fractional shares); targets are rounded
        toward zero.
    :raises TypeError: if a value is not a number (a string, a bool).
    :raises ValueError: if a value is not finite or out of range.
    """

    commission_bps: float = DEFAULT_COMMISSION_BPS
    slippage_bps: float = 0.0
    fixed_fee: float = 0.0
    min_fee: float = 0.0
    half_spread_bps: float | str = 0.0
    impact_k: float = 0.0
    impact_window: int = 20
    participation: float | None = None
    lot_size: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("commission_bps", "slippage_bps"):
            # a rate of 10000 bps or more charges 100 % of the notional (or fills at a price <= 0): refused
            set_(self, name, check_real(name, getattr(self, name), 0.0, MAX_BPS, strict_maximum=True))
        if self.half_spread_bps != SPREAD_FROM_DATA:
            value = check_real("half_spread_bps", self.half_spread_bps, 0.0, MAX_BPS, strict_maximum=True)
            set_(self, "half_spread_bps", value)
        for name in ("fixed_fee", "min_fee", "impact_k"):
            set_(self, name, check_real(name, getattr(self, name), 0.0))
        set_(self, "impact_window", check_int("impact_window", self.impact_window, 2))
        set_(self, "participation", _positive_or_none("participation", self.participation, 1.0))
        set_(self, "lot_size", _positive_or_none("lot_size", self.lot_size))

    @property
    def commission(self) -> float:
        """``commission_bps`` as a fraction of filled notional."""
        return self.commission_bps * BPS

    @property
    def slippage(self) -> float:
        """``slippage_bps`` as a fraction of the mid price."""
        return self.slippage_bps * BPS

    @property
    def is_linear(self) -> bool:
        """True when every friction is a fixed fraction of the traded notional (no fee per order, no minimum, no
        impact, no spread column): the cost of a trade is then ``|q| p (a + c (1 + a sign q))`` exactly."""
        return (
            self.fixed_fee == 0.0 and self.min_fee == 0.0 and self.impact_k == 0.0 and self.half_spread_bps != SPREAD_FROM_DATA
        )

    @property
    def is_constant(self) -> bool:
        """True when no friction needs the data (no impact, no spread column, no participation cap): every fill
        is priced by :meth:`constant_bars` and :meth:`rules` alone."""
        return self.impact_k == 0.0 and self.half_spread_bps != SPREAD_FROM_DATA and self.participation is None

    @property
    def adverse(self) -> float:
        """The constant adverse move of a fill, fraction of the mid: ``slippage + half_spread`` (spread in bps)."""
        spread = 0.0 if self.half_spread_bps == SPREAD_FROM_DATA else float(self.half_spread_bps) * BPS
        return self.slippage + spread

    def rules(self) -> np.ndarray:
        """``(N_RULES,)`` float64: this model's entries of :attr:`Frictions.rules`, no margin, financing or brackets."""
        rules = np.zeros(N_RULES)
        rules[COMMISSION] = self.commission
        rules[FIXED_FEE] = self.fixed_fee
        rules[MIN_FEE] = self.min_fee
        rules[LOT] = 0.0 if self.lot_size is None else self.lot_size
        rules[LEVERAGE] = math.inf
        rules[LIMITED] = float(self.lot_size is not None or self.participation is not None)
        return rules

    def constant_bars(self, n_assets: int) -> np.ndarray:
        """``(N_BAR_FIELDS, N)`` float64: one bar's entries of :attr:`Frictions.bars` for frictions that need no data
        (spread in bps, slippage; no impact, no cap, no borrow fee, no brackets)."""
        bars = np.zeros((N_BAR_FIELDS, n_assets))
        bars[ADVERSE] = self.adverse
        bars[MAX_TRADE] = math.inf
        return bars


def batch_bars(bars: np.ndarray, n_rows: int) -> np.ndarray:
    """One bar's frictions ``bars`` ``(N_BAR_FIELDS, N)`` repeated into a read-only ``(n_rows, N_BAR_FIELDS, N)``
    array, the same for every row (what the batched kernels take; C-contiguous like an env's
    :attr:`Frictions.bars`, so that the kernels compile once for both)."""
    return kernel_array(np.broadcast_to(bars, (n_rows, *bars.shape)))


def _per_asset(name: str, value: Any, assets: Sequence[str], minimum: float = 0.0) -> np.ndarray:
    """``(N,)`` float64 from a number (every asset), a sequence of ``N`` numbers, or a mapping asset -> number."""
    if isinstance(value, Mapping):
        unknown = [key for key in value if key not in assets]
        if unknown:
            raise ValueError(f"{name} names assets {unknown} that are not traded; the traded assets are {list(assets)}")
        return np.array([check_real(f"{name}[{a!r}]", value.get(a, 0.0), minimum) for a in assets], dtype=np.float64)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(assets):
            raise ValueError(f"{name} has {len(value)} values but {len(assets)} assets are traded ({list(assets)})")
        return np.array([check_real(f"{name}[{i}]", v, minimum) for i, v in enumerate(value)], dtype=np.float64)
    return np.full(len(assets), check_real(name, value, minimum), dtype=np.float64)


@dataclass(frozen=True)
class Financing:
    """Interest on cash and fees on shorts, as annual rates, accrued every bar into the cash (so they compound).

    Over each bar the account earns ``cash * cash_rate / periods_per_year`` on positive cash, pays
    ``cash * loan_rate / periods_per_year`` on negative cash (a margin loan), and pays
    ``sum_i short_shares_i * p_i * borrow_bps_i * 1e-4 / periods_per_year`` on its shorts, valued at the fill
    prices of the bar's decision. The net amount is ``info["financing"]`` (currency, + received); equity, and so
    the reward, include it.

    :param cash_rate: annual interest on positive cash, a fraction (``0.04`` = 4 %), in ``[0, 1]``.
    :param loan_rate: annual interest on negative cash, in ``[0, 1]``.
    :param borrow_bps: annual borrow fee on short market value, bps, ``>= 0``: one rate, one per traded asset, or a
        mapping asset name -> bps (unnamed assets: 0).
    """

    cash_rate: float = 0.0
    loan_rate: float = 0.0
    borrow_bps: float | Sequence[float] | Mapping[str, float] = 0.0

    def __post_init__(self) -> None:
        for name in ("cash_rate", "loan_rate"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), 0.0, 1.0))
        borrow = self.borrow_bps
        if isinstance(borrow, Mapping):
            borrow = {str(k): check_real(f"borrow_bps[{k!r}]", v, 0.0) for k, v in borrow.items()}
        elif isinstance(borrow, Sequence) and not isinstance(borrow, str):
            borrow = tuple(check_real(f"borrow_bps[{i}]", v, 0.0) for i, v in enumerate(borrow))
        else:
            borrow = check_real("borrow_bps", borrow, 0.0)
        object.__setattr__(self, "borrow_bps", borrow)

    def borrow(self, assets: Sequence[str]) -> np.ndarray:
        """``(N,)`` annual borrow fee of each traded asset, a fraction."""
        return _per_asset("borrow_bps", self.borrow_bps, assets) * BPS

    @property
    def is_zero(self) -> bool:
        """True when nothing accrues (every rate 0)."""
        borrow = self.borrow_bps
        values = borrow.values() if isinstance(borrow, dict) else borrow if isinstance(borrow, tuple) else (borrow,)
        return self.cash_rate == 0.0 and self.loan_rate == 0.0 and all(float(v) == 0.0 for v in values)


@dataclass(frozen=True)
class Margin:
    """Leverage limits and the margin call.

    An order is scaled down (the same fraction of every asset's trade) so that the book it leaves has gross
    exposure ``sum_i |q_i| p_i`` at most ``min(max_leverage, 1 / initial_margin)`` times its equity, or no more
    than before the order when the book is already above that (a reduction is always allowed). When the equity
    marked at a bar's close falls below ``maintenance_margin`` times the gross exposure, the whole book is
    liquidated at that close, paying every friction, and the episode terminates with
    ``info["terminated_by"] == "margin_call"``.

    :param max_leverage: cap on gross exposure / equity after a fill, ``> 0`` (``None``: none).
    :param initial_margin: equity required per unit of gross exposure for new exposure, in ``(0, 1]``
        (``0.5``: Reg T's 50 %, leverage 2); ``None``: none.
    :param maintenance_margin: equity below which (per unit of gross exposure) the book is liquidated, in
        ``(0, 1)``, below ``initial_margin`` when both are given; ``None``: no margin call.
    """

    max_leverage: float | None = None
    initial_margin: float | None = None
    maintenance_margin: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_leverage", _positive_or_none("max_leverage", self.max_leverage))
        object.__setattr__(self, "initial_margin", _positive_or_none("initial_margin", self.initial_margin, 1.0))
        maintenance = _positive_or_none("maintenance_margin", self.maintenance_margin, 1.0, strict_maximum=True)
        object.__setattr__(self, "maintenance_margin", maintenance)
        if maintenance is not None and self.initial_margin is not None and maintenance >= self.initial_margin:
            raise ValueError(
                f"maintenance_margin={maintenance} must be below initial_margin={self.initial_margin}: a book opened at "
                "the initial margin would be called at once"
            )

    @property
    def leverage_cap(self) -> float:
        """Most gross exposure / equity a fill may leave: ``min(max_leverage, 1 / initial_margin)`` (``inf``: none)."""
        caps = [math.inf]
        if self.max_leverage is not None:
            caps.append(self.max_leverage)
        if self.initial_margin is not None:
            caps.append(1.0 / self.initial_margin)
        return min(caps)


BRACKET_UNITS = ("fraction", "atr")


@dataclass(frozen=True)
class Brackets:
    """Stop-loss and take-profit orders attached to every position.

    A position's levels are set from its entry price ``e`` (the average fill price of the shares held; a new
    or reversed position starts afresh, a partial close keeps it) when it is opened or added to: a long's stop
    at ``e - d_stop`` and take-profit at ``e + d_take``, a short's mirrored, with ``d = stop_loss * e``
    (``unit="fraction"``) or ``d = stop_loss * ATR_t`` (``unit="atr"``: the mean true range of the
    ``atr_window`` bars up to the decision bar, causal). Over the bar after the decision the levels are checked
    against its high and low: a touched level closes the position at the level, or at the bar's open when the
    bar opened beyond it (a gap; not with ``execution="next_open"``, whose fill is that open), paying every
    friction. When a bar touches both levels the stop is taken (the conservative reading: the bar's path is
    unknown). A closed position stays flat until the next decision; ``info["bracket_exits"]`` counts the exits.

    :param stop_loss: stop distance (a fraction of entry in ``(0, 1)``, or ATR multiples ``> 0``); ``None``: none.
    :param take_profit: take-profit distance (a fraction ``> 0``, or ATR multiples ``> 0``); ``None``: none.
    :param unit: ``"fraction"`` (of the entry price) or ``"atr"``.
    :param atr_window: bars of the ATR (an integer ``>= 1``).
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    unit: str = "fraction"
    atr_window: int = 14

    def __post_init__(self) -> None:
        check_choice("unit", self.unit, BRACKET_UNITS)
        stop_max = 1.0 if self.unit == "fraction" else None
        object.__setattr__(self, "stop_loss", _positive_or_none("stop_loss", self.stop_loss, stop_max, strict_maximum=True))
        object.__setattr__(self, "take_profit", _positive_or_none("take_profit", self.take_profit))
        object.__setattr__(self, "atr_window", check_int("atr_window", self.atr_window, 1))
        if self.stop_loss is None and self.take_profit is None:
            raise ValueError("Brackets need a stop_loss, a take_profit or both; pass brackets=None for none")


@dataclass(frozen=True)
class Venue:
    """A realistic preset: the frictions, financing and margin of one kind of venue (see :data:`VENUES`)."""

    name: str
    costs: CostModel
    financing: Financing
    margin: Margin
    sources: str


#: The venue presets of ``costs="<name>"``. Numbers are typical for a retail/professional account in 2024-2025;
#: check them against your own broker's schedule.
VENUES: dict[str, Venue] = {
    "us_equities": Venue(
        "us_equities",
        # IBKR Pro fixed pricing: $0.005 per share (0.5 bps of a $100 share), $1.00 minimum per order; large-cap
        # quoted spreads of 1-2 bps; square-root impact with Y of order one (Toth et al. 2011, "Anomalous price
        # impact and the critical nature of liquidity"); at most 10 % of a bar's volume; whole shares
        CostModel(commission_bps=0.5, min_fee=1.0, half_spread_bps=1.0, impact_k=1.0, participation=0.1, lot_size=1.0),
        # cash at about the benchmark rate minus 0.5 % (T-bills ~4 %), margin loans at benchmark + 1.5 %; general
        # collateral (easy to borrow) stock loan at 25 bps a year
        Financing(cash_rate=0.035, loan_rate=0.058, borrow_bps=25.0),
        # Reg T initial margin 50 % (leverage 2), FINRA Rule 4210 maintenance margin 25 %
        Margin(initial_margin=0.5, maintenance_margin=0.25),
        "IBKR Pro fixed commissions and margin rates; Reg T (50 %) and FINRA 4210 (25 %); Toth et al. (2011)",
    ),
    "crypto_perp": Venue(
        "crypto_perp",
        # Binance USD-M futures, regular tier: 5 bps taker fee; BTC/ETH perpetual half-spreads well under 1 bp
        CostModel(commission_bps=5.0, half_spread_bps=0.5, impact_k=1.0, participation=0.05),
        # funding at the default 0.01 % per 8 hours (about 11 % a year), paid here as the loan rate on borrowed
        # cash and as the borrow fee on shorts; idle margin earns nothing
        Financing(cash_rate=0.0, loan_rate=0.1095, borrow_bps=1095.0),
        # 10x initial leverage (10 % initial margin), liquidation at 5 % maintenance margin
        Margin(initial_margin=0.1, maintenance_margin=0.05),
        "Binance USD-M futures fee schedule (taker 0.05 %) and funding (0.01 % / 8 h); 10x leverage tier",
    ),
    "fx": Venue(
        "fx",
        # IBKR spot FX: 0.2 bps of the trade value, $2.00 minimum; EUR/USD inside spread ~0.1-0.2 pip (~1 bp),
        # half of it 0.5 bp
        CostModel(commission_bps=0.2, min_fee=2.0, half_spread_bps=0.5),
        # carry is not modelled per currency pair: margin loans at benchmark + 1.5 %
        Financing(cash_rate=0.0, loan_rate=0.058, borrow_bps=0.0),
        # ESMA retail leverage limit on major pairs 30:1 (3.33 % margin), close-out at 50 % of the required margin
        Margin(max_leverage=30.0, maintenance_margin=1.0 / 60.0),
        "IBKR spot FX commissions; ESMA product intervention (30:1 majors, 50 % margin close-out)",
    ),
}


def venue(name: str) -> Venue:
    """The preset named ``name`` (one of :data:`VENUES`).

    :raises ValueError: for an unknown name, listing the presets.
    """
    if name not in VENUES:
        raise ValueError(f"unknown costs preset {name!r}{suggest(name, VENUES)} Presets: {sorted(VENUES)}")
    return VENUES[name]


def _model(cls: type, name: str, value: Any) -> Any:
    """``value`` as a ``cls``: an instance as is, a mapping of its fields, ``None`` as ``None``."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(cls)}
        unknown = [key for key in value if key not in known]
        if unknown:
            raise ValueError(f"{name} has unknown fields {unknown}; {cls.__name__} takes {sorted(known)}")
        return cls(**value)
    raise TypeError(f"{name} must be a {cls.__name__}, a dict of its fields or None, got {type(value).__name__}")


@dataclass(frozen=True)
class MarketRules:
    """The resolved models of one env: what :func:`build_frictions` compiles."""

    costs: CostModel
    financing: Financing | None = None
    margin: Margin | None = None
    brackets: Brackets | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """The argument names of the rules in use beyond proportional costs, in :data:`RULE_FEATURES` order (an
        env that does not model one refuses it by name)."""
        costs = self.costs
        used = {
            "fixed_fee": costs.fixed_fee > 0.0,
            "min_fee": costs.min_fee > 0.0,
            'half_spread_bps="data"': costs.half_spread_bps == SPREAD_FROM_DATA,
            "impact_k": costs.impact_k > 0.0,
            "participation": costs.participation is not None,
            "lot_size": costs.lot_size is not None,
            "financing": self.financing is not None,
            "margin": self.margin is not None,
            "brackets": self.brackets is not None,
        }
        return tuple(name for name in RULE_FEATURES if used[name])


#: every rule beyond proportional commission, slippage and half-spread in bps (:attr:`MarketRules.features`)
RULE_FEATURES = (
    "fixed_fee",
    "min_fee",
    'half_spread_bps="data"',
    "impact_k",
    "participation",
    "lot_size",
    "financing",
    "margin",
    "brackets",
)


def resolve_market_rules(
    costs: CostModel | str | Mapping[str, Any] | None = None,
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = 0.0,
    financing: Financing | Mapping[str, Any] | None = None,
    margin: Margin | Mapping[str, Any] | None = None,
    brackets: Brackets | Mapping[str, Any] | None = None,
) -> MarketRules:
    """An env's friction arguments as :class:`MarketRules` (the same arguments in every env).

    :param costs: a :class:`CostModel`, a dict of its fields, a venue preset name (:data:`VENUES`: it also sets
        ``financing`` and ``margin`` unless they are given), or ``None`` (``CostModel(commission_bps, slippage_bps)``).
    :param commission_bps: the commission when ``costs`` is ``None`` or a dict without one (default 10 bps).
    :param slippage_bps: the slippage when ``costs`` is ``None`` or a dict without one (default 0).
    :param financing: a :class:`Financing`, a dict of its fields, or ``None``.
    :param margin: a :class:`Margin`, a dict of its fields, or ``None``.
    :param brackets: a :class:`Brackets`, a dict of its fields, or ``None``.
    :raises ValueError: for ``commission_bps``/``slippage_bps`` changed from their defaults together with a
        ``CostModel`` or preset (which sets them), or given both as an argument and in a dict.
    :raises TypeError: for a rate that is not a number.
    """
    defaults = (("commission_bps", commission_bps, DEFAULT_COMMISSION_BPS), ("slippage_bps", slippage_bps, 0.0))
    # a shortcut left at its default is not "given"; anything else (None, a string) is, and CostModel checks it
    shortcuts = {name: value for name, value, default in defaults if not (is_real(value) and value == default)}
    preset = None
    if isinstance(costs, str):
        preset = venue(costs)
        model = preset.costs
    elif isinstance(costs, Mapping):
        clash = sorted(set(shortcuts) & set(costs))
        if clash:
            raise ValueError(f"{clash} given both as arguments and in costs={dict(costs)}; give each once")
        model = _model(CostModel, "costs", {"commission_bps": commission_bps, "slippage_bps": slippage_bps, **costs})
        shortcuts = {}
    else:
        model = _model(CostModel, "costs", costs)
    if model is None:
        model = CostModel(commission_bps, slippage_bps)
    elif shortcuts:
        raise ValueError(
            f"{sorted(shortcuts)} cannot be combined with costs={costs!r}; set them in the CostModel "
            "(e.g. costs={'commission_bps': 5, ...})"
        )
    financing_model = _model(Financing, "financing", financing)
    margin_model = _model(Margin, "margin", margin)
    if preset is not None:
        financing_model = preset.financing if financing is None else financing_model
        margin_model = preset.margin if margin is None else margin_model
    if financing_model is not None and financing_model.is_zero:
        financing_model = None
    if margin_model is not None and margin_model.leverage_cap == math.inf and margin_model.maintenance_margin is None:
        margin_model = None
    return MarketRules(model, financing_model, margin_model, _model(Brackets, "brackets", brackets))


class Frictions:
    """The compiled market rules of one env: the arrays its step kernels read.

    :ivar bars: ``(T, N_BAR_FIELDS, N)`` float64, read-only: per decision bar ``t`` and traded asset, the
        fill's adverse fraction (:data:`ADVERSE`), impact coefficient (:data:`IMPACT`), most shares that fill
        (:data:`MAX_TRADE`), borrow fee per bar (:data:`BORROW`) and bracket distances (:data:`STOP`,
        :data:`TAKE`). Row ``t`` prices the order decided at ``t``; it depends only on data ``<= t``, except the
        spread and volume of the fill bar ``t + fill_shift`` (execution conditions, not observations).
    :ivar rules: ``(N_RULES,)`` float64: commission, fees, lot, leverage cap, maintenance margin, per-bar rates and
        flags (the module's ``COMMISSION`` ... ``BRACKETED``).
    :ivar rules_model: the :class:`MarketRules` compiled.
    :ivar ohlc: ``(T, 3, N)`` open, high and low of each bar, for the brackets (``None`` without brackets).
    """

    def __init__(self, bars: np.ndarray, rules: np.ndarray, model: MarketRules, ohlc: np.ndarray | None):
        bars.setflags(write=False)
        rules.setflags(write=False)
        self.bars, self.rules, self.rules_model, self.ohlc = bars, rules, model, ohlc

    @property
    def financed(self) -> bool:
        return bool(self.rules[FINANCED])

    @property
    def limited(self) -> bool:
        return bool(self.rules[LIMITED])

    @property
    def margined(self) -> bool:
        return self.rules[MAINTENANCE] > 0.0

    @property
    def bracketed(self) -> bool:
        return bool(self.rules[BRACKETED])


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """``(T, N)`` mean of the last ``window`` rows up to each row (fewer at the start), causal."""
    cumulative = np.cumsum(np.vstack([np.zeros((1, values.shape[1])), values]), axis=0)
    rows = np.arange(1, values.shape[0] + 1)
    first = np.maximum(rows - window, 0)
    return (cumulative[rows] - cumulative[first]) / (rows - first)[:, None]


def _rolling_std(log_returns: np.ndarray, window: int) -> np.ndarray:
    """``(T, N)`` sample standard deviation of the last ``window`` returns up to each row (0 with fewer than 2)."""
    mean = _rolling_mean(log_returns, window)
    mean_square = _rolling_mean(log_returns**2, window)
    count = np.minimum(np.arange(1, log_returns.shape[0] + 1), window)[:, None]
    variance = np.maximum(mean_square - mean**2, 0.0) * count / np.maximum(count - 1, 1)
    return np.where(count >= 2, np.sqrt(variance), 0.0)


def _per_path(data_bounds: Sequence[tuple[int, int]], function: Any, *arrays: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``function`` applied to each path's rows of ``arrays`` separately (no statistic crosses a path boundary)."""
    return np.concatenate([function(*(a[start:stop] for a in arrays), **kwargs) for start, stop in data_bounds])


def _impact_coefficient(closes: np.ndarray, volume: np.ndarray, k: float, window: int) -> np.ndarray:
    """Causal ``(T, N)`` square-root impact coefficient ``k sigma_t / sqrt(ADV_t)`` (0 where ``ADV_t`` is 0): ``sigma``
    the std of the bar log returns and ``ADV`` the mean bar volume, over the ``window`` bars up to ``t``."""
    log_returns = np.diff(np.log(closes), axis=0)
    sigma = np.vstack([np.zeros((1, closes.shape[1])), _rolling_std(log_returns, window)])  # returns up to each row
    adv = _rolling_mean(volume, window)
    illiquid = adv <= 0.0
    return np.where(illiquid, 0.0, k * sigma / np.sqrt(np.where(illiquid, 1.0, adv)))


def _atr(closes: np.ndarray, high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    """Causal ``(T, N)`` average true range: the mean of ``max(h - l, |h - c_prev|, |l - c_prev|)`` over ``window`` bars."""
    previous = np.vstack([closes[:1], closes[:-1]])
    true_range = np.maximum(high - low, np.maximum(np.abs(high - previous), np.abs(low - previous)))
    return _rolling_mean(true_range, window)


def _shift_rows(values: np.ndarray, shift: int) -> np.ndarray:
    """``values[t + shift]`` at row ``t`` (the last rows repeat the last one)."""
    if shift == 0:
        return values
    return np.vstack([values[shift:], np.repeat(values[-1:], shift, axis=0)])


def write_financing(
    rules: np.ndarray, borrow: np.ndarray, financing: Financing, assets: Sequence[str], periods_per_year: float
) -> None:
    """Compile ``financing`` into the per-bar rates the kernels read, in place: ``rules[CASH_RATE]``,
    ``rules[LOAN_RATE]`` and ``rules[FINANCED]`` of a ``(N_RULES,)`` rules array, and the borrow fee of each asset
    into ``borrow`` (``(..., N)``, the ``BORROW`` field of the bars), each annual rate over ``periods_per_year``."""
    rules[CASH_RATE] = financing.cash_rate / periods_per_year
    rules[LOAN_RATE] = financing.loan_rate / periods_per_year
    borrow[...] = financing.borrow(assets) / periods_per_year
    rules[FINANCED] = 1.0


def build_frictions(
    rules_model: MarketRules,
    prices: np.ndarray,
    assets: Sequence[str],
    periods_per_year: float,
    path_bounds: Sequence[tuple[int, int]],
    fill_shift: int = 0,
    volume: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    open_: np.ndarray | None = None,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
) -> Frictions:
    """Compile ``rules_model`` with the traded assets' data into :class:`Frictions`.

    :param rules_model: the resolved models (:func:`resolve_market_rules`).
    :param prices: ``(T, N)`` closes of the traded assets.
    :param assets: the ``N`` traded assets' names (messages, per-asset borrow fees).
    :param periods_per_year: bars per year of the data's calendar (the per-bar rates are annual rates / it).
    :param path_bounds: ``(start, stop)`` rows of each path of the data (rolling statistics restart per path).
    :param fill_shift: orders decided at ``t`` fill at row ``t + fill_shift`` (0: the close, 1: the next open).
    :param volume: ``(T, N)`` bar volumes (needed by ``impact_k`` and ``participation``).
    :param spread: ``(T, N)`` quoted spreads in price units (needed by ``half_spread_bps="data"``).
    :param open_: ``(T, N)`` opens; ``high``, ``low``: ``(T, N)`` (needed by brackets).
    :raises ValueError: naming the argument and the data it needs when that data is missing.
    """
    costs, financing, margin, brackets = (
        rules_model.costs,
        rules_model.financing,
        rules_model.margin,
        rules_model.brackets,
    )
    n_rows, n_assets = prices.shape
    bars = np.zeros((n_rows, N_BAR_FIELDS, n_assets))
    bars[:, ADVERSE] = costs.adverse
    if costs.half_spread_bps == SPREAD_FROM_DATA:
        if spread is None:
            raise ValueError('half_spread_bps="data" needs the data\'s spread column (MarketData.spread), but it has none')
        fill_mid = _shift_rows(prices, fill_shift) if open_ is None or fill_shift == 0 else _shift_rows(open_, fill_shift)
        bars[:, ADVERSE] = costs.slippage + 0.5 * _shift_rows(spread, fill_shift) / fill_mid
        if (bars[:, ADVERSE] >= 1.0).any():
            row, col = np.argwhere(bars[:, ADVERSE] >= 1.0)[0]
            raise ValueError(f"the spread of asset {assets[col]!r} at row {row} is at least twice its price: fix the data")
    bars[:, MAX_TRADE] = math.inf
    needs_volume = [name for name, on in (("impact_k", costs.impact_k > 0.0), ("participation", costs.participation)) if on]
    if needs_volume and volume is None:
        raise ValueError(f"{' and '.join(needs_volume)} need the data's volume (MarketData.volume), but it has none")
    if costs.participation is not None:
        bars[:, MAX_TRADE] = costs.participation * _shift_rows(volume, fill_shift)
    if costs.impact_k > 0.0:
        window = costs.impact_window
        bars[:, IMPACT] = _per_path(path_bounds, _impact_coefficient, prices, volume, k=costs.impact_k, window=window)
        illiquid = _per_path(path_bounds, _rolling_mean, volume, window=window) <= 0.0
        bars[:, MAX_TRADE] = np.where(illiquid, 0.0, bars[:, MAX_TRADE])  # no volume: nothing fills
    rules = costs.rules()
    if financing is not None:
        write_financing(rules, bars[:, BORROW], financing, assets, periods_per_year)
    if margin is not None:
        rules[LEVERAGE] = margin.leverage_cap
        rules[MAINTENANCE] = margin.maintenance_margin or 0.0
        rules[LIMITED] = float(rules[LIMITED] or margin.leverage_cap < math.inf)
    ohlc = None
    if brackets is not None:
        missing = [name for name, array in (("open", open_), ("high", high), ("low", low)) if array is None]
        if missing:
            raise ValueError(f"brackets are checked against each bar's open, high and low, but the data has no {missing}")
        if brackets.unit == "atr":
            atr = _per_path(path_bounds, _atr, prices, high, low, window=brackets.atr_window)
            bars[:, STOP] = 0.0 if brackets.stop_loss is None else brackets.stop_loss * atr
            bars[:, TAKE] = 0.0 if brackets.take_profit is None else brackets.take_profit * atr
            rules[BRACKET_ATR] = 1.0
        else:
            bars[:, STOP] = brackets.stop_loss or 0.0
            bars[:, TAKE] = brackets.take_profit or 0.0
        rules[BRACKETED] = 1.0
        ohlc = np.stack([open_, high, low], axis=1).astype(np.float64)  # a bar's three rows side by side in memory
    return Frictions(np.ascontiguousarray(bars), rules, rules_model, ohlc)


__all__ = [
    "BPS",
    "BRACKET_UNITS",
    "MAX_BPS",
    "RULE_FEATURES",
    "SPREAD_FROM_DATA",
    "VENUES",
    "Brackets",
    "CostModel",
    "Financing",
    "Frictions",
    "Margin",
    "MarketRules",
    "Venue",
    "batch_bars",
    "build_frictions",
    "resolve_market_rules",
    "venue",
    "write_financing",
]
