"""One byte formatter (batch_choice.size_text) for every message about memory: the memory
refusal (memory_needed.check_memory) and the chosen batch size (BatchChoice.describe) say sizes
in the same form, the largest unit under 1024 with one decimal."""

from pipeline.batch_choice import BUFFER_CAP, BatchChoice, size_text


def test_sizes_are_said_in_the_largest_unit_under_1024():
    assert [size_text(n) for n in (0, 1023, 1024, 92160, 512 * 2**20, 1.5 * 2**30,
                                   1046.5 * 2**30)] == [
        "0.0 B", "1023.0 B", "1.0 KiB", "90.0 KiB", "512.0 MiB", "1.5 GiB", "1046.5 GiB"]


def test_the_batch_choice_says_its_sizes_in_the_same_form():
    full = BatchChoice(None, 360, 92160, BUFFER_CAP, 8 * 2**30)
    assert full.describe() == ("batch size: full batch (360 rows, 90.0 KiB of buffers within "
                               "the budget of 512.0 MiB)")
    chosen = BatchChoice(1000, 600000, 2 * 2**30, BUFFER_CAP, 3 * 2**30)
    assert chosen.describe() == (
        "batch size: 1000 rows chosen (training.batch_size is null and a full batch of 600000 "
        "rows needs 2.0 GiB of buffers, over the budget of 512.0 MiB = min(1/4 of 3.0 GiB "
        "free, 512.0 MiB); set training.batch_size to choose)")
