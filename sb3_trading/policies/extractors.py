"""Feature extractors for the shared sb3_trading observation ``{"market": (window, F), "portfolio": (P,)}``.

Both extractors encode the market window into a vector, then concatenate the
portfolio vector: output ``(batch, encoder_dim + P)``. They keep no state
between steps (the look-back travels in the observation) and their dropout
follows SB3's ``set_training_mode``.
"""

from __future__ import annotations

import math

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_trading.common.validation import check_int
from sb3_trading.envs.trading_env import MARKET_KEY, PORTFOLIO_KEY

POOLINGS = ("last", "mean", "attention")
POSITIONAL_ENCODINGS = ("sinusoidal", "learned")


def _market_shapes(observation_space: spaces.Space, window: int | None) -> tuple[int, int, int]:
    """``(window, n_features, portfolio_size)`` of an sb3_trading observation space, validated."""
    if not isinstance(observation_space, spaces.Dict) or set(observation_space.spaces) != {MARKET_KEY, PORTFOLIO_KEY}:
        raise TypeError(
            f"sb3_trading extractors need the Dict observation {{'{MARKET_KEY}': (window, F), '{PORTFOLIO_KEY}': (P,)}} "
            f"of an sb3_trading env, got {observation_space}"
        )
    market, portfolio = observation_space[MARKET_KEY], observation_space[PORTFOLIO_KEY]
    if not isinstance(market, spaces.Box) or len(market.shape) != 2:
        raise ValueError(f"observation '{MARKET_KEY}' must be a Box of shape (window, F), got {market}")
    if not isinstance(portfolio, spaces.Box) or len(portfolio.shape) != 1:
        raise ValueError(f"observation '{PORTFOLIO_KEY}' must be a Box of shape (P,), got {portfolio}")
    obs_window, n_features = market.shape
    if window is not None and window != obs_window:
        raise ValueError(
            f"features_extractor_kwargs window={window} does not match the env's market window {obs_window}; "
            "set the env's window (env_kwargs) or drop the extractor's window argument"
        )
    return int(obs_window), int(n_features), int(portfolio.shape[0])


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        check_int(name, value, 1)


def sinusoidal_encoding(length: int, d_model: int) -> th.Tensor:
    """Sinusoidal positional encoding ``(length, d_model)`` (Vaswani et al., 2017)."""
    position = th.arange(length, dtype=th.float32)[:, None]
    div = th.exp(th.arange(0, d_model, 2, dtype=th.float32) * (-math.log(10_000.0) / d_model))
    encoding = th.zeros(length, d_model)
    encoding[:, 0::2] = th.sin(position * div)
    encoding[:, 1::2] = th.cos(position * div)[:, : d_model // 2]
    return encoding


class TransformerExtractor(BaseFeaturesExtractor):
    """Transformer encoder over the market window, pooled, concatenated with the portfolio vector.

    ``market (B, window, F)`` -> linear projection to ``d_model`` + positional encoding ->
    ``n_layers`` pre-norm ``nn.TransformerEncoderLayer`` (``n_heads`` heads) -> pooling
    (``"last"``: the newest bar's token; ``"mean"``: average over the window; ``"attention"``:
    a learned softmax-weighted average) -> ``LayerNorm`` -> concatenated with ``portfolio (B, P)``.
    Attention spans the whole window: every bar in it is at or before ``t``, so nothing leaks.

    :param observation_space: an sb3_trading ``Dict`` observation space.
    :param d_model: token width; must be divisible by ``n_heads``.
    :param n_heads: attention heads.
    :param n_layers: encoder layers.
    :param dim_feedforward: width of each layer's feed-forward block (default ``4 * d_model``).
    :param dropout: dropout in the encoder layers (active only in training mode).
    :param pooling: ``"last"``, ``"mean"`` or ``"attention"``.
    :param positional_encoding: ``"sinusoidal"`` (fixed) or ``"learned"``.
    :param window: optional expected window length; a mismatch with the env raises ``ValueError``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        pooling: str = "last",
        positional_encoding: str = "sinusoidal",
        window: int | None = None,
    ) -> None:
        obs_window, n_features, portfolio_size = _market_shapes(observation_space, window)
        _check_positive(d_model=d_model, n_heads=n_heads, n_layers=n_layers)
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads} (each head gets d_model / n_heads)")
        if dim_feedforward is None:
            dim_feedforward = 4 * d_model
        _check_positive(dim_feedforward=dim_feedforward)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if positional_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(f"positional_encoding must be one of {POSITIONAL_ENCODINGS}, got {positional_encoding!r}")
        super().__init__(observation_space, features_dim=d_model + portfolio_size)
        self.pooling = pooling
        self.input_projection = nn.Linear(n_features, d_model)
        if positional_encoding == "learned":
            self.positional = nn.Parameter(th.zeros(obs_window, d_model))
            nn.init.normal_(self.positional, std=0.02)
        else:
            self.register_buffer("positional", sinusoidal_encoding(obs_window, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.attention_pool = nn.Linear(d_model, 1) if pooling == "attention" else None

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        tokens = self.input_projection(observations[MARKET_KEY]) + self.positional  # (B, window, d_model)
        encoded = self.encoder(tokens)
        if self.pooling == "last":
            pooled = encoded[:, -1]
        elif self.pooling == "mean":
            pooled = encoded.mean(dim=1)
        else:
            weights = th.softmax(self.attention_pool(encoded), dim=1)  # (B, window, 1)
            pooled = (weights * encoded).sum(dim=1)
        return th.cat([self.norm(pooled), observations[PORTFOLIO_KEY]], dim=1)


class LstmExtractor(BaseFeaturesExtractor):
    """LSTM over the market window; its final hidden state concatenated with the portfolio vector.

    ``market (B, window, F)`` -> ``nn.LSTM`` (``n_layers``, ``hidden_size``, optionally bidirectional)
    -> the last layer's final hidden state (both directions when bidirectional) -> concatenated with
    ``portfolio (B, P)``. The LSTM restarts on every observation: it reads the window, not the
    episode (recurrence across steps is RecurrentPPO's job).

    :param observation_space: an sb3_trading ``Dict`` observation space.
    :param hidden_size: LSTM hidden units per direction.
    :param n_layers: stacked LSTM layers.
    :param bidirectional: also read the window newest-to-oldest.
    :param dropout: dropout between LSTM layers (needs ``n_layers > 1``; training mode only).
    :param window: optional expected window length; a mismatch with the env raises ``ValueError``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        hidden_size: int = 64,
        n_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        window: int | None = None,
    ) -> None:
        _, n_features, portfolio_size = _market_shapes(observation_space, window)
        _check_positive(hidden_size=hidden_size, n_layers=n_layers)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if dropout > 0.0 and n_layers == 1:
            raise ValueError("dropout acts between LSTM layers: it needs n_layers > 1")
        directions = 2 if bidirectional else 1
        super().__init__(observation_space, features_dim=hidden_size * directions + portfolio_size)
        self.directions = directions
        self.lstm = nn.LSTM(
            n_features, hidden_size, num_layers=n_layers, batch_first=True, bidirectional=bidirectional, dropout=dropout
        )

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        _, (hidden, _) = self.lstm(observations[MARKET_KEY])  # hidden: (n_layers * directions, B, hidden_size)
        last_layer = hidden[-self.directions :].transpose(0, 1).reshape(hidden.shape[1], -1)
        return th.cat([last_layer, observations[PORTFOLIO_KEY]], dim=1)
