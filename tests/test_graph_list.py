"""The decision graph's text alternative (webapp/graph.py `as_list`): the same steps, options and
flags as the picture, in words, so that a screen reader, a printout and a phone get all of it."""

from __future__ import annotations

from rules import assess
from webapp.graph import as_list, decision_graph


def test_the_list_names_every_step_option_and_flag_the_graph_draws() -> None:
    plan = assess({"age": {"value": 4, "unit": "weeks"}, "conditions": [
        {"presentation": "infantile_hypertrophic_pyloric_stenosis", "bilious_vomiting": True, "diagnosis_confirmed": True}]})
    listed = as_list(plan).replace("\\", "")
    dot = decision_graph(plan)
    for step in plan.steps:
        assert f"{step.order}. **{step.title}**" in listed
    for option in plan.options:
        if any(option.id in step.options for step in plan.steps):
            assert option.name in listed
    stop = next(f for f in plan.standing_flags if f.severity == "stop")
    assert f"because of: Stop: {stop.meaning}" in listed
    assert "shape=octagon" in dot  # the picture draws the same flag
