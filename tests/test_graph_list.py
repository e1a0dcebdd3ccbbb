"""The decision graph's text alternative (webapp/graph.py `as_html`): the same steps, options and
flags as the picture, in words, so that a screen reader, a printout and a phone get all of it."""

from __future__ import annotations

import html
import re

from rules import assess
from webapp.graph import as_html, decision_graph, section


def test_the_list_names_every_step_option_and_flag_the_graph_draws() -> None:
    plan = assess({"age": {"value": 4, "unit": "weeks"}, "conditions": [
        {"presentation": "infantile_hypertrophic_pyloric_stenosis", "bilious_vomiting": True, "diagnosis_confirmed": True}]})
    listed = html.unescape(as_html(plan))
    dot = decision_graph(plan)
    assert listed.count("<li><strong>") == len(plan.steps)  # a numbered item per step, in order
    for step in plan.steps:
        assert f"<strong>{step.title}</strong>" in listed
    for option in plan.options:
        if any(option.id in step.options for step in plan.steps):
            assert option.name in listed
    stop = next(f for f in plan.standing_flags if f.severity == "stop")
    assert f"because of: Stop: {stop.meaning}" in listed
    assert "shape=octagon" in dot  # the picture draws the same flag


def test_the_picture_is_a_lazy_image_in_a_folded_section_with_its_words() -> None:
    plan = assess({"age": {"value": 45}, "conditions": [
        {"presentation": "achalasia", "subtype": "type_iii", "diagnosis_confirmed": True, "malignancy_excluded": True}]})
    folded = section(plan, "plan/graph.svg?p=achalasia&x=<b>")
    assert folded.startswith('<details class="mx-fold" data-key="graph">')  # closed: the picture is not fetched
    image = re.search(r"<img [^>]*>", folded).group(0)
    assert 'loading="lazy"' in image and 'src="plan/graph.svg?p=achalasia&amp;x=&lt;b&gt;"' in image  # escaped
    assert "The graph in words:" in folded and " open" not in folded.split(">")[0]
    assert section(plan, "u", expanded=True).startswith('<details class="mx-fold" data-key="graph" open>')
