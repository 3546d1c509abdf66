"""What ``training_scripts/evaluate.py`` runs: :mod:`.data` (the split, layout and loaders),
:mod:`.scoring` (models, one pass for all, FID/KID) and :mod:`.reports` (JSON, table, figure,
cards)."""
