"""The batched accounting core (pure NumPy; never imports gymnasium)."""

from sb3_trading.sim.core import BPS, CostModel, Fills, Portfolio, fill_trades, portfolio_value, round_to_lots

__all__ = ["BPS", "CostModel", "Fills", "Portfolio", "fill_trades", "portfolio_value", "round_to_lots"]
