"""RNN-EM (Greff et al., 2017): N-EM with an independent recurrence per component,
Upsilon^{RNN-EM}_k(theta) = theta_k."""

from rnem_bench.models.nem import NEMConfig

CONFIG = NEMConfig(interaction="independent")
