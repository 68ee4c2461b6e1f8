"""Reading usage objects of every endpoint shape."""

from __future__ import annotations

from tokenid import Usage
from tokenid.usage import usage_from_json


def test_chat_usage_with_details() -> None:
    u = usage_from_json({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                         "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 10},
                         "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 5}})
    assert u == Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=1024, reasoning_tokens=256,
                      audio_input_tokens=10, audio_output_tokens=5, total_tokens=1500)


def test_responses_usage() -> None:
    u = usage_from_json({"input_tokens": 50, "input_tokens_details": {"cached_tokens": 0},
                         "output_tokens": 70, "output_tokens_details": {"reasoning_tokens": 64},
                         "total_tokens": 120})
    assert u == Usage(input_tokens=50, output_tokens=70, reasoning_tokens=64, total_tokens=120)


def test_embeddings_and_odd_values() -> None:
    assert usage_from_json({"prompt_tokens": 8, "total_tokens": 8}) == Usage(input_tokens=8, total_tokens=8)
    assert usage_from_json({"prompt_tokens": True, "completion_tokens": -3, "prompt_tokens_details": None}) == \
        Usage(total_tokens=None)
    assert usage_from_json(None) is None
    assert usage_from_json({"type": "duration", "seconds": 3}) is None  # not tokens: priced by the units layer


def test_sdk_models_including_fields_the_sdk_does_not_declare() -> None:
    from openai.types.completion_usage import CompletionUsage

    model = CompletionUsage.model_validate({
        "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
        "prompt_tokens_details": {"cached_tokens": 64, "image_tokens": 30},  # image_tokens: not declared by the SDK
        "completion_tokens_details": {"reasoning_tokens": 8}})
    assert usage_from_json(model) == Usage(input_tokens=100, output_tokens=20, cached_input_tokens=64,
                                           reasoning_tokens=8, image_input_tokens=30, total_tokens=120)
