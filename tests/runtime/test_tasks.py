import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime.tasks import TASKS, get_task, render_instruction


def test_builtin_tasks_and_custom_labels():
    assert get_task("polarity").labels == ("negative", "neutral", "positive")
    assert get_task("sst2").labels == ("negative", "positive") and TASKS["sst2"] is TASKS["binary"]
    custom = get_task("polarity", ["urgent", "routine"])
    assert custom.labels == ("urgent", "routine")
    with pytest.raises(SentiEdgeError, match="unknown task"):
        get_task("sarcasm-level")
    with pytest.raises(SentiEdgeError, match="distinct"):
        get_task("polarity", ["a", "a"])
    with pytest.raises(SentiEdgeError, match="two or more"):
        get_task("polarity", ["only"])


def test_custom_labels_get_a_neutral_instruction_listed_in_one_order():
    a = get_task("polarity", ["urgent", "routine", "spam"])
    b = get_task("polarity", ["spam", "urgent", "routine"])
    assert a.name == "custom" and a.labels == ("urgent", "routine", "spam")  # results keep the given order
    assert render_instruction(a) == render_instruction(b) == "Classify each text as one of: routine, spam, urgent."
    perm = get_task("emotion", ["joy", "anger", "optimism", "sadness"])  # the task's own labels
    assert perm.name == "emotion" and render_instruction(perm) == render_instruction(get_task("emotion"))
    assert "stance" in render_instruction(get_task("stance", ["pro", "con"]))  # stance keeps its instruction


def test_user_instruction_replaces_the_tasks_and_keeps_other_braces():
    t = get_task("polarity", ["a", "b"], "Sort {these} messages into {labels}.")
    assert render_instruction(t) == "Sort {these} messages into a, b."
    t = get_task("binary", None, "Is the writer happy?")
    assert t.labels == ("negative", "positive") and render_instruction(t) == "Is the writer happy? Answer with one of: negative, positive."
    with pytest.raises(SentiEdgeError, match="--instruction is empty"):
        get_task("polarity", None, "  ")
    with pytest.raises(SentiEdgeError, match="generative task 'aspects'"):
        get_task("aspects", ["x", "y"])


def test_stance_can_say_none():
    assert get_task("stance").labels == ("against", "favor", "none")
