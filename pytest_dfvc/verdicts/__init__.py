"""What outcomes mean: a cell's status from what its run left (``judge``), the evidence rule,
causes and diagnoses, deprecations, drift, ranges and boundaries, counterfactual culprits,
suggested specifiers, and the results document. Works on records and plans; never runs a
cell and never imports the cells' code."""
