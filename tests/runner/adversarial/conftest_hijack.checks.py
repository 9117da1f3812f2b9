from dojo import check


@check("The answer is 42", hint="Set answer = 42.")
def test_answer(submission):
    assert submission.answer == 42, f"answer is {submission.answer}"
