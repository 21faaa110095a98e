"""The batched accounting core (pure NumPy; never imports gymnasium)."""

from sb3_trading.sim.accrual import Accrual, accrue_yield, self_financing_value
from sb3_trading.sim.core import (
    Fills,
    Portfolio,
    equity_fractions,
    fill_trades,
    portfolio_value,
    round_to_lots,
)
from sb3_trading.sim.frictions import (
    BPS,
    VENUES,
    Brackets,
    CostModel,
    Financing,
    Frictions,
    Margin,
    MarketRules,
    Venue,
    build_frictions,
    resolve_market_rules,
    venue,
)

__all__ = [
    "BPS",
    "VENUES",
    "Accrual",
    "Brackets",
    "CostModel",
    "Financing",
    "Frictions",
    "Margin",
    "MarketRules",
    "Venue",
    "build_frictions",
    "resolve_market_rules",
    "venue",
    "Fills",
    "Portfolio",
    "accrue_yield",
    "equity_fractions",
    "fill_trades",
    "portfolio_value",
    "round_to_lots",
    "self_financing_value",
]
