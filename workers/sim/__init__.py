"""A labelled traffic simulator and the decision-quality report built on it.

``workers.sim.generator`` holds the stable entry points: ``SimulationConfig``,
``generate``, ``generate_records`` and ``labels``.
"""
