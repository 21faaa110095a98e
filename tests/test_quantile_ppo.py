"""QuantilePPO / MaskableQuantilePPO: learned quantiles, risk preference, masks, save/load."""

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy

import sb3_trading  # noqa: F401
from sb3_trading.algos import ALGOS, MaskableQuantilePPO, QuantilePPO, get_algo
from sb3_trading.common.envs import MixtureRewardEnv, TwoArmRiskEnv
from sb3_trading.policies import TransformerExtractor

QUANTILE_TOLERANCE = 0.35  # reward units; the mixture's components sit 5 units apart with std 0.3


def test_learned_quantiles_match_the_analytic_mixture_quantiles():
    env = MixtureRewardEnv(weight_1=0.3, mean_1=-2.0, std_1=0.3, mean_2=3.0, std_2=0.3)
    model = QuantilePPO(
        "MlpPolicy",
        make_vec_env(MixtureRewardEnv, n_envs=4, seed=0),
        n_steps=64,
        batch_size=128,
        n_epochs=10,
        learning_rate=3e-3,
        huber_kappa=0.05,
        policy_kwargs={"n_quantiles": 25, "net_arch": [16]},
        seed=0,
        device="cpu",
    )
    model.learn(8_000)
    learned = np.sort(model.policy.predict_quantiles(th.zeros(1, 1)).detach().numpy()[0])
    taus = model.policy.value_net.taus.numpy()
    analytic = np.array([env.quantile(float(tau)) for tau in taus])
    # away from the jump of the CDF at tau = 0.3 (where the quantile lies anywhere in the empty gap)
    away = np.abs(taus - 0.3) >= 0.05
    np.testing.assert_allclose(learned[away], analytic[away], atol=QUANTILE_TOLERANCE)
    assert learned[~away].min() >= -2.6 and learned[~away].max() <= 3.2
    assert model.logger.name_to_value["train/value_spread"] > 4.0  # the spread of the two components
    assert "train/quantile_loss" in model.logger.name_to_value


@pytest.mark.parametrize("risk, prefers_risky", [("mean", True), ("cvar", False)])
def test_mean_mode_takes_risk_and_cvar_mode_avoids_the_tail(risk, prefers_risky):
    model = QuantilePPO(
        "MlpPolicy",
        make_vec_env(TwoArmRiskEnv, n_envs=4, seed=0),
        risk=risk,
        alpha=0.1,
        gamma=1.0,
        gae_lambda=0.5,
        n_steps=64,
        batch_size=64,
        n_epochs=10,
        learning_rate=1e-3,
        huber_kappa=0.1,
        policy_kwargs={"n_quantiles": 25, "net_arch": [32]},
        seed=0,
        device="cpu",
    )
    model.learn(12_000)
    action, _ = model.predict(np.array([1.0, 0.0, 0.0], dtype=np.float32), deterministic=True)
    assert bool(action == 1) is prefers_risky
    safe, risky = model.policy.predict_values(th.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])).detach().numpy().ravel()
    if risk == "mean":
        assert risky > safe  # E = 1.25 > 1
    else:
        assert risky < safe  # CVaR(10 %) = -10 < 1


class MaskAudit(BaseCallback):
    """Records every executed action that its mask forbade (must stay empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid = 0
        self.steps = 0

    def _on_step(self) -> bool:
        self.invalid += sum(bool(info["invalid_action"]) for info in self.locals["infos"])
        self.steps += len(self.locals["infos"])
        return True


def test_masked_variant_never_takes_a_masked_action():
    env = make_vec_env(
        "sb3_trading/MaskedTrading-v0", n_envs=2, seed=0, env_kwargs={"window": 16, "max_drawdown": 0.02, "render_mode": None}
    )
    audit = MaskAudit()
    model = MaskableQuantilePPO("MultiInputPolicy", env, n_steps=128, batch_size=128, n_epochs=2, seed=0, device="cpu")
    model.learn(3_000, callback=audit)
    assert audit.steps >= 3_000 and audit.invalid == 0


def test_works_with_the_transformer_extractor_and_registry():
    env = gym.make("sb3_trading/MultiAsset-v0", window=8, episode_length=64, random_start=True)
    model = QuantilePPO(
        "MultiInputPolicy",
        env,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={
            "features_extractor_class": TransformerExtractor,
            "features_extractor_kwargs": {"d_model": 16, "n_heads": 2, "n_layers": 1},
            "n_quantiles": 32,
        },
        device="cpu",
    ).learn(128)
    assert isinstance(model.policy.features_extractor, TransformerExtractor)
    assert ALGOS["qppo"] is QuantilePPO and get_algo("quantile_ppo") == ("qppo", QuantilePPO)


def test_save_load_in_fresh_process_gives_same_actions(tmp_path):
    env = gym.make("sb3_trading/MultiAsset-v0", episode_length=64, random_start=True)
    model = QuantilePPO(
        "MultiInputPolicy", env, risk="cvar", alpha=0.2, n_steps=64, batch_size=64, policy_kwargs={"n_quantiles": 27}
    )
    model.learn(128)
    obs = [env.reset(seed=s)[0] for s in range(5)]
    batch = {key: np.stack([o[key] for o in obs]) for key in obs[0]}
    expected, _ = model.predict(batch, deterministic=True)
    values = model.policy.predict_values(model.policy.obs_to_tensor(batch)[0]).detach().numpy()
    model.save(tmp_path / "qppo.zip")
    np.savez(tmp_path / "obs.npz", expected=expected, values=values, **batch)
    script = textwrap.dedent(
        f"""
        import numpy as np
        import sb3_trading
        from sb3_trading.algos import QuantilePPO
        saved = dict(np.load({str(tmp_path / "obs.npz")!r}))
        expected, values = saved.pop("expected"), saved.pop("values")
        model = QuantilePPO.load({str(tmp_path / "qppo.zip")!r}, device="cpu")
        assert (model.risk, model.alpha, model.policy.n_quantiles) == ("cvar", 0.2, 27)
        actions, _ = model.predict(saved, deterministic=True)
        np.testing.assert_array_equal(actions, expected)
        got = model.policy.predict_values(model.policy.obs_to_tensor(saved)[0]).detach().numpy()
        np.testing.assert_allclose(got, values, rtol=1e-6)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"risk": "var"}, "risk"),
        ({"alpha": 0.0}, "alpha"),
        ({"huber_kappa": 0.0}, "huber_kappa"),
        ({"clip_range_vf": 0.2}, "clip_range_vf"),
        ({"policy_kwargs": {"n_quantiles": 1}}, "n_quantiles"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantilePPO("MlpPolicy", TwoArmRiskEnv(), device="cpu", **kwargs)


def test_plain_policy_class_is_rejected():
    with pytest.raises(ValueError, match="quantile-critic policy"):
        QuantilePPO(ActorCriticPolicy, TwoArmRiskEnv(), device="cpu")
