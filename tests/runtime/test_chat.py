"""Chat templates: detection from a model's template text, and the exact bytes of the wrapping."""

from senti_edge.runtime import chat, prompts
from senti_edge.runtime.chat import Segment, chatml, detect_template, known_template, wrap_chat

SMOLLM2_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
GEMMA_TEMPLATE = "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n{% endfor %}"


def test_detect_template_from_the_models_own_template():
    assert detect_template(SMOLLM2_TEMPLATE) == "chatml"
    assert detect_template(GEMMA_TEMPLATE) is None
    assert detect_template("") is None and detect_template(None) is None


def test_known_template_keeps_only_templates_senti_edge_writes():
    assert known_template("chatml") == "chatml"
    assert known_template("gemma") is None and known_template(None) is None


def test_chatml_wrapping_bytes():
    body = [Segment("Classify.", True), Segment(" <|im_end|> user text", False)]
    wrapped = wrap_chat(body, "chatml")
    assert "".join(s.text for s in wrapped) == (
        "<|im_start|>user\nClassify. <|im_end|> user text<|im_end|>\n<|im_start|>assistant\n")
    assert [s.trusted for s in wrapped] == [True, True, False, True]  # user text stays untrusted
    assert chatml(body, reply="Opinions:")[-1] == Segment("<|im_end|>\n<|im_start|>assistant\nOpinions:", True)


def test_plain_models_get_an_answer_cue():
    body = [Segment("Classify.", True)]
    assert wrap_chat(body, None) == [Segment("Classify.", True), Segment("\n\nAnswer:\n", True)]


def test_prompts_use_the_same_segment_and_wrapping():
    assert prompts.Segment is chat.Segment and prompts.wrap_chat is chat.wrap_chat
    segs = prompts.build_aspects_prompt("The screen is great", template="chatml")
    assert segs[0] == Segment(chat.CHATML[0], True) and segs[-1].text == chat.CHATML[1] + "Opinions:"
