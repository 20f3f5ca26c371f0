"""RNN baseline (appendix A): RNN-EM with K = 1, i.e. a plain recurrent autoencoder fed the
difference between its last prediction and the noisy frame (gamma is identically 1)."""

from rnem_bench.models.nem import NEMConfig

CONFIG = NEMConfig(interaction="independent", fixed_k=1)
