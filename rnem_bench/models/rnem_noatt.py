"""R-NEM without attention (paper, section 4.1 ablation): eq. (5) without MLP_att, alpha = 1."""

from rnem_bench.models.nem import NEMConfig

CONFIG = NEMConfig(interaction="relational", attention=False)
