"""CLI: ``rnem-bench dqn train|eval`` and ``rnem-bench generate invaders``.

gymnasium and ale-py load only when a command runs, so ``--help`` works without them and a missing
extra is a one-line error naming ``pip install rnem-bench[atari]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from click.core import ParameterSource

from rnem_bench.data.cli_options import custom_recipe, generation_options, run_generation
from rnem_bench.errors import RnemBenchError
from rnem_bench.signals import Interrupted, resume_command


@click.group()
def dqn():
    """Train and evaluate the DQN policies that play while `generate invaders` records."""


# ------------------------------------------------------------------------------------- train
@dqn.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run directory (config, log, checkpoints).")
@click.option("--steps", type=int, default=10_000_000, show_default=True, help="Agent steps in total (4 raw frames each).")
@click.option("--resume", is_flag=True, help="Continue the run in --out (from its train.pt).")
@click.option("--max-minutes", type=float, default=None, help="Stop (and checkpoint) after this many minutes.")
@click.option("--game", default="SpaceInvaders", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto (cuda when present), cpu, cuda, cuda:1 ...")
@click.option("--buffer-size", type=int, default=200_000, show_default=True, help="Replay frames (7 KB each).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option("--learning-starts", type=int, default=20_000, show_default=True, help="Agent steps before the first update.")
@click.option("--train-every", type=int, default=4, show_default=True, help="Agent steps per gradient step.")
@click.option("--target-update", type=int, default=8_000, show_default=True, help="Agent steps between target-network copies.")
@click.option("--eps-decay-steps", type=int, default=250_000, show_default=True, help="Agent steps over which epsilon falls to --eps-end.")
@click.option("--eps-end", type=float, default=0.01, show_default=True)
@click.option("--sticky-actions", type=float, default=0.0, show_default=True)
@click.option("--double/--no-double", default=True, show_default=True, help="Double-DQN target (off: Nature DQN's max).")
@click.option("--checkpoint-every", type=int, default=100_000, show_default=True, help="Agent steps between checkpoints.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train(ctx: click.Context, out: Path, resume: bool, max_minutes: float | None, quiet: bool, **options) -> None:
    """Train a Nature-DQN on an Atari game; writes OUT/policy.pt for `--policy dqn:OUT/policy.pt`.

    With --resume, options left out take the saved run's values. Ctrl-C or SIGTERM stops after
    the agent step in flight and saves train.pt and policy.pt first (exit status 130 / 143).
    """
    from rnem_bench.dqn.trainer import DQNConfig, saved_config, train_dqn

    saved = saved_config(out) if resume and out.is_dir() else None
    if saved is not None:
        given = {k: v for k, v in options.items() if ctx.get_parameter_source(k) != ParameterSource.DEFAULT}
        config = DQNConfig.from_dict({**asdict(saved), **given})
    else:
        config = DQNConfig(**options)
    try:
        summary = train_dqn(config, out, resume=resume, max_minutes=max_minutes, progress=not quiet)
    except Interrupted as stop:  # Ctrl-C or SIGTERM: train.pt is saved; exit 130 / 143
        click.echo(f"{stop}; resume with: {resume_command(ctx, out)}", err=True)
        raise
    click.echo(json.dumps(summary))
    click.echo(f"policy: {out / 'policy.pt'}  (record with: rnem-bench generate invaders --policy dqn:{out / 'policy.pt'})")


# -------------------------------------------------------------------------------------- eval
def _policy_path(target: str) -> Path:
    """A run directory means its policy.pt."""
    path = Path(target)
    return path / "policy.pt" if path.is_dir() else path


@dqn.command("eval")
@click.argument("policy")
@click.option("--episodes", type=int, default=30, show_default=True)
@click.option("--epsilon", type=float, default=0.05, show_default=True, help="Chance of a random action (DQN evaluation setting).")
@click.option("--game", default=None, help="Default: the checkpoint's game, else SpaceInvaders.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sticky-actions", type=float, default=0.0, show_default=True)
@click.option("--max-episode-frames", type=int, default=108_000, show_default=True, help="Raw frames before an episode is cut.")
@click.option("--compare-random/--no-compare-random", default=True, show_default=True,
              help="Also play the same episodes with the random policy.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the figures to this JSON file.")
@click.option("--curve", type=click.Path(path_type=Path), default=None,
              help="POLICY is a run directory: also draw its learning curve (log.jsonl) to this PNG.")
def eval_(policy, episodes, epsilon, game, seed, sticky_actions, max_episode_frames, compare_random, device,
          json_out, curve):
    """Mean episode return of POLICY (a DQN checkpoint, a run directory, or 'random'), and of the
    random policy on the same episode seeds. Scores are the unclipped game score of whole games."""
    from rnem_bench.dqn.ale import AtariGame, EnvConfig
    from rnem_bench.dqn.evaluate import evaluate_policy, summarize
    from rnem_bench.dqn.checkpoint import load_network, load_policy_record
    from rnem_bench.dqn.network import GreedyQPolicy, torch_device
    from rnem_bench.dqn.policy import RandomPolicy

    if episodes < 1:
        raise RnemBenchError(f"--episodes must be >= 1, got {episodes}")
    if not 0.0 <= epsilon <= 1.0:
        raise RnemBenchError(f"--epsilon must be in [0, 1], got {epsilon}")
    device = torch_device(device)
    path = None if policy == "random" else _policy_path(policy)
    if path is not None and game is None:
        game = load_policy_record(path)["game"]
    env = EnvConfig(game=game or "SpaceInvaders", sticky_actions=sticky_actions, max_episode_frames=max_episode_frames)
    atari = AtariGame(env)
    players = {}
    if path is not None:
        players[str(path)] = GreedyQPolicy(load_network(path, env.game, atari.n_actions), epsilon, device)
    if path is None or compare_random:
        players["random"] = RandomPolicy(atari.n_actions)
    rows = {}
    for name, player in players.items():
        stats = summarize(evaluate_policy(player, env, episodes, seed=seed, game=atari))
        rows[name] = stats
        click.echo(f"{name}: mean return {stats['mean']:.1f} +- {stats['std']:.1f} over {stats['episodes']} episodes "
                   f"(min {stats['min']:.0f}, max {stats['max']:.0f}, {stats['mean_steps']:.0f} agent steps on average)")
    if len(rows) == 2:
        dqn_mean, random_mean = (rows[k]["mean"] for k in players)
        verdict = "better than" if dqn_mean > random_mean else "NOT better than"
        click.echo(f"the DQN policy is {verdict} random ({dqn_mean:.1f} vs {random_mean:.1f}: "
                   f"{dqn_mean / max(random_mean, 1e-9):.2f}x)")
    if json_out is not None:
        record = {"game": env.game, "epsilon": epsilon, "seed": seed, "episodes": episodes,
                  "sticky_actions": sticky_actions, "max_episode_frames": max_episode_frames, "policies": rows}
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(record, indent=2) + "\n")
    if curve is not None:
        from rnem_bench.dqn.figures import save_learning_curve

        if not Path(policy).is_dir():
            raise RnemBenchError("--curve needs POLICY to be a run directory (it reads its log.jsonl)")
        click.echo(f"wrote {save_learning_curve(policy, curve, random_mean=rows.get('random', {}).get('mean'))}")


# --------------------------------------------------------------------------- generate invaders
@click.command("invaders")
@generation_options
@click.option("--policy", default="random", show_default=True, help="'random' or 'dqn:PATH' (a `dqn train` checkpoint).")
@click.option("--epsilon", type=float, default=0.05, show_default=True, help="Chance of a random action for DQN policies.")
@click.option("--sticky-actions", type=float, default=0.0, show_default=True, help="Chance per raw frame that the previous action repeats.")
@click.option("--game", default="SpaceInvaders", show_default=True, help="ALE game (gymnasium spelling).")
@click.option("--steps", type=int, default=25, show_default=True, help="Model steps; steps+1 frames are stored.")
@click.option("--image-size", type=int, default=84, show_default=True)
@click.option("--overlap", is_flag=True, help="Start a sequence at every frame (overlapping sequences).")
def generate_invaders(n_seq, out, seed, workers, scheduler, chunk_size, quiet, policy, epsilon, sticky_actions, game,
                      steps, image_size, overlap):
    """Space Invaders (or another ALE game) rollouts: binary 84x84 frames and the agent's actions."""
    from rnem_bench.generators.invaders import Params, pin_policy

    params = Params(game=game, steps=steps, image_size=image_size, policy=policy, epsilon=epsilon,
                    sticky_actions=sticky_actions, overlap=overlap)
    params = pin_policy(params)
    recipe = custom_recipe("invaders", params, n_seq, seed, chunk_size)
    if not quiet:
        click.echo(f"recipe: {json.dumps(asdict(params))}")
    run_generation(recipe, out, f"invaders-{recipe.fingerprint()}", workers, scheduler, quiet)
