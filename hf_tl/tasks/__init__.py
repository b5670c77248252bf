"""Tasks: data + head + loss + metric, selected by the ``task`` setting."""

from hf_tl.tasks.similarity import SimilarityTask

TASKS = {"similarity": SimilarityTask}


def get_task(data, tokenizer, max_length: int):
    """Return the task object for ``data.task`` (see :class:`hf_tl.config.DataArguments`)."""
    return TASKS[data.task](data, tokenizer, max_length)


__all__ = ["TASKS", "SimilarityTask", "get_task"]
