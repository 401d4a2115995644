"""Contracts and money: outcome-contract terms, settlement, the value of a fit, socio-economic return, power.

One module per idea, in the order a settlement uses them:

- ``schema``: validate a contract against ``data_schemas/contract.schema.json`` (jsonschema),
  every problem in one :class:`~evaluator.errors.ContractError`.
- ``terms``: read a contract file and build a :class:`Contract`.
- ``effect``: read the estimate (a Result, a number, ``(estimate, se)``) a settlement is of.
- ``rules``: the payment rules of the five families, at the estimate and its interval's ends.
- ``finance``: the investor's internal rate of return and multiple.
- ``settlement``: ``settle`` an estimate into a :class:`Settlement`.
- ``sensitivity``: ``settlement_sensitivity``, the tornado table of a settlement.
- ``value``: what a report's fit is worth under a contract (observed levels, verdict).
- ``economics``: SØM-style socio-economic return by payer and its sensitivity.
- ``power``: minimum detectable effects and the chance of crossing a contract threshold.

A new payment rule goes in ``rules`` (its branch), ``terms.FAMILIES`` and
``data_schemas/contract.schema.json`` (its terms). Settlement takes a result; it never
fits a model. Figures are drawn by :mod:`evaluator.plots.economics`; scipy and
matplotlib are imported only when a function needs them.
"""

from evaluator.contracts.economics import SocioEconomicReturn, socio_economic_return
from evaluator.contracts.finance import irr
from evaluator.contracts.schema import validate_contract
from evaluator.contracts.sensitivity import settlement_sensitivity
from evaluator.contracts.settlement import Settlement, settle
from evaluator.contracts.terms import Contract, read_contract

__all__ = [
    "Contract",
    "Settlement",
    "SocioEconomicReturn",
    "irr",
    "read_contract",
    "settle",
    "settlement_sensitivity",
    "socio_economic_return",
    "validate_contract",
]
