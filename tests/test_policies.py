"""Transformer and LSTM extractors and the policies built on them."""

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import sb3_trading  # noqa: F401  (registers env IDs and policy aliases)
from sb3_trading.data.synthetic import make_echo_market
from sb3_trading.evaluation import backtest
from sb3_trading.policies import (
    LstmExtractor,
    LstmPolicy,
    MaskableLstmPolicy,
    MaskableTransformerPolicy,
    TransformerExtractor,
    TransformerPolicy,
)

TINY = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "seed": 0, "device": "cpu"}
EXTRACTOR_KWARGS = {
    "TransformerPolicy": {"d_model": 16, "n_heads": 2, "n_layers": 1, "pooling": "attention"},
    "LstmPolicy": {"hidden_size": 16, "bidirectional": True},
}
PPO_ENVS = {"sb3_trading/MultiAsset-v0": {"window": 8}, "sb3_trading/LeveragedPair-v0": {"window": 10}}
MASKED_ENVS = {
    "sb3_trading/MaskedTrading-v0": {"window": 16},
    "sb3_trading/MaskedTrading-v0 (session and volatility rules)": {
        "window": 12,
        "session_bars": 5,
        "session_close": 4,
        "max_volatility": 0.03,
    },
}


def policy_kwargs(name: str) -> dict:
    return {"net_arch": [16], "features_extractor_kwargs": EXTRACTOR_KWARGS[name]}


@pytest.mark.parametrize("policy", ["TransformerPolicy", "LstmPolicy"])
@pytest.mark.parametrize("env_id", list(PPO_ENVS))
def test_ppo_trains_with_each_policy(env_id, policy):
    env = make_vec_env(env_id, n_envs=2, env_kwargs={**PPO_ENVS[env_id], "render_mode": None})
    model = PPO(policy, env, policy_kwargs=policy_kwargs(policy), **TINY).learn(256)
    assert type(model.policy) is {"TransformerPolicy": TransformerPolicy, "LstmPolicy": LstmPolicy}[policy]
    assert model.num_timesteps >= 256


@pytest.mark.parametrize("policy", ["TransformerPolicy", "LstmPolicy"])
@pytest.mark.parametrize("setup", list(MASKED_ENVS))
def test_maskable_ppo_trains_with_each_policy(setup, policy):
    env = make_vec_env(setup.split(" ")[0], n_envs=2, env_kwargs={**MASKED_ENVS[setup], "render_mode": None})
    model = MaskablePPO(policy, env, policy_kwargs=policy_kwargs(policy), **TINY).learn(256)
    expected = {"TransformerPolicy": MaskableTransformerPolicy, "LstmPolicy": MaskableLstmPolicy}[policy]
    assert type(model.policy) is expected


def test_policies_by_class_and_explicit_maskable_alias():
    env = gym.make("sb3_trading/MaskedTrading-v0", window=8)
    assert type(MaskablePPO("MaskableTransformerPolicy", env, device="cpu").policy) is MaskableTransformerPolicy
    assert type(MaskablePPO(MaskableLstmPolicy, env, device="cpu").policy) is MaskableLstmPolicy
    box_env = gym.make("sb3_trading/MultiAsset-v0", window=4)
    assert type(PPO(TransformerPolicy, box_env, device="cpu").policy) is TransformerPolicy


def test_device_auto_follows_the_hardware():
    model = PPO("LstmPolicy", gym.make("sb3_trading/MultiAsset-v0", window=4), device="auto")
    assert model.device.type == ("cuda" if th.cuda.is_available() else "cpu")
    assert next(model.policy.parameters()).device.type == model.device.type


