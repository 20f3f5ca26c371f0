"""LSTM baseline (appendix A): the RNN baseline with the recurrent layer replaced by an LSTM."""

from rnem_bench.models.nem import NEMConfig

CONFIG = NEMConfig(interaction="independent", cell="lstm", fixed_k=1)
