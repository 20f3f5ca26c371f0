"""The evaluation protocol's fixed numbers (paper, section 4 and figure 4), in one place: the
Evaluator scores with them and the training harness validates with them (the late steps)."""

SIM_OBSERVE = 10   # real frames a model sees before it simulates
SIM_STEPS = 10     # frames it then predicts from its own output
LAST_STEPS = 10    # losses are also reported as the mean over the last this many steps
