"""How one cell runs: ``provision.prepare`` (its view of the project, its session spec) and
``provision.run`` (its environment built and its tests run through nox, restarts after a
crash), which returns what the session left. The environments, workers, cell folders, the
result cache and the reuse check live here too. Judges nothing."""
