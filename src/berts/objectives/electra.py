"""ELECTRA's replaced-token detection as a pretraining objective: a model pair (a small MLM
generator + the discriminator), berts.model.electra; its settings are the run config's ``electra``
section; its training and evaluation are berts.tasks.electra's."""
from berts.objectives.registry import ObjectiveSpec

SPEC = ObjectiveSpec(
    name="electra", kind="pair", help="ELECTRA: replaced-token detection (generator + discriminator)",
    model="berts.model.electra:ElectraForPreTraining", config="electra")
