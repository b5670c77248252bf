"""Tasks: data + head + loss + metric, selected by the ``task`` setting."""

from hf_tl.tasks.base import Task
from hf_tl.tasks.classification import ClassificationTask, PairClassificationTask
from hf_tl.tasks.language_modeling import CausalLMTask, MaskedLMTask
from hf_tl.tasks.similarity import SimilarityTask

TASKS = {cls.name: cls for cls in (SimilarityTask, PairClassificationTask, ClassificationTask, MaskedLMTask,
                                             CausalLMTask)}


def get_task(data, tokenizer, max_length: int) -> Task:
    """Return the task object for ``data.task`` (see :class:`hf_tl.config.DataArguments`)."""
    return TASKS[data.task](data, tokenizer, max_length)


__all__ = ["TASKS", "CausalLMTask", "ClassificationTask", "MaskedLMTask", "PairClassificationTask", "SimilarityTask",
           "Task", "get_task"]