def test_save_load_in_fresh_process_gives_same_actions(tmp_path):
    """Each policy: save a .zip, reload with plain PPO/MaskablePPO.load in a new interpreter, compare actions."""
    cases = []
    for name in ("TransformerPolicy", "LstmPolicy"):
        for algo, env_id, kwargs in (
            (PPO, "sb3_trading/MultiAsset-v0", {"window": 8}),
            (MaskablePPO, "sb3_trading/MaskedTrading-v0", {"window": 16}),
        ):
            env = gym.make(env_id, **kwargs)
            model = algo(name, env, policy_kwargs=policy_kwargs(name), **TINY).learn(64)
            obs = [env.reset(seed=s)[0] for s in range(6)]
            batch = {key: np.stack([o[key] for o in obs]) for key in obs[0]}
            predict_kwargs = {"action_masks": np.stack([env.unwrapped.action_masks()] * 6)} if algo is MaskablePPO else {}
            actions, _ = model.predict(batch, deterministic=True, **predict_kwargs)
            stem = tmp_path / f"{algo.__name__}_{name}"
            model.save(stem.with_suffix(".zip"))
            np.savez(stem.with_suffix(".npz"), expected=actions, **batch, **predict_kwargs)
            cases.append((algo.__name__, str(stem)))

    script = textwrap.dedent(
        f"""
        import numpy as np
        import sb3_trading
        from sb3_contrib import MaskablePPO
        from stable_baselines3 import PPO
        for algo_name, stem in {cases!r}:
            algo = {{"PPO": PPO, "MaskablePPO": MaskablePPO}}[algo_name]
            saved = dict(np.load(stem + ".npz"))
            expected = saved.pop("expected")
            kwargs = {{"action_masks": saved.pop("action_masks")}} if "action_masks" in saved else {{}}
            model = algo.load(stem + ".zip", device="cpu")
            actions, _ = model.predict(saved, deterministic=True, **kwargs)
            np.testing.assert_array_equal(actions, expected, err_msg=stem)
            print(algo_name, type(model.policy).__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.count("\n") == 4
    assert "MaskableTransformerPolicy" in result.stdout and "LstmPolicy" in result.stdout


@pytest.mark.parametrize(
    "policy, kwargs, match",
    [
        ("TransformerPolicy", {"d_model": 30, "n_heads": 4}, "divisible by n_heads"),
        ("TransformerPolicy", {"window": 5}, "window=5 does not match"),
        ("TransformerPolicy", {"pooling": "max"}, "pooling"),
        ("TransformerPolicy", {"dropout": 1.5}, "dropout"),
        ("TransformerPolicy", {"n_layers": 0}, "n_layers"),
        ("LstmPolicy", {"window": 3}, "window=3 does not match"),
        ("LstmPolicy", {"dropout": 0.2}, "n_layers > 1"),
        ("LstmPolicy", {"hidden_size": -4}, "hidden_size"),
    ],
)
def test_bad_policy_kwargs_raise_at_construction(policy, kwargs, match):
    env = gym.make("sb3_trading/MultiAsset-v0", window=8)
    with pytest.raises(ValueError, match=match):
        PPO(policy, env, policy_kwargs={"features_extractor_kwargs": kwargs}, device="cpu")


@pytest.mark.parametrize("extractor", [TransformerExtractor, LstmExtractor])
def test_extractors_need_the_sb3_trading_layout(extractor):
    with pytest.raises(TypeError, match="Dict observation"):
        extractor(gym.spaces.Box(-1, 1, (4,)))


@pytest.mark.parametrize("policy", ["TransformerPolicy", "LstmPolicy"])
def test_dropout_follows_training_mode(policy):
    kwargs = (
        {"d_model": 16, "n_heads": 2, "dropout": 0.5} if policy == "TransformerPolicy" else {"n_layers": 2, "dropout": 0.5}
    )
    model = PPO(policy, gym.make("sb3_trading/MultiAsset-v0", window=6), policy_kwargs={"features_extractor_kwargs": kwargs})
    obs, _ = model.policy.obs_to_tensor(model.observation_space.sample())
    model.policy.set_training_mode(False)
    with th.no_grad():
        assert th.equal(model.policy.extract_features(obs), model.policy.extract_features(obs))
    model.policy.set_training_mode(True)
    with th.no_grad():
        assert not th.equal(model.policy.extract_features(obs), model.policy.extract_features(obs))


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
def test_transformer_output_shape_and_positional_encoding(pooling):
    space = gym.make("sb3_trading/MultiAsset-v0", window=6).observation_space
    extractor = TransformerExtractor(space, d_model=8, n_heads=2, pooling=pooling, positional_encoding="learned")
    obs = {key: th.as_tensor(np.stack([space[key].sample() for _ in range(3)])) for key in space}
    out = extractor(obs)
    assert out.shape == (3, extractor.features_dim) == (3, 8 + space["portfolio"].shape[0])
    # order matters: reversing the window changes the encoding (positions are encoded)
    flipped = {**obs, "market": obs["market"].flip(1)}
    assert not th.allclose(extractor(flipped), out)


@pytest.mark.slow
def test_transformer_learns_a_pattern_an_mlp_on_the_last_bar_cannot():
    """The echo market: the next return's drift is the sign of the return 3 bars before the last one.

    An MLP that sees the last bar (window=1) cannot predict it; the transformer sees an 8-bar window.
    Both train with identical PPO settings and seeds; the transformer must earn more on held-out data.
    """
    data = make_echo_market(n_steps=3000, lag=4, seed=0)
    train, test = data.split(0.8)

    def held_out_return(policy, window, kwargs):
        env_kwargs = {"indicators": ["log_return"], "window": window, "commission_bps": 1.0}
        normalizer = gym.make("sb3_trading/MultiAsset-v0", data=train, **env_kwargs).unwrapped.normalizer
        vec_env = make_vec_env(
            "sb3_trading/MultiAsset-v0",
            n_envs=8,
            seed=0,
            env_kwargs={
                **env_kwargs,
                "data": train,
                "normalizer": normalizer,
                "random_start": True,
                "episode_length": 128,
                "render_mode": None,
            },
        )
        model = PPO(policy, vec_env, n_steps=128, batch_size=256, gamma=0.5, policy_kwargs=kwargs, seed=0, device="cpu")
        model.learn(30_000)
        test_env = gym.make("sb3_trading/MultiAsset-v0", data=test, normalizer=normalizer, **env_kwargs)
        return backtest(model, test_env).metrics["total_return"]

    mlp = held_out_return("MultiInputPolicy", 1, {"net_arch": [64, 64]})
    transformer = held_out_return(
        "TransformerPolicy", 8, {"net_arch": [64], "features_extractor_kwargs": {"d_model": 32, "n_heads": 4, "n_layers": 1}}
    )
    assert transformer > mlp + 0.5, (transformer, mlp)
