"""Research: parameter search with walk-forward evidence (``trading-mcp optimize``).

Modules, by what they hold:

* :mod:`~engine.research.errors`: :class:`OptimizeError`, a user's mistake told in one sentence.
* :mod:`~engine.research.space`: the ``--param`` search space, checked against the strategy's declared parameters.
* :mod:`~engine.research.objective`: one backtest of a parameter set over a window of candles, through the same
  engine path as ``trading-mcp backtest``, and the objectives (sharpe, sortino, calmar, return).
* :mod:`~engine.research.worker`: what a worker process keeps (the file, loaded once) and runs (one trial).
* :mod:`~engine.research.runners`: where trials run: this process, a pool of processes (or Ray, in
  :mod:`~engine.research.ray_backend`).
* :mod:`~engine.research.search`: the Optuna sampler and the ask/tell loop in rounds.
* :mod:`~engine.research.deflated`: the deflated Sharpe ratio (Bailey and López de Prado, 2014).
* :mod:`~engine.research.walk_forward`: the folds, each searched in sample and tested out of sample.
* :mod:`~engine.research.run`: one optimisation from its arguments to its result (checked up front).
* :mod:`~engine.research.report`: the result as ``--json``, as text, and as the rows it is saved as
  (:mod:`engine.persistence.optimize_runs`).

Nothing here imports Optuna at package import: only :mod:`~engine.research.search` does, when a search runs.
"""
