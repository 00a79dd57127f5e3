"""TinyNeuralNetwork's criterion names (its NetAdapt config's ``metrics`` values), so that its users'
config files translate one to one: ``l1_norm`` -> ``l1`` and ``l2_norm`` -> ``l2`` (the norm of each
output filter's weights)."""

from __future__ import annotations

from prunekit.criteria.base import alias_criterion

alias_criterion("l1_norm", "l1")
alias_criterion("l2_norm", "l2")
