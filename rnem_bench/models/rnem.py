"""R-NEM (paper, section 2.2): N-EM whose recurrence sees pairwise, attention-weighted effects
of the other components, Upsilon^{R-NEM} of eq. (5)."""

from rnem_bench.models.nem import NEMConfig

CONFIG = NEMConfig(interaction="relational", attention=True)
