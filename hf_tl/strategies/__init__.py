"""Transfer strategies, registered by name. Importing this package registers the built-in ones."""

from hf_tl.strategies import features, gradual, partial, peft_methods, setfit, simple  # noqa: F401  (registration)
from hf_tl.strategies.base import STRATEGIES, Strategy, get_strategy, register, set_trainable

__all__ = ["STRATEGIES", "Strategy", "get_strategy", "register", "set_trainable"]
