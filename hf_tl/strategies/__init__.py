"""Transfer strategies, registered by name. Importing this package registers the built-in ones (in the order the
documentation lists them)."""

# Registration order is the order users see the strategies in: the cheapest transfer first.
from hf_tl.strategies import zero_shot  # noqa: F401, I001
from hf_tl.strategies import simple, features, setfit, partial, gradual, peft_methods, ensemble  # noqa: F401, I001
from hf_tl.strategies import scratch  # noqa: F401, I001
from hf_tl.strategies.base import (
    CHAINED,
    DEFAULT_STRATEGY,
    EVALUATED,
    FITTED,
    STRATEGIES,
    TRAINED,
    Strategy,
    get_strategy,
    register,
    set_trainable,
    strategy_class,
)

__all__ = ["CHAINED", "DEFAULT_STRATEGY", "EVALUATED", "FITTED", "STRATEGIES", "TRAINED", "Strategy", "get_strategy",
           "register", "set_trainable", "strategy_class"]
