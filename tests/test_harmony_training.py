from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.harmony import render, strip_reasoning, training_samples

CONVERSATION = [
    {"role": "system", "content": "Be nice."},
    {"role": "user", "content": "Weather in Tokyo?"},
    {
        "role": "assistant",
        "thinking": "T1-CALL",
        "tool_calls": [{"id": "a", "function": {"name": "get_weather", "arguments": '{"location": "Tokyo"}'}}],
    },
    {"role": "tool", "tool_call_id": "a", "content": "RAINY"},
    {"role": "assistant", "thinking": "T1-FINAL", "content": "Rainy in Tokyo."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "thinking": "T2-THINK", "content": "You are welcome."},
]
OPTIONS = {"current_date": "2025-01-01"}


def _masked_text(sample):
    return harmony_encoding().decode([t for t, keep in zip(sample.input_ids, sample.loss_mask, strict=True) if keep])


def test_one_sample_per_assistant_turn_with_only_its_own_reasoning():
    first, second = training_samples(CONVERSATION, **OPTIONS)
    assert (first.turn_index, second.turn_index) == (0, 1)
    first_text = harmony_encoding().decode(first.input_ids)
    second_text = harmony_encoding().decode(second.input_ids)
    assert "T1-CALL" in first_text and "T1-FINAL" in first_text and first_text.endswith("Rainy in Tokyo.<|return|>")
    assert "T1-" not in second_text and "T2-THINK" in second_text and second_text.endswith("<|return|>")


def test_loss_mask_covers_only_what_the_model_wrote_in_the_target_turn():
    first, second = training_samples(CONVERSATION, **OPTIONS)
    assert _masked_text(first) == (
        "<|channel|>analysis<|message|>T1-CALL<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary"
        ' <|constrain|>json<|message|>{"location": "Tokyo"}<|call|>'
        "<|channel|>analysis<|message|>T1-FINAL<|end|><|start|>assistant<|channel|>final<|message|>Rainy in Tokyo.<|return|>"
    )
    assert "RAINY" not in _masked_text(first)  # the tool's result is context
    assert _masked_text(second) == (
        "<|channel|>analysis<|message|>T2-THINK<|end|><|start|>assistant<|channel|>final<|message|>You are welcome.<|return|>"
    )
    assert second.labels[: len(second.labels) - sum(second.loss_mask)] == [-100] * (
        len(second.labels) - sum(second.loss_mask)
    )


def test_a_sample_is_the_inference_prompt_plus_the_completion():
    _, second = training_samples(CONVERSATION, **OPTIONS)
    prompt = render(CONVERSATION[:6], **OPTIONS)  # what chat() sends before the second reply
    assert second.input_ids[: len(prompt)] == prompt
    assert not any(second.loss_mask[: len(prompt)]) and all(second.loss_mask[len(prompt) :])


def test_strip_reasoning():
    completion = (
        "<|channel|>analysis<|message|>secret<|end|><|start|>assistant<|channel|>final<|message|>Answer.<|return|>"
    )
    assert strip_reasoning(completion) == "Answer."
    assert strip_reasoning("<|start|>assistant" + completion) == "Answer."
    assert strip_reasoning(harmony_encoding().encode(completion, allowed_special="all")) == "Answer."
    assert strip_reasoning("plain text") == "plain text"
