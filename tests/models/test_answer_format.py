from vans_pipelines.models.answer_format import format_answer, parse_answer


def test_answer_format_round_trips():
    text = format_answer("The ball moves left.", "The ball bounces off the left wall.")
    assert parse_answer(text) == parse_answer(f"  {text} ")
    answer = parse_answer(text)
    assert answer.well_formed and answer.caption == "The ball bounces off the left wall."
    assert not parse_answer("[Think] unfinished").well_formed
