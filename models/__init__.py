"""The contract: the input (`Presentation`, built per knowledge base), the output (`Plan`) and the
schema of the knowledge files."""

from models.plan import Basis, Flag, Plan, PlanOption, PlanStep, WhyNot
from models.presentation import Age, Condition, Presentation, PriorTreatment

__all__ = [
    "Age",
    "Basis",
    "Condition",
    "Flag",
    "Plan",
    "PlanOption",
    "PlanStep",
    "Presentation",
    "PriorTreatment",
    "WhyNot",
]
