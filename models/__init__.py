"""The contract: input (`Presentation`), output (`Assessment`) and the knowledge-file schema."""

from models.assessment import Assessment, Basis, RedFlag, Suggestion, WhyNot
from models.presentation import Age, Condition, Presentation, PriorTreatment

__all__ = [
    "Age",
    "Assessment",
    "Basis",
    "Condition",
    "Presentation",
    "PriorTreatment",
    "RedFlag",
    "Suggestion",
    "WhyNot",
]
