"""The batched accounting core (pure NumPy; never imports gymnasium)."""

from sb3_trading.sim.accrual import Accrual, accrue_yield, self_financing_value
from sb3_trading.sim.core import (
    BPS,
    CostModel,
    Fills,
    Portfolio,
    equity_fractions,
    fill_trades,
    portfolio_value,
    round_to_lots,
)

__all__ = [
    "BPS",
    "Accrual",
    "CostModel",
    "Fills",
    "Portfolio",
    "accrue_yield",
    "equity_fractions",
    "fill_trades",
    "portfolio_value",
    "round_to_lots",
    "self_financing_value",
]
