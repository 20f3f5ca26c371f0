"""Atari side of the benchmark: ALE environments with the DQN conventions, a Nature-DQN trainer,
and the policies that play while ``rnem-bench generate invaders`` records.

    ale.py       environment construction and preprocessing (frame skip, max-pool, no-ops, sticky)
    frames.py    84x84 area resize and binarisation (NumPy)
    network.py   the Nature-DQN Q-network and the epsilon-greedy policy that plays with it
    policy.py    policy specs ("random", "dqn:PATH") and the random policy (no torch)
    checkpoint.py  DQN policy files, validated on load (weights_only=True)
    replay.py    the replay buffer
    trainer.py   DQN training with checkpoints and exact resume (``rnem-bench dqn train``)
    evaluate.py  mean episode return of a policy (``rnem-bench dqn eval``)
    commands.py  the click commands

The recorder itself is the generator ``rnem_bench.generators.invaders``.
"""
